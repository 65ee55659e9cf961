//! Reading a `PersistentChatPool` manifest: from a file, or from standard input when the path
//! is `-` (as `kubectl apply -f -`). The one loader of the `plan` and `reconcile` commands and of
//! local mode; it parses with `pchat_core::api::load_pool_yaml`, which refuses other kinds and
//! unknown (misspelt) fields. In Kubernetes the apiserver's objects arrive already decoded into
//! the same types.

use std::io::Read;
use std::path::Path;

use pchat_core::api::{PersistentChatPool, load_pool_yaml};

use crate::Error;

/// How `path` is named in messages.
pub fn source_name(path: &Path) -> String {
    if is_stdin(path) {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The manifest's bytes, from the file or from standard input.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    let result = if is_stdin(path) {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    result.map_err(|e| Error::Read {
        path: source_name(path),
        reason: e.to_string(),
    })
}

/// Parse manifest bytes read from `path`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<PersistentChatPool, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Read {
        path: source_name(path),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    load_pool_yaml(text).map_err(|source| Error::Spec {
        path: source_name(path),
        source,
    })
}

/// Read and parse the manifest at `path` (`-` for standard input).
pub fn load(path: &Path) -> Result<PersistentChatPool, Error> {
    parse(path, &read(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let err = load(Path::new("/nonexistent/pool.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/pool.yaml:"),
            "{err}"
        );
    }

    #[test]
    fn another_kind_is_refused_naming_the_source() {
        let err = parse(
            Path::new("-"),
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("standard input: "), "{err}");
        assert!(err.to_string().contains("ConfigMap"), "{err}");
    }
}
