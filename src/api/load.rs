//! Reading a `PersistentChatPool` manifest from YAML text (file mode, tests, examples).

use kube::Resource;

use super::spec::PersistentChatPool;

/// Why a manifest could not be read. Reading does not validate the spec: see [`super::validate`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The text is not YAML, or does not have the shape of a `PersistentChatPool`. The message
    /// names the line and column, and shows the offending line.
    #[error("cannot read the PersistentChatPool manifest: {source}")]
    Yaml {
        /// 1-based line of the problem, when the parser knows it.
        line: Option<u64>,
        /// 1-based column of the problem, when the parser knows it.
        column: Option<u64>,
        // Boxed: the parser's error is large, and results travel by value.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The manifest is some other kind of object.
    #[error(
        "the manifest is apiVersion {found_api_version:?} kind {found_kind:?}; expected apiVersion \
         {expected_api_version:?} kind {expected_kind:?}"
    )]
    WrongKind {
        found_api_version: String,
        found_kind: String,
        expected_api_version: String,
        expected_kind: String,
    },
}

/// The type identity of a manifest. The derived `PersistentChatPool` ignores `apiVersion` and
/// `kind` when it deserializes, so they are read on their own first.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

fn parse<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<T, LoadError> {
    serde_saphyr::from_str(text).map_err(|source| {
        let location = source.location();
        LoadError::Yaml {
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            source: Box::new(source),
        }
    })
}

/// Parses one full `PersistentChatPool` manifest (`apiVersion`, `kind`, `metadata`, `spec`).
pub fn load_pool_yaml(text: &str) -> Result<PersistentChatPool, LoadError> {
    let type_meta: TypeMeta = parse(text)?;
    let expected_api_version = PersistentChatPool::api_version(&()).into_owned();
    let expected_kind = PersistentChatPool::kind(&()).into_owned();
    if type_meta.api_version != expected_api_version || type_meta.kind != expected_kind {
        return Err(LoadError::WrongKind {
            found_api_version: type_meta.api_version,
            found_kind: type_meta.kind,
            expected_api_version,
            expected_kind,
        });
    }
    parse(text)
}
