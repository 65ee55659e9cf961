//! The fake API server (tests/support/kube_fake) through kube::Client and raw HTTP.

#[path = "support/kube_fake/mod.rs"]
mod kube_fake;

use kube_fake::FakeApiServer;

#[tokio::test]
async fn configmap_round_trip() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::default_namespaced(client);
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "a"}, "data": {"k": "v"}}))
    .unwrap();
    api.create(&Default::default(), &cm).await.unwrap();
    let got = api.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "v");
}
