//! Where a drill's pool comes from: a manifest file (`-f`), or the live resource in a cluster
//! (`--from-cluster NAMESPACE/NAME`, read with the user's kubeconfig; a GET, nothing else).
//! Either way the spec passes the operator's validation before anything starts.

use std::path::Path;

use kube::api::Api;
use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec};

/// Why a pool could not be read; `exit_code` 2 for a pool that is not valid (as `plan`), 1
/// otherwise.
#[derive(Debug)]
pub struct SourceError {
    pub message: String,
    pub exit_code: u8,
}

impl SourceError {
    fn other(message: String) -> Self {
        SourceError {
            message,
            exit_code: 1,
        }
    }
}

/// The pool's name and validated spec from a manifest file (`-`: standard input).
pub fn from_file(path: &Path) -> Result<(String, PersistentChatPoolSpec), SourceError> {
    let pool = crate::manifest::load(path).map_err(|e| SourceError::other(e.to_string()))?;
    validated(pool, &crate::manifest::source_name(path))
}

/// `NAMESPACE/NAME` split; `Err` names the flag.
pub fn parse_reference(reference: &str) -> Result<(String, String), SourceError> {
    match reference.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok((namespace.to_string(), name.to_string()))
        }
        _ => Err(SourceError::other(format!(
            "--from-cluster {reference:?}: expected NAMESPACE/NAME"
        ))),
    }
}

/// The pool `namespace/name` read from the cluster of the user's kubeconfig. A refusal names
/// the verb and resource the user lacks.
pub async fn from_cluster(
    namespace: &str,
    name: &str,
) -> Result<(String, PersistentChatPoolSpec), SourceError> {
    let client = kube::Client::try_default().await.map_err(|e| {
        SourceError::other(format!(
            "--from-cluster: no usable kubeconfig or in-cluster configuration: {e}"
        ))
    })?;
    let pools: Api<PersistentChatPool> = Api::namespaced(client, namespace);
    let pool = pools
        .get_opt(name)
        .await
        .map_err(|e| read_error(&e, namespace, name))?;
    let Some(pool) = pool else {
        return Err(SourceError::other(format!(
            "--from-cluster: there is no PersistentChatPool {name} in namespace {namespace}"
        )));
    };
    validated(pool, &format!("PersistentChatPool {namespace}/{name}"))
}

/// What a failed GET of the pool means for the user.
pub fn read_error(error: &kube::Error, namespace: &str, name: &str) -> SourceError {
    let access = crate::kubectl::ApiAccess::pools("get", namespace, name);
    SourceError::other(format!(
        "--from-cluster: {}",
        crate::kubectl::describe(error, &access)
    ))
}

fn validated(
    pool: PersistentChatPool,
    source: &str,
) -> Result<(String, PersistentChatPoolSpec), SourceError> {
    pchat_core::api::validate(&pool.spec).map_err(|violations| SourceError {
        message: format!("{source} is not a valid pool:\n{violations}"),
        exit_code: 2,
    })?;
    let name = pool
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| "unnamed".into());
    Ok((name, pool.spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_reference_is_namespace_slash_name() {
        let (ns, name) = parse_reference("chat/atl-cs-001").unwrap();
        assert_eq!((ns.as_str(), name.as_str()), ("chat", "atl-cs-001"));
        for bad in ["atl-cs-001", "/x", "x/", "a/b/c"] {
            let e = parse_reference(bad).unwrap_err();
            assert!(
                e.message.contains("expected NAMESPACE/NAME"),
                "{bad}: {}",
                e.message
            );
        }
    }

    #[test]
    fn an_invalid_pool_file_is_refused_naming_the_field() {
        let dir = std::env::temp_dir().join(format!("pchat-drill-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pool.yaml");
        let yaml = include_str!("../../examples/pool.yaml")
            .replace("primarySite: atlanta", "primarySite: houston");
        std::fs::write(&path, yaml).unwrap();
        let e = from_file(&path).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(e.exit_code, 2);
        assert!(e.message.contains("spec.primarySite"), "{}", e.message);
    }
}
