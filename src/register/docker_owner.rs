//! What a Docker registrar owns, so that a restarted one removes its own keys of
//! containers that went away while it was down, and never a key it did not write.
//!
//! Every registered key gets an ownership record under
//! `/confsync/registrars/<registrar-id>`, written together with the key:
//! - etcd: the record `/confsync/registrars/<id><key>` (value: the key) is put in the
//!   same transaction and on the same lease as the key. Revoking that lease deletes the
//!   key and its record at once, and only while the key is still on it: a key somebody
//!   else wrote since (another lease, or none) stays.
//! - Redis: one hash `/confsync/registrars/<id>` (mapped with `--separator` like every
//!   key), field = key, value = the value registered; set in one MULTI with the key, its
//!   expiry pushed to the TTL on every refresh. A key is deleted only while it still
//!   holds the value the field records (one Lua script with the field's removal).
//!
//! A crashed registrar's records expire with its keys (same lease, same TTL), so there
//! is no state file; a registrar restarted within the TTL finds its records and removes
//! those whose key no running container wants.

use std::collections::HashSet;
use std::time::Duration;

use tracing::info;

use super::Registration;
use super::keeper::Store;
use crate::backend::{BackendConfig, BackendError, BackendKind};

/// Where ownership records live.
pub const OWNER_PREFIX: &str = "/confsync/registrars";

/// Longest wait for one request while reconciling.
#[cfg(any(feature = "etcd", feature = "redis"))]
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// A registrar's identity (`--registrar-id`, by default the hostname).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    id: String,
}

impl Owner {
    /// Checks `id`: non-empty, no `/`, `..`, whitespace or control characters.
    pub fn new(id: &str) -> Result<Owner, String> {
        let bad = id.is_empty()
            || id.contains('/')
            || id.contains("..")
            || id.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad {
            return Err(format!(
                "--registrar-id {id:?}: must be non-empty, without `/`, `..`, whitespace \
                 or control characters"
            ));
        }
        Ok(Owner { id: id.to_string() })
    }

    /// The default identity: this host's name.
    pub fn hostname() -> Result<Owner, String> {
        let name = nix::unistd::gethostname()
            .map_err(|e| format!("the hostname (for --registrar-id): {e}"))?;
        Owner::new(&name.to_string_lossy())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The confsync key of this registrar's records (a prefix in etcd, a hash in Redis).
    pub fn base(&self) -> String {
        format!("{OWNER_PREFIX}/{}", self.id)
    }
}

/// The store client for one container's registration, recording ownership.
#[cfg_attr(not(any(feature = "etcd", feature = "redis")), allow(unused_variables))]
pub async fn store(
    cfg: &BackendConfig,
    reg: &Registration,
    owner: &Owner,
) -> Result<Box<dyn Store>, BackendError> {
    match cfg.kind {
        #[cfg(feature = "etcd")]
        BackendKind::Etcd => Ok(Box::new(
            super::etcd::EtcdStore::new(cfg, reg).await?.marked(format!(
                "{}{}",
                owner.base(),
                reg.key
            )),
        )),
        #[cfg(feature = "redis")]
        BackendKind::Redis => {
            let hash = crate::backend::redis::KeyMap::new(cfg.separator.as_deref())
                .to_store(&owner.base());
            Ok(Box::new(
                super::redis::RedisStore::new(cfg, reg)?.owned_by(hash, reg.key.clone()),
            ))
        }
        #[allow(unreachable_patterns)]
        BackendKind::Etcd | BackendKind::Redis => Err(crate::backend::not_built(cfg.kind)),
        other => Err(BackendError::fatal(
            other.name(),
            "-",
            "register works with etcd or redis",
        )),
    }
}

/// Removes this registrar's keys that no key in `wanted` stands for; returns how many.
#[cfg_attr(not(any(feature = "etcd", feature = "redis")), allow(unused_variables))]
pub async fn reconcile(
    cfg: &BackendConfig,
    owner: &Owner,
    wanted: &HashSet<String>,
) -> Result<usize, BackendError> {
    match cfg.kind {
        #[cfg(feature = "etcd")]
        BackendKind::Etcd => etcd_reconcile(cfg, owner, wanted).await,
        #[cfg(feature = "redis")]
        BackendKind::Redis => redis_reconcile(cfg, owner, wanted).await,
        _ => Ok(0),
    }
}

#[cfg(any(feature = "etcd", feature = "redis"))]
fn timed_out(kind: &'static str, cfg: &BackendConfig, what: &str) -> BackendError {
    BackendError::transient(
        kind,
        cfg.nodes.join(","),
        format!("{what}: no answer within {OP_TIMEOUT:?}"),
    )
}

#[cfg(feature = "etcd")]
async fn etcd_reconcile(
    cfg: &BackendConfig,
    owner: &Owner,
    wanted: &HashSet<String>,
) -> Result<usize, BackendError> {
    use etcd_client::GetOptions;
    let backend = crate::backend::etcd::EtcdBackend::connect(cfg).await?;
    let late = |what: &str| timed_out("etcd", cfg, what);
    let base = owner.base();
    let list_what = format!("list {base}/");
    let mut c = tokio::time::timeout(OP_TIMEOUT, backend.client())
        .await
        .map_err(|_| late("connect"))??;
    let listing = c.get(format!("{base}/"), Some(GetOptions::new().with_prefix()));
    let resp = tokio::time::timeout(OP_TIMEOUT, listing)
        .await
        .map_err(|_| late(&list_what))?
        .map_err(|e| backend.error(e))?;
    let mut removed = 0;
    for kv in resp.kvs() {
        let Some(key) = std::str::from_utf8(kv.key())
            .ok()
            .and_then(|m| m.strip_prefix(&base))
        else {
            continue;
        };
        if wanted.contains(key) || kv.lease() == 0 {
            continue;
        }
        let what = format!("lease revoke for {key}");
        let revoke = tokio::time::timeout(OP_TIMEOUT, c.lease_revoke(kv.lease()))
            .await
            .map_err(|_| late(&what))?;
        match revoke.map_err(|e| backend.error(e)) {
            Ok(_) => {}
            // Expired meanwhile: the key and its record are gone already.
            Err(e) if e.to_string().contains("lease not found") => continue,
            Err(e) => return Err(e),
        }
        info!(key = %key, lease = %format!("{:x}", kv.lease()), "removed: no running container has this key any more");
        removed += 1;
    }
    Ok(removed)
}

#[cfg(feature = "redis")]
async fn redis_reconcile(
    cfg: &BackendConfig,
    owner: &Owner,
    wanted: &HashSet<String>,
) -> Result<usize, BackendError> {
    use crate::backend::redis::conn::{Target, classify};
    let target = Target::from_config(cfg)?;
    let late = |what: &str| timed_out("redis", cfg, what);
    let (node, mut conn) = tokio::time::timeout(OP_TIMEOUT, target.connect())
        .await
        .map_err(|_| late("connect"))??;
    let hash = crate::backend::redis::KeyMap::new(cfg.separator.as_deref()).to_store(&owner.base());
    let what = format!("HGETALL {hash}");
    let fields: Vec<(String, String)> = tokio::time::timeout(
        OP_TIMEOUT,
        redis::cmd("HGETALL").arg(&hash).query_async(&mut conn),
    )
    .await
    .map_err(|_| late(&what))?
    .map_err(|e| classify(&node.shown, &e))?;
    let mut removed = 0;
    for (key, value) in fields {
        if wanted.contains(&key) {
            continue;
        }
        let reg = Registration {
            key: key.clone(),
            value,
            ttl: 1,
            check: None,
        };
        let mut store =
            super::redis::RedisStore::new(cfg, &reg)?.owned_by(hash.clone(), key.clone());
        let found = store.remove().await?;
        info!(key = %key, found = ?found, "removed: no running container has this key any more");
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrar_ids_are_checked() {
        assert_eq!(
            Owner::new("host-1").unwrap().base(),
            "/confsync/registrars/host-1"
        );
        for bad in ["", "a/b", "..", "a b", "a\n"] {
            assert!(
                Owner::new(bad).unwrap_err().contains("--registrar-id"),
                "{bad:?}"
            );
        }
    }
}
