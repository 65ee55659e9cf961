//! The published active-server list in Kubernetes: ConfigMap `<pool>-active-servers` in the
//! pool's namespace, owned by the pool (so it goes when the pool goes), written by server-side
//! apply. Chat servers mount it or read it with kubectl; the engine reads it back to know what is
//! published and since when (the drain timer).

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::FIELD_MANAGER;
use crate::Error;
use crate::engine::Publisher;
use pchat_core::api::PoolState;
use pchat_core::observe::Published;

/// Data key: the active servers, one per line.
pub const ACTIVE_SERVERS_KEY: &str = "activeServers";
/// Data key: `Normal` or `FailedOver`.
pub const POOL_STATE_KEY: &str = "poolState";
/// Data key: when this content was published, RFC 3339.
pub const PUBLISHED_AT_KEY: &str = "publishedAt";
/// The label marking objects this operator writes (the ConfigMap watch selects on it).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The ConfigMap's name for a pool.
pub fn name_for(pool: &str) -> String {
    format!("{pool}-active-servers")
}

/// The ConfigMap holding `published`, owned by the pool `owner`.
pub fn config_map(
    name: &str,
    namespace: &str,
    owner: &OwnerReference,
    published: &Published,
) -> ConfigMap {
    let mut servers = published.active_servers.join("\n");
    // A mounted file reads as text lines: each ends with a newline.
    if !servers.is_empty() {
        servers.push('\n');
    }
    let data = BTreeMap::from([
        (ACTIVE_SERVERS_KEY.to_string(), servers),
        (
            POOL_STATE_KEY.to_string(),
            pool_state_name(published.pool_state).to_string(),
        ),
        (
            PUBLISHED_AT_KEY.to_string(),
            published.published_at.to_string(),
        ),
    ]);
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_string(),
                FIELD_MANAGER.to_string(),
            )])),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

fn pool_state_name(s: PoolState) -> &'static str {
    match s {
        PoolState::Normal => "Normal",
        PoolState::FailedOver => "FailedOver",
    }
}

/// What a ConfigMap publishes. An error names the ConfigMap and the key a person (or another
/// writer) broke.
pub fn published_from(cm: &ConfigMap) -> Result<Published, Error> {
    let name = cm.metadata.name.as_deref().unwrap_or("<unnamed>");
    let ns = cm.metadata.namespace.as_deref().unwrap_or("<none>");
    let empty = BTreeMap::new();
    let data = cm.data.as_ref().unwrap_or(&empty);
    let key = |k: &str| {
        data.get(k).ok_or_else(|| {
            Error::Publish(format!(
                "ConfigMap {ns}/{name} has no key `{k}`; delete it and the operator writes it again"
            ))
        })
    };
    let active_servers = key(ACTIVE_SERVERS_KEY)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let pool_state = match key(POOL_STATE_KEY)?.trim() {
        "Normal" => PoolState::Normal,
        "FailedOver" => PoolState::FailedOver,
        other => {
            return Err(Error::Publish(format!(
                "ConfigMap {ns}/{name}: `{POOL_STATE_KEY}` is {other:?}, not Normal or FailedOver"
            )));
        }
    };
    let at = key(PUBLISHED_AT_KEY)?;
    let published_at: Timestamp = at.trim().parse().map_err(|e| {
        Error::Publish(format!(
            "ConfigMap {ns}/{name}: `{PUBLISHED_AT_KEY}` is {at:?}, not an RFC 3339 time: {e}"
        ))
    })?;
    Ok(Published {
        active_servers,
        pool_state,
        published_at,
    })
}

/// The engine's [`Publisher`] over a pool's ConfigMap. What it read or wrote is kept in
/// `memory` (the turn's: see [`super::context::TurnMemory`]), and read from there while it is
/// there: the operator is the ConfigMap's only writer while it leads, and a person's edit
/// fires the ConfigMap watch, whose reconcile starts a new turn that reads it.
pub struct ConfigMapPublisher<'m> {
    api: Api<ConfigMap>,
    name: String,
    namespace: String,
    owner: OwnerReference,
    memory: &'m mut Option<Option<Published>>,
}

impl<'m> ConfigMapPublisher<'m> {
    /// The publisher for the pool named `pool` in `namespace`, whose owner reference is `owner`.
    pub fn new(
        api: Api<ConfigMap>,
        namespace: &str,
        pool: &str,
        owner: OwnerReference,
        memory: &'m mut Option<Option<Published>>,
    ) -> Self {
        ConfigMapPublisher {
            api,
            name: name_for(pool),
            namespace: namespace.to_string(),
            owner,
            memory,
        }
    }
}

impl Publisher for ConfigMapPublisher<'_> {
    fn current(&mut self) -> BoxFuture<'_, Result<Option<Published>, Error>> {
        Box::pin(async move {
            if let Some(published) = self.memory {
                return Ok(published.clone());
            }
            let cm = self.api.get_opt(&self.name).await.map_err(|e| {
                Error::Publish(format!(
                    "cannot read ConfigMap {}/{}: {e}",
                    self.namespace, self.name
                ))
            })?;
            let published = cm.as_ref().map(published_from).transpose()?;
            *self.memory = Some(published.clone());
            Ok(published)
        })
    }

    fn publish<'a>(&'a mut self, published: &'a Published) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let cm = config_map(&self.name, &self.namespace, &self.owner, published);
            // Force: the operator owns these fields; a person's kubectl edit is overwritten by
            // design (the list follows the pool's state, not hand edits).
            let params = PatchParams::apply(FIELD_MANAGER).force();
            // A write whose answer is lost may or may not have been stored: read it again.
            *self.memory = None;
            self.api
                .patch(&self.name, &params, &Patch::Apply(&cm))
                .await
                .map_err(|e| {
                    Error::Publish(format!(
                        "cannot write ConfigMap {}/{}: {e}",
                        self.namespace, self.name
                    ))
                })?;
            *self.memory = Some(Some(published.clone()));
            tracing::info!(
                configmap = %self.name,
                servers = published.active_servers.len(),
                pool_state = pool_state_name(published.pool_state),
                "active servers published"
            );
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "persistentchat.io/v1alpha1".into(),
            kind: "PersistentChatPool".into(),
            name: "atl-cs-001".into(),
            uid: "0b6e-uid".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    fn published(servers: &[&str], at: &str) -> Published {
        Published {
            active_servers: servers.iter().map(|s| s.to_string()).collect(),
            pool_state: PoolState::FailedOver,
            published_at: at.parse().unwrap(),
        }
    }

    #[test]
    fn the_config_map_carries_the_agreed_keys_label_and_controller_owner() {
        let p = published(
            &["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"],
            "2026-11-26T12:00:00Z",
        );
        let cm = config_map("atl-cs-001-active-servers", "chat", &owner(), &p);
        let data = cm.data.as_ref().unwrap();
        assert_eq!(
            data[ACTIVE_SERVERS_KEY],
            "dal-pc1.litwareinc.com\ndal-pc2.litwareinc.com\n"
        );
        assert_eq!(data[POOL_STATE_KEY], "FailedOver");
        assert_eq!(data[PUBLISHED_AT_KEY], "2026-11-26T12:00:00Z");
        assert_eq!(data.len(), 3);
        assert_eq!(
            cm.metadata.labels.as_ref().unwrap()[MANAGED_BY_LABEL],
            "pchat-operator"
        );
        let owners = cm.metadata.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].uid, "0b6e-uid");
        assert_eq!(cm.metadata.namespace.as_deref(), Some("chat"));
        assert_eq!(name_for("atl-cs-001"), "atl-cs-001-active-servers");
    }

    #[test]
    fn published_state_round_trips_exactly_including_an_empty_drain_list_and_nanoseconds() {
        for p in [
            published(&["atl-pc1.litwareinc.com"], "2026-11-26T12:00:00Z"),
            published(&[], "2026-11-26T12:00:01.123456789Z"),
            published(
                &["a.litwareinc.com", "b.litwareinc.com", "c.litwareinc.com"],
                "2026-11-26T23:59:59.5Z",
            ),
        ] {
            let cm = config_map("x-active-servers", "chat", &owner(), &p);
            // Through JSON, as the API server stores and returns it.
            let back: ConfigMap =
                serde_json::from_value(serde_json::to_value(&cm).unwrap()).unwrap();
            assert_eq!(published_from(&back).unwrap(), p);
        }
    }

    #[test]
    fn a_broken_config_map_names_itself_and_the_key() {
        let p = published(&["atl-pc1.litwareinc.com"], "2026-11-26T12:00:00Z");
        let mut cm = config_map("x-active-servers", "chat", &owner(), &p);
        cm.data
            .as_mut()
            .unwrap()
            .insert(POOL_STATE_KEY.into(), "Sideways".into());
        let e = published_from(&cm).unwrap_err().to_string();
        assert!(e.contains("chat/x-active-servers"), "{e}");
        assert!(e.contains("poolState"), "{e}");
        cm.data.as_mut().unwrap().remove(PUBLISHED_AT_KEY);
        cm.data
            .as_mut()
            .unwrap()
            .insert(POOL_STATE_KEY.into(), "Normal".into());
        let e = published_from(&cm).unwrap_err().to_string();
        assert!(e.contains("publishedAt"), "{e}");
    }
}
