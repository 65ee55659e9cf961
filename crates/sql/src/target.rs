//! Where each instance of a spec is reached.

use super::connect::Target;
use pchat_core::api::PersistentChatPoolSpec;

/// The connection target of the instance the spec names `instance`, if it names one.
pub fn target(spec: &PersistentChatPoolSpec, instance: &str) -> Option<Target> {
    spec.instances()
        .find(|(_, i)| i.name == instance)
        .map(|(_, i)| Target {
            instance: i.name.clone(),
            host: i.host.clone(),
            port: i.port,
        })
}
