//! What an API request needed, to say which right is missing when the apiserver refuses it.

/// One request's RBAC right: a verb on a resource of an API group, in a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiAccess {
    pub verb: &'static str,
    /// The plural resource name, as Roles list it (`persistentchatpools`, `secrets`).
    pub resource: &'static str,
    /// The API group (`""` for the core group).
    pub group: &'static str,
    pub namespace: String,
    pub name: String,
}

impl ApiAccess {
    /// `verb` on the PersistentChatPool `namespace/name`.
    pub fn pools(verb: &'static str, namespace: &str, name: &str) -> Self {
        ApiAccess {
            verb,
            resource: "persistentchatpools",
            group: "persistentchat.io",
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `verb` on a core resource (`secrets`, `configmaps`) `namespace/name`.
    pub fn core(verb: &'static str, resource: &'static str, namespace: &str, name: &str) -> Self {
        ApiAccess {
            verb,
            resource,
            group: "",
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// What a failed request means for the user: a refusal names the verb, resource and namespace
/// the user's kubeconfig lacks (what `kubectl auth can-i` would be asked).
pub fn describe(error: &kube::Error, access: &ApiAccess) -> String {
    let group = if access.group.is_empty() {
        "the core API group".to_string()
    } else {
        format!("API group \"{}\"", access.group)
    };
    match error {
        kube::Error::Api(status) if status.code == 403 => format!(
            "forbidden: {} {} needs the verb \"{}\" on resource \"{}\" ({group}) in namespace {}, \
             which your kubeconfig's user does not have (kubectl auth can-i {} {}{} -n {}); the \
             apiserver said: {}",
            access.resource,
            access.name,
            access.verb,
            access.resource,
            access.namespace,
            access.verb,
            access.resource,
            if access.group.is_empty() {
                String::new()
            } else {
                format!(".{}", access.group)
            },
            access.namespace,
            status.message
        ),
        kube::Error::Api(status) if status.code == 401 => format!(
            "the apiserver did not accept your kubeconfig's credentials: {}",
            status.message
        ),
        other => format!(
            "cannot {} {} {}/{}: {other}",
            access.verb, access.resource, access.namespace, access.name
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_verb_resource_group_and_namespace() {
        let status = kube::core::Status::failure(
            "persistentchatpools.persistentchat.io \"p\" is forbidden",
            "Forbidden",
        )
        .with_code(403);
        let text = describe(
            &kube::Error::Api(Box::new(status)),
            &ApiAccess::pools("patch", "chat", "p"),
        );
        assert!(
            text.contains(
                "needs the verb \"patch\" on resource \"persistentchatpools\" (API group \"persistentchat.io\") in namespace chat"
            ),
            "{text}"
        );
        assert!(
            text.contains("kubectl auth can-i patch persistentchatpools.persistentchat.io -n chat"),
            "{text}"
        );
        let status =
            kube::core::Status::failure("secrets \"s\" is forbidden", "Forbidden").with_code(403);
        let text = describe(
            &kube::Error::Api(Box::new(status)),
            &ApiAccess::core("get", "secrets", "chat", "s"),
        );
        assert!(text.contains("(the core API group)"), "{text}");
        assert!(
            text.contains("kubectl auth can-i get secrets -n chat"),
            "{text}"
        );
    }
}
