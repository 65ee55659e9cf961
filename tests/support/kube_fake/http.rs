//! HTTP routing: parses a request into a discovery or resource operation, runs it against the
//! store, records it, and answers JSON (or a watch stream).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::errors::ApiError;
use super::patch;
use super::selectors::Selector;
use super::store::{PatchBody, Store, Target};
use super::table;
use super::watch::{self, Body, WatchRequest};
use super::{RecordedRequest, Shared};

/// A percent-decoded query string, in order.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Self {
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).expect("JSON"))).boxed_unsync())
        .expect("a valid response")
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// What the routing produced: a JSON answer (status code, body) or a watch.
enum Outcome {
    Json(u16, Value),
    Watch(Box<WatchRequest>),
}

/// Handles one request (never fails at the HTTP level: errors are Status objects).
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header("content-type");
    let user_agent = header("user-agent");
    let accept = header("accept");
    let query = Query::parse(&raw_query);
    let field_manager = query.get("fieldManager").unwrap_or("").to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let outcome = route(
        &shared,
        &method,
        &path,
        &query,
        &content_type,
        &user_agent,
        &body,
        &accept,
    );
    let (status, response) = match outcome {
        Ok(Outcome::Json(code, value)) => (code, json_response(code, &value)),
        Ok(Outcome::Watch(w)) => {
            let body = watch::start(shared.clone(), *w);
            let response = Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("transfer-encoding", "chunked")
                .body(body)
                .expect("a valid response");
            (200, response)
        }
        Err(e) => (e.code, error_response(&e)),
    };
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push(RecordedRequest {
            method: method.to_string(),
            path,
            query: raw_query,
            content_type,
            user_agent,
            field_manager,
            status,
        });
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &Query,
    content_type: &str,
    user_agent: &str,
    body: &Bytes,
    accept: &str,
) -> Result<Outcome, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let store = || shared.store.lock().expect("store lock");
    let doc = |v: Option<Value>| {
        v.map(|v| Outcome::Json(200, v))
            .ok_or_else(ApiError::resource_not_found)
    };
    match segments.as_slice() {
        ["version"] => doc(Some(super::discovery::version())),
        ["healthz" | "livez" | "readyz"] => Ok(Outcome::Json(200, json!("ok"))),
        ["api"] => doc(Some(super::discovery::core_versions(&shared.address))),
        ["api", version] => doc(super::discovery::resource_list(
            store().resources(),
            "",
            version,
        )),
        ["apis"] => doc(Some(super::discovery::group_list(store().resources()))),
        ["apis", group] => doc(super::discovery::group(store().resources(), group)),
        ["apis", group, version] => doc(super::discovery::resource_list(
            store().resources(),
            group,
            version,
        )),
        ["api", version, rest @ ..] => resource(
            shared,
            "",
            version,
            rest,
            method,
            query,
            content_type,
            user_agent,
            body,
            accept,
        ),
        ["apis", group, version, rest @ ..] => resource(
            shared,
            group,
            version,
            rest,
            method,
            query,
            content_type,
            user_agent,
            body,
            accept,
        ),
        ["openapi", "v3"] => doc(Some(super::openapi::root(store().resources()))),
        ["openapi", "v3", "api", version] => doc(super::openapi::group_version(
            store().resources(),
            "",
            version,
        )),
        ["openapi", "v3", "apis", group, version] => doc(super::openapi::group_version(
            store().resources(),
            group,
            version,
        )),
        // No OpenAPI v2 document (404).
        _ => Err(ApiError::resource_not_found()),
    }
}

/// namespace, plural, name, subresource.
type ObjectPath<'a> = (Option<&'a str>, &'a str, Option<&'a str>, Option<&'a str>);

/// The object path after /api/v1 or /apis/g/v: namespace, plural, name, subresource.
fn split_resource_path<'a>(
    shared: &Shared,
    group: &str,
    version: &str,
    rest: &[&'a str],
) -> Option<ObjectPath<'a>> {
    // /namespaces/{ns}/{plural}/... unless it is /namespaces/{name}/{subresource} of a namespace.
    let namespaced_path = rest.len() >= 3 && rest[0] == "namespaces" && {
        let plural_served = shared
            .store
            .lock()
            .expect("store lock")
            .find(group, version, rest[2])
            .is_some();
        plural_served || rest.len() > 3
    };
    if namespaced_path {
        if rest.len() > 5 {
            return None;
        }
        Some((
            Some(rest[1]),
            rest[2],
            rest.get(3).copied(),
            rest.get(4).copied(),
        ))
    } else {
        if rest.is_empty() || rest.len() > 3 {
            return None;
        }
        Some((None, rest[0], rest.get(1).copied(), rest.get(2).copied()))
    }
}

#[allow(clippy::too_many_arguments)]
fn resource(
    shared: &Shared,
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    query: &Query,
    content_type: &str,
    user_agent: &str,
    body: &Bytes,
    accept: &str,
) -> Result<Outcome, ApiError> {
    let (ns, plural, name, sub) = split_resource_path(shared, group, version, rest)
        .ok_or_else(ApiError::resource_not_found)?;
    let res = shared
        .store
        .lock()
        .expect("store lock")
        .find(group, version, plural)
        .ok_or_else(ApiError::resource_not_found)?;
    if (!res.namespaced && ns.is_some()) || (res.namespaced && ns.is_none() && name.is_some()) {
        return Err(ApiError::resource_not_found());
    }
    let target = match sub {
        None => Target::Main,
        Some("status") if res.status_subresource => Target::Status,
        Some(_) => return Err(ApiError::resource_not_found()),
    };
    let manager = match query.get("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        // Like the real server: a manager named after the client when none is given.
        _ => user_agent
            .split('/')
            .next()
            .unwrap_or("unknown")
            .to_string(),
    };
    let parse = || {
        if content_type.starts_with("application/vnd.kubernetes.protobuf") {
            super::protobuf::decode(body).map_err(|m| ApiError::unsupported_media_type(&m))
        } else {
            patch::parse_body(body).map_err(ApiError::bad_request)
        }
    };
    let dry_run = query.get("dryRun").is_some();
    let mut guard = shared.store.lock().expect("store lock");
    // A dry run works on a copy that is then dropped: nothing is stored or watched.
    let mut scratch;
    let store: &mut Store = if dry_run {
        scratch = guard.clone();
        &mut scratch
    } else {
        &mut guard
    };
    let before = store.resource_version();
    let existed = name.is_some_and(|n| store.get(&res, version, ns, n).is_ok());
    let result = match (method, name) {
        (&Method::GET, None) => {
            let selector = Selector::parse(query.get("labelSelector"), query.get("fieldSelector"))
                .map_err(ApiError::bad_request)?;
            if query.flag("watch") {
                let from = match query.get("resourceVersion") {
                    None | Some("") => None,
                    Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "resourceVersion: Invalid value: \"{rv}\": must be a number"
                        ))
                    })?),
                };
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Ok(Outcome::Watch(Box::new(WatchRequest {
                    res,
                    version: version.to_string(),
                    namespace: ns.map(str::to_string),
                    selector,
                    from,
                    bookmarks: query.flag("allowWatchBookmarks"),
                    send_initial_events: query.flag("sendInitialEvents"),
                    timeout,
                })));
            }
            let items: Vec<Value> = store
                .list(&res, version, ns)
                .into_iter()
                .filter(|o| selector.matches(o))
                .collect();
            let rv = store.resource_version().to_string();
            if accept.contains("as=Table") {
                return Ok(Outcome::Json(200, table::table(&res, &items, &rv)));
            }
            Ok(json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version(version),
                "metadata": {"resourceVersion": rv},
                "items": items,
            }))
        }
        (&Method::GET, Some(name)) => {
            let obj = store.get(&res, version, ns, name)?;
            if accept.contains("as=Table") {
                let rv = store.resource_version().to_string();
                return Ok(Outcome::Json(200, table::table(&res, &[obj], &rv)));
            }
            Ok(obj)
        }
        (&Method::POST, None) if target == Target::Main => {
            if res.namespaced && ns.is_none() {
                return Err(ApiError::method_not_allowed("POST"));
            }
            store.create(&res, version, ns, parse()?, &manager)
        }
        (&Method::PUT, Some(name)) => {
            store.update(&res, version, ns, name, parse()?, &manager, target)
        }
        (&Method::PATCH, Some(name)) => {
            let patch_body = patch_body(content_type, parse()?, query.flag("force"))?;
            let manager = if matches!(patch_body, PatchBody::Apply { .. }) {
                query.get("fieldManager").unwrap_or("").to_string()
            } else {
                manager
            };
            store.patch(&res, version, ns, name, patch_body, &manager, target)
        }
        (&Method::DELETE, Some(name)) if target == Target::Main => {
            store.delete(&res, version, ns, name)
        }
        _ => return Err(ApiError::method_not_allowed(method.as_str())),
    }?;
    let created = method == Method::POST || (method == Method::PATCH && !existed);
    let after = store.resource_version();
    drop(guard);
    if !dry_run && after != before {
        shared.changed.send_replace(after);
    }
    Ok(Outcome::Json(if created { 201 } else { 200 }, result))
}

fn patch_body(content_type: &str, body: Value, force: bool) -> Result<PatchBody, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/merge-patch+json" => Ok(PatchBody::Merge(body)),
        "application/strategic-merge-patch+json" => Ok(PatchBody::Strategic(body)),
        "application/json-patch+json" => Ok(PatchBody::Json(body)),
        "application/apply-patch+yaml" => Ok(PatchBody::Apply {
            applied: body,
            force,
        }),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}
