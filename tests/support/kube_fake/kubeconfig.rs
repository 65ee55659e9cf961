//! A kubeconfig pointing at the fake: plain HTTP, a bearer token (the fake accepts any or
//! none), namespace `default`.

/// The kubeconfig text for a server at `url`.
pub fn render(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubefake
  cluster:
    server: {url}
contexts:
- name: kubefake
  context:
    cluster: kubefake
    user: kubefake
    namespace: default
current-context: kubefake
users:
- name: kubefake
  user:
    token: kubefake-token
"
    )
}
