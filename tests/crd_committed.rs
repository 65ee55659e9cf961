//! The committed CRD is the one the code generates.

#[test]
fn committed_crd_matches_generated() {
    let generated = pchat_core::api::crd_yaml().expect("the CRD serializes to YAML");
    let committed = include_str!("../crds/persistentchatpool.yaml");
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "crds/persistentchatpool.yaml differs from the generated CRD (first difference at \
             line {line}); regenerate it with `cargo run -- crd > crds/persistentchatpool.yaml`"
        );
    }
}

#[test]
fn committed_crd_is_a_persistentchatpool_crd() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(include_str!("../crds/persistentchatpool.yaml"))
            .expect("the committed CRD parses as a CustomResourceDefinition");
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("persistentchatpools.persistentchat.io")
    );
    assert_eq!(crd.spec.names.kind, "PersistentChatPool");
    assert_eq!(crd.spec.names.short_names, Some(vec!["pcpool".to_string()]));
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
}
