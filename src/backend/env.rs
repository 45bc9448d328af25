//! Environment variables as a store, with confd's mapping: the key `/foo/bar` is the
//! variable `FOO_BAR`, and a variable maps back to a lowercase key with `_` as `/`.

use async_trait::async_trait;

use super::{Backend, BackendError, KvMap, Snapshot};

/// Reads the process environment on every listing (poll only).
#[derive(Debug, Default)]
pub struct EnvBackend;

impl EnvBackend {
    /// The environment backend.
    pub fn new() -> Self {
        Self
    }
}

/// `/foo/bar-baz` -> `FOO_BAR-BAZ` (confd: upper case, `/` -> `_`, no leading `_`).
pub fn key_to_env(key: &str) -> String {
    key.trim_start_matches('/').replace('/', "_").to_uppercase()
}

/// `FOO_BAR` -> `/foo/bar`.
pub fn env_to_key(var: &str) -> String {
    format!("/{}", var.to_lowercase().replace('_', "/"))
}

/// Lists `vars` under `prefixes` the way confd's env backend does: a prefix selects every
/// variable whose name starts with the prefix's variable name.
pub fn list_from(vars: impl Iterator<Item = (String, String)>, prefixes: &[String]) -> KvMap {
    let wanted: Vec<String> = prefixes.iter().map(|p| key_to_env(p)).collect();
    vars.filter(|(name, _)| wanted.iter().any(|w| name.starts_with(w.as_str())))
        .map(|(name, value)| (env_to_key(&name), value))
        .collect()
}

#[async_trait]
impl Backend for EnvBackend {
    fn kind(&self) -> &'static str {
        "env"
    }

    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        // Variables that are not valid Unicode cannot be keys; skip them.
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Ok(Snapshot {
            kvs: list_from(vars, prefixes),
            revision: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_matches_confd() {
        assert_eq!(key_to_env("/foo/bar"), "FOO_BAR");
        assert_eq!(key_to_env("/app/servers"), "APP_SERVERS");
        assert_eq!(env_to_key("FOO_BAR"), "/foo/bar");
    }

    #[test]
    fn lists_by_variable_prefix() {
        let vars = vec![
            ("APP_SERVERS_WEB1".to_string(), "10.0.0.1:80".to_string()),
            ("APP_SERVERS_WEB2".to_string(), "10.0.0.2:80".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let got = list_from(vars.into_iter(), &["/app/servers".to_string()]);
        assert_eq!(got.len(), 2);
        assert_eq!(got["/app/servers/web1"], "10.0.0.1:80");
    }
}
