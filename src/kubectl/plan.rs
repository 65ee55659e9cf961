//! `kubectl pchat plan NAME`: what the operator would do next, from the live resource and its
//! instances. The instances are observed once with the pool's Secret (the observation batches
//! only: nothing that changes anything is sent), the published list is the pool's ConfigMap,
//! and the planner projects the remaining steps as `pchat-operator plan` does.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use pchat_core::api::PersistentChatPool;

use super::{ApiAccess, describe};
use crate::engine::SqlPort;
use crate::k8s::{configmap, credentials};

/// Print the projection; `Ok(false)` when the spec is not valid (the operator would not act).
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    pool: &PersistentChatPool,
    output: crate::cli::PlanOutput,
) -> Result<bool, String> {
    let name = pool.metadata.name.clone().unwrap_or_default();
    if let Err(violations) = pchat_core::api::validate(&pool.spec) {
        eprintln!(
            "PersistentChatPool {namespace}/{name} is not valid; the operator does not act on it:\n{violations}"
        );
        return Ok(false);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let material = match credentials::load(&secrets, namespace, &pool.spec).await {
        Ok(Ok(material)) => material,
        Ok(Err(problem)) => return Err(problem.to_string()),
        Err(crate::Error::ReadSecret { name, source, .. }) => {
            return Err(describe(
                &source,
                &ApiAccess::core("get", "secrets", namespace, &name),
            ));
        }
        Err(other) => return Err(other.to_string()),
    };
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map_name = configmap::name_for(&name);
    let published = match config_maps.get_opt(&config_map_name).await {
        Ok(cm) => cm
            .as_ref()
            .map(configmap::published_from)
            .transpose()
            .map_err(|e| e.to_string())?,
        Err(e) => {
            return Err(describe(
                &e,
                &ApiAccess::core("get", "configmaps", namespace, &config_map_name),
            ));
        }
    };
    let ca_dir = std::env::temp_dir().join(format!("kubectl-pchat-{}", std::process::id()));
    let ca_file = match &material.ca_pem {
        Some(pem) => Some(
            credentials::write_ca_file(&ca_dir, pool.metadata.uid.as_deref().unwrap_or(&name), pem)
                .map_err(|e| format!("cannot write the pool's CA to {}: {e}", ca_dir.display()))?,
        ),
        None => None,
    };
    let mut port = crate::engine::sql_port::LivePort::new(material.credentials, ca_file)
        .with_client_name("kubectl-pchat");
    let now = jiff::Timestamp::now();
    let observation = port.observe(&pool.spec, published, now).await;
    port.close_connections();
    let _ = std::fs::remove_dir_all(&ca_dir);
    let projection = pchat_core::plan::project(&pool.spec, &observation, now);
    match output {
        crate::cli::PlanOutput::Table => {
            for instance in &observation.instances {
                if !instance.is_reachable() {
                    println!(
                        "note: {} could not be observed from here; the plan treats it as unreachable",
                        instance.name
                    );
                }
            }
            print!("{}", pchat_core::plan::render::table(&projection));
        }
        crate::cli::PlanOutput::Json => {
            let json = serde_json::to_string_pretty(&pchat_core::plan::render::json(&projection))
                .map_err(|e| e.to_string())?;
            println!("{json}");
        }
    }
    Ok(true)
}
