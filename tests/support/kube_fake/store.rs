//! The object store: objects by group/plural/namespace/name, a global resourceVersion counter,
//! the watch history, and the write rules (create, update, patch, apply, status subresource,
//! generation, finalizers, CRD registration).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::fields::{self, Entry};
use super::patch;
use super::resources::{self, ResourceInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept for watches.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub event_type: EventType,
    pub object: Value,
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Main,
    Status,
}

/// A patch request body, by content type.
#[derive(Clone, Debug)]
pub enum PatchBody {
    Merge(Value),
    Strategic(Value),
    Json(Value),
    Apply { applied: Value, force: bool },
}

/// Where an object lives: group, plural, namespace ("" if cluster-scoped), name.
type Key = (String, String, String, String);

#[derive(Clone)]
pub struct Store {
    rv: u64,
    seq: u64,
    resources: Vec<ResourceInfo>,
    objects: BTreeMap<Key, Value>,
    history: Vec<Event>,
    /// Watches from a resourceVersion below this get 410 Expired.
    oldest_watchable: u64,
}

/// The current time as the API server writes it (RFC 3339, seconds).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .map(str::to_string)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("made an object above");
    if !map.get("metadata").is_some_and(Value::is_object) {
        map.insert("metadata".into(), json!({}));
    }
    map.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("made an object above")
}

/// The object without what a no-op write may change (resourceVersion, managedFields).
fn comparable(obj: &Value) -> Value {
    let mut v = obj.clone();
    let m = meta_mut(&mut v);
    m.remove("resourceVersion");
    m.remove("managedFields");
    v
}

/// Everything outside metadata and status: what `metadata.generation` counts changes of.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(k);
        }
    }
    v
}

/// Standard base64 with padding, as Kubernetes encodes Secret data.
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

impl Store {
    /// A store serving the built-in resources, with namespaces `default` and `kube-system`.
    pub fn new() -> Self {
        let mut store = Store {
            rv: 0,
            seq: 0,
            resources: resources::builtins(),
            objects: BTreeMap::new(),
            history: Vec::new(),
            oldest_watchable: 0,
        };
        for ns in ["default", "kube-system"] {
            store
                .put_object(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )
                .expect("built-in namespaces are valid");
        }
        store
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn resources(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// The resource type served at group/version/plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.resources
            .iter()
            .find(|r| {
                r.group == group && r.plural == plural && r.versions.iter().any(|v| v == version)
            })
            .cloned()
    }

    /// group and version of an `apiVersion` string.
    pub fn split_api_version(api_version: &str) -> (&str, &str) {
        api_version.rsplit_once('/').unwrap_or(("", api_version))
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceInfo> {
        let (group, version) = Self::split_api_version(api_version);
        self.resources
            .iter()
            .find(|r| r.group == group && r.kind == kind && r.versions.iter().any(|v| v == version))
            .cloned()
    }

    fn key(res: &ResourceInfo, ns: Option<&str>, name: &str) -> Key {
        let ns = if res.namespaced {
            ns.unwrap_or("default")
        } else {
            ""
        };
        (
            res.group.clone(),
            res.plural.clone(),
            ns.to_string(),
            name.to_string(),
        )
    }

    pub fn present(res: &ResourceInfo, version: &str, obj: &Value) -> Value {
        let mut out = obj.clone();
        out["apiVersion"] = json!(res.api_version(version));
        out["kind"] = json!(res.kind);
        out
    }

    pub fn get(
        &self,
        res: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        if let Some(o) = self.objects.get(&Self::key(res, ns, name)) {
            return Ok(Self::present(res, version, o));
        }
        if Self::is_core_event(res) {
            let key = (
                "events.k8s.io".into(),
                "events".into(),
                ns.unwrap_or("default").into(),
                name.into(),
            );
            if let Some(o) = self.objects.get(&key) {
                return Ok(super::events::to_core(o));
            }
        }
        Err(ApiError::not_found(res, name))
    }

    fn is_core_event(res: &ResourceInfo) -> bool {
        res.group.is_empty() && res.plural == "events"
    }

    /// Objects of a type, in one namespace or (None) all, sorted by namespace and name.
    /// Reads of core/v1 Events include the events.k8s.io/v1 ones, converted (see events.rs).
    pub fn list(&self, res: &ResourceInfo, version: &str, ns: Option<&str>) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .objects
            .iter()
            .filter(|((g, p, n, _), _)| {
                *g == res.group
                    && *p == res.plural
                    && (ns.is_none() || !res.namespaced || ns == Some(n.as_str()))
            })
            .map(|(_, o)| Self::present(res, version, o))
            .collect();
        if Self::is_core_event(res) {
            out.extend(
                self.objects
                    .iter()
                    .filter(|((g, p, n, _), _)| {
                        g == "events.k8s.io"
                            && p == "events"
                            && (ns.is_none() || ns == Some(n.as_str()))
                    })
                    .map(|(_, o)| super::events::to_core(o)),
            );
        }
        out
    }

    /// Events of a type after `rv`, or 410 Expired when history before it was compacted.
    pub fn events_since(&self, res: &ResourceInfo, rv: u64) -> Result<Vec<Event>, ApiError> {
        if rv < self.oldest_watchable {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                self.oldest_watchable
            )));
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.rv > rv && e.group == res.group && e.plural == res.plural)
            .cloned()
            .collect())
    }

    /// Forgets the watch history, as an etcd compaction would: every resourceVersion handed
    /// out so far becomes too old to watch from (410 Expired, live watches included at their
    /// next event). The counter steps once, so a fresh list's resourceVersion is watchable.
    pub fn compact(&mut self) {
        self.history.clear();
        self.rv += 1;
        self.oldest_watchable = self.rv;
    }

    fn next_uid(&mut self) -> String {
        self.seq += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{:08x}-fa4e-4000-8000-{:012x}", nanos, self.seq)
    }

    fn generated_name(&mut self, res: &ResourceInfo, ns: Option<&str>, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        loop {
            self.seq += 1;
            let mut n =
                self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
            let mut name = prefix.to_string();
            for _ in 0..5 {
                name.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
                n /= ALPHABET.len() as u64;
            }
            if !self.objects.contains_key(&Self::key(res, ns, &name)) {
                return name;
            }
        }
    }

    /// POST: creates an object (409 AlreadyExists if present).
    pub fn create(
        &mut self,
        res: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        mut body: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let name = match (meta(&body, "name"), meta(&body, "generateName")) {
            (Some(n), _) if !n.is_empty() => n,
            (_, Some(prefix)) if !prefix.is_empty() => self.generated_name(res, ns, &prefix),
            _ => {
                return Err(ApiError::invalid(
                    res,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        self.check_namespace(res, ns, &body, &name)?;
        let key = Self::key(res, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(res, &name));
        }
        {
            let m = meta_mut(&mut body);
            m.insert("name".into(), json!(name));
            if res.namespaced {
                m.insert("namespace".into(), json!(key.2));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), json!(self.next_uid()));
            m.insert("creationTimestamp".into(), json!(now()));
            for k in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "generation",
            ] {
                m.remove(k);
            }
        }
        if let (true, Some(map)) = (res.status_subresource, body.as_object_mut()) {
            map.remove("status");
        }
        self.default_by_kind(res, &mut body)?;
        let paths = fields::tracked_paths(&body);
        let entry = Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            subresource: String::new(),
            api_version: res.api_version(version),
            time: now(),
            paths,
        };
        fields::write_entries(&mut body, &[entry]);
        Ok(self.commit(res, version, key, None, body))
    }

    fn check_namespace(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        body: &Value,
        name: &str,
    ) -> Result<(), ApiError> {
        if let (true, Some(path_ns), Some(body_ns)) = (res.namespaced, ns, meta(body, "namespace"))
            && !body_ns.is_empty()
            && body_ns != path_ns
        {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({path_ns}) for {} \"{name}\"",
                res.qualified()
            )));
        }
        Ok(())
    }

    /// What the real API server adds to particular kinds on create/update.
    fn default_by_kind(&self, res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        match (res.group.as_str(), res.plural.as_str()) {
            ("", "secrets") => {
                // stringData is write-only: merged into data, base64-encoded.
                if let Some(Value::Object(string_data)) =
                    obj.as_object_mut().and_then(|m| m.remove("stringData"))
                {
                    let data = obj
                        .as_object_mut()
                        .expect("checked object")
                        .entry("data")
                        .or_insert_with(|| json!({}));
                    for (k, v) in string_data {
                        data[k] = json!(base64(v.as_str().unwrap_or("").as_bytes()));
                    }
                }
                if obj
                    .get("type")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    obj["type"] = json!("Opaque");
                }
            }
            ("", "namespaces") => {
                obj["status"] = json!({"phase": "Active"});
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let name = meta(obj, "name").unwrap_or_default();
                let info =
                    resources::from_crd(obj).map_err(|m| ApiError::invalid(res, &name, m))?;
                let expected = format!("{}.{}", info.plural, info.group);
                if name != expected {
                    return Err(ApiError::invalid(
                        res,
                        &name,
                        format!(
                            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group ({expected})"
                        ),
                    ));
                }
                obj["status"] = resources::crd_status(obj, &now());
            }
            _ => {}
        }
        Ok(())
    }

    /// Stores `new` (replacing `old`), unless nothing but resourceVersion/managedFields differs:
    /// then nothing is written, no resourceVersion is used and no watch event is sent, as in a
    /// real API server. Keeps generation, handles finalizer-pending deletes, registers CRDs.
    fn commit(
        &mut self,
        res: &ResourceInfo,
        version: &str,
        key: Key,
        old: Option<&Value>,
        mut new: Value,
    ) -> Value {
        if let Some(old) = old
            && comparable(old) == comparable(&new)
        {
            return Self::present(res, version, old);
        }
        if res.has_generation {
            let generation = match old {
                None => 1,
                Some(old) => {
                    let g = old
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    if spec_part(old) != spec_part(&new) {
                        g + 1
                    } else {
                        g
                    }
                }
            };
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let stored = res.api_version(&res.versions[0]);
        new["apiVersion"] = json!(stored);
        new["kind"] = json!(res.kind);
        let finalizers_empty = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        let event_type = if deleting && finalizers_empty {
            self.objects.remove(&key);
            EventType::Deleted
        } else {
            self.objects.insert(key.clone(), new.clone());
            if old.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            }
        };
        self.history.push(Event {
            rv: self.rv,
            group: res.group.clone(),
            plural: res.plural.clone(),
            event_type,
            object: new.clone(),
        });
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            self.register_crd(&new, event_type == EventType::Deleted);
        }
        Self::present(res, version, &new)
    }

    fn register_crd(&mut self, crd: &Value, deleted: bool) {
        let Ok(info) = resources::from_crd(crd) else {
            return;
        };
        self.resources
            .retain(|r| !(r.group == info.group && r.plural == info.plural));
        if deleted {
            self.objects
                .retain(|(g, p, _, _), _| !(*g == info.group && *p == info.plural));
        } else {
            self.resources.push(info);
        }
    }

    /// Applies status-subresource rules and keeps server-owned metadata from `old`.
    fn shape(res: &ResourceInfo, target: Target, old: &Value, candidate: Value) -> Value {
        let mut new = if target == Target::Status {
            let mut new = old.clone();
            match candidate.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    new.as_object_mut().map(|m| m.remove("status"));
                }
            }
            new
        } else {
            let mut new = candidate;
            if res.status_subresource {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        new.as_object_mut().map(|m| m.remove("status"));
                    }
                }
            }
            new
        };
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let m = meta_mut(&mut new);
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
        ] {
            match old_meta.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        new
    }

    fn existing(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(Key, Value), ApiError> {
        let key = Self::key(res, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        Ok((key, old))
    }

    fn check_precondition(
        res: &ResourceInfo,
        name: &str,
        old: &Value,
        sent: &Value,
    ) -> Result<(), ApiError> {
        match meta(sent, "resourceVersion") {
            Some(rv) if !rv.is_empty() && Some(&rv) != meta(old, "resourceVersion").as_ref() => {
                Err(ApiError::conflict(res, name))
            }
            _ => Ok(()),
        }
    }

    /// Records `manager` as the owner (operation Update) of what changed between old and new.
    fn record_update(
        res: &ResourceInfo,
        version: &str,
        target: Target,
        manager: &str,
        old: &Value,
        new: &mut Value,
    ) {
        let changed = fields::changed_paths(old, new);
        if changed.is_empty() {
            return;
        }
        let mut entries = fields::read_entries(old);
        for e in entries.iter_mut() {
            e.paths
                .retain(|p| !changed.iter().any(|c| fields::overlaps(p, c)));
        }
        let sub = if target == Target::Status {
            "status"
        } else {
            ""
        };
        let present: BTreeSet<_> = changed
            .into_iter()
            .filter(|p| fields::lookup(new, p).is_some())
            .collect();
        match entries
            .iter_mut()
            .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == sub)
        {
            Some(e) => {
                e.paths.extend(present);
                e.time = now();
            }
            None => entries.push(Entry {
                manager: manager.into(),
                operation: "Update".into(),
                subresource: sub.into(),
                api_version: res.api_version(version),
                time: now(),
                paths: present,
            }),
        }
        fields::write_entries(new, &entries);
    }

    /// PUT: replaces an object (409 Conflict when the sent resourceVersion is stale).
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        res: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
        body: Value,
        manager: &str,
        target: Target,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let (key, old) = self.existing(res, ns, name)?;
        if let Some(sent) = meta(&body, "name")
            && sent != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({sent}) does not match the name on the URL ({name})"
            )));
        }
        self.check_namespace(res, ns, &body, name)?;
        Self::check_precondition(res, name, &old, &body)?;
        let mut new = Self::shape(res, target, &old, body);
        if target == Target::Main {
            self.default_by_kind_on_update(res, &mut new)?;
        }
        Self::record_update(res, version, target, manager, &old, &mut new);
        Ok(self.commit(res, version, key, Some(&old), new))
    }

    fn default_by_kind_on_update(
        &self,
        res: &ResourceInfo,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        match (res.group.as_str(), res.plural.as_str()) {
            ("", "namespaces") => Ok(()),
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let name = meta(obj, "name").unwrap_or_default();
                resources::from_crd(obj).map_err(|m| ApiError::invalid(res, &name, m))?;
                Ok(())
            }
            _ => self.default_by_kind(res, obj),
        }
    }

    /// PATCH in any supported format; apply creates the object when it is absent.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        res: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
        body: PatchBody,
        manager: &str,
        target: Target,
    ) -> Result<Value, ApiError> {
        if let PatchBody::Apply { applied, force } = body {
            return self.apply(res, version, ns, name, applied, manager, force, target);
        }
        let (key, old) = self.existing(res, ns, name)?;
        let mut candidate = Self::present(res, version, &old);
        match &body {
            PatchBody::Merge(p) => {
                Self::check_precondition(res, name, &old, p)?;
                patch::merge_patch(&mut candidate, p);
            }
            PatchBody::Strategic(p) => {
                Self::check_precondition(res, name, &old, p)?;
                let mut p = p.clone();
                patch::strip_strategic_directives(&mut p);
                patch::merge_patch(&mut candidate, &p);
            }
            PatchBody::Json(ops) => {
                patch::json_patch(&mut candidate, ops)
                    .map_err(|m| ApiError::invalid(res, name, m))?;
                Self::check_precondition(res, name, &old, &candidate)?;
            }
            PatchBody::Apply { .. } => unreachable!("handled above"),
        }
        let mut new = Self::shape(res, target, &old, candidate);
        if target == Target::Main {
            self.default_by_kind_on_update(res, &mut new)?;
        }
        Self::record_update(res, version, target, manager, &old, &mut new);
        Ok(self.commit(res, version, key, Some(&old), new))
    }

    /// Server-side apply, simplified: see docs/testing.md.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        res: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
        applied: Value,
        manager: &str,
        force: bool,
        target: Target,
    ) -> Result<Value, ApiError> {
        if manager.is_empty() {
            return Err(ApiError::invalid(
                res,
                name,
                "fieldManager: Required value: is required for apply patch",
            ));
        }
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        if let Some(sent) = meta(&applied, "name")
            && sent != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({sent}) does not match the name on the URL ({name})"
            )));
        }
        self.check_namespace(res, ns, &applied, name)?;
        let sub = if target == Target::Status {
            "status"
        } else {
            ""
        };
        let in_scope = |p: &fields::Path| {
            let is_status = p.first().map(String::as_str) == Some("status");
            match target {
                Target::Status => is_status,
                Target::Main => !(res.status_subresource && is_status),
            }
        };
        let applied_paths: BTreeSet<_> = fields::tracked_paths(&applied)
            .into_iter()
            .filter(|p| in_scope(p))
            .collect();
        let key = Self::key(res, ns, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            if target == Target::Status {
                return Err(ApiError::not_found(res, name));
            }
            let mut created = self.create(res, version, ns, applied, manager)?;
            // create() recorded an Update entry; an apply owns its fields as Apply.
            let entry = Entry {
                manager: manager.into(),
                operation: "Apply".into(),
                subresource: String::new(),
                api_version: res.api_version(version),
                time: now(),
                paths: applied_paths,
            };
            fields::write_entries(&mut created, &[entry]);
            let key = Self::key(res, ns, meta(&created, "name").as_deref().unwrap_or(name));
            if let Some(stored) = self.objects.get_mut(&key) {
                stored["metadata"]["managedFields"] = created["metadata"]["managedFields"].clone();
            }
            return Ok(created);
        };
        Self::check_precondition(res, name, &old, &applied)?;
        let mut entries = fields::read_entries(&old);
        // Conflicts: a field another manager owns, that this apply sets to a different value.
        let mut conflicts: Vec<(String, fields::Path)> = Vec::new();
        for e in entries.iter().filter(|e| e.manager != manager) {
            for owned in &e.paths {
                for p in applied_paths.iter().filter(|p| fields::overlaps(p, owned)) {
                    let at = if p.len() <= owned.len() { p } else { owned };
                    if fields::lookup(&old, at) != fields::lookup(&applied, at) {
                        conflicts.push((e.manager.clone(), owned.clone()));
                    }
                }
            }
        }
        conflicts.dedup();
        if !conflicts.is_empty() && !force {
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {}", fields::display(p)))
                .collect();
            return Err(ApiError::apply_conflict(
                res,
                name,
                format!(
                    "Apply failed with {} conflict(s): {}",
                    conflicts.len(),
                    list.join(", ")
                ),
            ));
        }
        // With force (or no conflict), this manager takes the fields it applies.
        for e in entries.iter_mut().filter(|e| e.manager != manager) {
            e.paths.retain(|o| {
                !applied_paths.iter().any(|p| fields::overlaps(p, o)) || {
                    fields::lookup(&old, o) == fields::lookup(&applied, o)
                }
            });
        }
        let mut candidate = Self::present(res, version, &old);
        let mut merged_in = applied.clone();
        if let Some(m) = merged_in.get_mut("metadata").and_then(Value::as_object_mut) {
            m.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                )
            });
        }
        patch::merge_patch(&mut candidate, &merged_in);
        // Fields this manager applied before but not now are removed, unless someone else owns them.
        let previous = entries
            .iter()
            .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource == sub)
            .map(|e| e.paths.clone())
            .unwrap_or_default();
        for gone in previous.difference(&applied_paths) {
            let owned_elsewhere = entries
                .iter()
                .filter(|e| {
                    !(e.manager == manager && e.operation == "Apply" && e.subresource == sub)
                })
                .any(|e| e.paths.iter().any(|o| fields::overlaps(o, gone)));
            let reapplied = applied_paths.iter().any(|p| fields::overlaps(p, gone));
            if !owned_elsewhere && !reapplied {
                fields::remove_path(&mut candidate, gone);
            }
        }
        entries
            .retain(|e| !(e.manager == manager && e.operation == "Apply" && e.subresource == sub));
        entries.push(Entry {
            manager: manager.into(),
            operation: "Apply".into(),
            subresource: sub.into(),
            api_version: res.api_version(version),
            time: now(),
            paths: applied_paths,
        });
        let mut new = Self::shape(res, target, &old, candidate);
        if target == Target::Main {
            self.default_by_kind_on_update(res, &mut new)?;
        }
        fields::write_entries(&mut new, &entries);
        Ok(self.commit(res, version, key, Some(&old), new))
    }

    /// DELETE: removes the object, or, when it has finalizers, marks it with a
    /// deletionTimestamp (it goes once an update empties its finalizers).
    pub fn delete(
        &mut self,
        res: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let (key, old) = self.existing(res, ns, name)?;
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(Self::present(res, version, &old));
            }
            let mut new = old.clone();
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            return Ok(self.commit(res, version, key, Some(&old), new));
        }
        self.rv += 1;
        let mut gone = old.clone();
        meta_mut(&mut gone).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects.remove(&key);
        self.history.push(Event {
            rv: self.rv,
            group: res.group.clone(),
            plural: res.plural.clone(),
            event_type: EventType::Deleted,
            object: gone.clone(),
        });
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            self.register_crd(&gone, true);
        }
        Ok(Self::present(res, version, &gone))
    }

    /// Creates or replaces an object as a test fixture would: no preconditions, status kept
    /// as given, server fields (uid, creationTimestamp, generation, resourceVersion) maintained.
    pub fn put_object(&mut self, obj: Value) -> Result<Value, ApiError> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let res = self.find_kind(&api_version, &kind).ok_or_else(|| {
            ApiError::bad_request(format!("no resource serves kind {kind} in {api_version}"))
        })?;
        let (_, version) = Self::split_api_version(&api_version);
        let version = version.to_string();
        let name =
            meta(&obj, "name").ok_or_else(|| ApiError::bad_request("metadata.name is required"))?;
        let ns = meta(&obj, "namespace");
        let key = Self::key(&res, ns.as_deref(), &name);
        let status = obj.get("status").cloned();
        let old = match self.objects.get(&key).cloned() {
            Some(old) => old,
            None => {
                let created = self.create(&res, &version, ns.as_deref(), obj.clone(), "test")?;
                if !res.status_subresource || status.is_none() {
                    return Ok(created);
                }
                self.objects.get(&key).cloned().expect("just created")
            }
        };
        let mut new = Self::shape(&res, Target::Main, &old, obj);
        match status {
            Some(s) => new["status"] = s,
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
        Ok(self.commit(&res, &version, key, Some(&old), new))
    }

    /// Removes an object if present (a test fixture's delete; finalizers are ignored).
    pub fn delete_object(&mut self, api_version: &str, plural: &str, ns: Option<&str>, name: &str) {
        let (group, version) = Self::split_api_version(api_version);
        if let Some(res) = self.find(group, version, plural) {
            let key = Self::key(&res, ns, name);
            if let Some(mut obj) = self.objects.get(&key).cloned() {
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("finalizers");
                }
                self.objects.insert(key, obj);
                let _ = self.delete(&res, version, ns, name);
            }
        }
    }
}
