//! Registration in ZooKeeper: an ephemeral znode held by the registrar's session (its
//! timeout is `--ttl`), parents created as needed. SIGTERM deletes the node at once; a
//! registrar that dies lets its session expire, which takes the node with it; after a
//! session expiry the registrar makes a new session and creates the node again.
//!
//! A node holding our value on an earlier session (this registrar, crashed and restarted
//! before the old session expired) is replaced at once. A node holding another value on
//! another session is left alone, and registering waits until that session ends; a
//! persistent node at the key is refused. Deregistering deletes only this session's
//! node (also one whose create reply was lost).
//!
//! With `--nerve` the node is nerve's: ephemeral *sequential* under the service
//! directory (`<dir>/<name>_0000000042`), holding `{"host":..,"port":..,"name":..}`.
//!
//! Connections and auth come from the ZooKeeper backend's `conn`.

use std::time::Duration;

use async_trait::async_trait;
use zookeeper_client as zk;

use super::Registration;
use super::keeper::{Removed, Store};
use crate::backend::zookeeper::conn::{KIND, Target};
use crate::backend::{BackendConfig, BackendError};

/// Longest wait for one request.
const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest time between two checks that the node is still there (a lost session is
/// noticed, and the node created again, within this).
const REFRESH_CAP: Duration = Duration::from_secs(1);

/// The node a registrar with digest auth creates: all rights for its own identity, read
/// for anyone (a watching confsync may use other credentials or none). Its parents are
/// open to all, so other instances can register beside it.
const AUTHED_ACLS: &[zk::Acl] = &[
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

/// Directories a registrar creates: everyone may read them and register in them, nobody
/// may change their ACL.
fn dir_acls() -> &'static [zk::Acl] {
    static ACLS: std::sync::LazyLock<[zk::Acl; 1]> = std::sync::LazyLock::new(|| {
        use zk::Permission as P;
        [zk::Acl::new(
            P::READ | P::WRITE | P::CREATE | P::DELETE,
            zk::AuthId::anyone(),
        )]
    });
    &*ACLS
}

/// One registration's znode.
pub struct ZkStore {
    target: Target,
    client: Option<zk::Client>,
    /// The node's path; with `nerve`, the path before the sequence number
    /// (`<dir>/<name>_`).
    key: String,
    value: Vec<u8>,
    /// The session timeout asked for.
    timeout: Duration,
    /// Create ephemeral sequential nodes (nerve's format).
    sequential: bool,
    /// The node this store created, with the session that holds it.
    node: Option<(String, zk::SessionId)>,
    /// Whether digest auth is given (nodes then get [`AUTHED_ACLS`]).
    authed: bool,
    /// Set once "held by another session" has been logged for the current node.
    warned_foreign: bool,
}

impl ZkStore {
    /// Checks the nodes; no session is made yet.
    pub fn new(cfg: &BackendConfig, reg: &Registration) -> Result<Self, BackendError> {
        Ok(Self {
            target: Target::from_config(cfg)?,
            client: None,
            key: reg.key.clone(),
            value: reg.value.clone().into_bytes(),
            timeout: Duration::from_secs(reg.ttl.max(1)),
            sequential: cfg.nerve,
            node: None,
            authed: cfg.username.is_some(),
            warned_foreign: false,
        })
    }

    /// The session, made (again) when there is none or it has ended.
    async fn client(&mut self) -> Result<zk::Client, BackendError> {
        if let Some(c) = &self.client
            && !c.state().is_terminated()
        {
            return Ok(c.clone());
        }
        let c = self.target.connect_with(self.timeout).await?;
        if c.session_timeout() != self.timeout {
            tracing::info!(
                key = %self.key,
                asked = ?self.timeout,
                granted = ?c.session_timeout(),
                "the ensemble bounds the session timeout (--ttl) to its min/maxSessionTimeout"
            );
        }
        self.client = Some(c.clone());
        Ok(c)
    }

    fn acls(&self) -> zk::Acls<'static> {
        if self.authed {
            zk::Acls::new(AUTHED_ACLS)
        } else {
            zk::Acls::anyone_all()
        }
    }

    /// `op` on `path` bounded by [`OP_TIMEOUT`], its error named.
    async fn bounded<T>(
        &self,
        op: &str,
        path: &str,
        f: impl Future<Output = Result<T, zk::Error>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(OP_TIMEOUT, f).await {
            Ok(r) => r.map_err(|e| self.target.error(&format!("{op} {path}"), &e)),
            Err(_) => Err(BackendError::transient(
                KIND,
                self.target.shown(),
                format!("{op} {path}: no answer within {OP_TIMEOUT:?}"),
            )),
        }
    }

    /// The parent directory of the node, created (persistent, empty) when missing.
    async fn make_parents(&self, client: &zk::Client) -> Result<(), BackendError> {
        let dir = match self.key.rfind('/') {
            Some(0) | None => return Ok(()),
            Some(i) => &self.key[..i],
        };
        // Asked first: creating an existing directory still needs CREATE on its parent,
        // which an operator may have locked after making the directory for us.
        if self
            .bounded("stat", dir, client.check_stat(dir))
            .await?
            .is_some()
        {
            return Ok(());
        }
        // Open to other instances (other users, or none), but not ADMIN: nobody can lock
        // the directory against readers.
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::new(dir_acls()));
        match tokio::time::timeout(OP_TIMEOUT, client.mkdir(dir, &opts)).await {
            Ok(Ok(()) | Err(zk::Error::NodeExists)) => Ok(()),
            Ok(Err(zk::Error::NoNode)) => Err(BackendError::fatal(
                KIND,
                self.target.shown(),
                format!("create {dir}: the chroot of --node does not exist; create it first"),
            )),
            Ok(Err(e)) => Err(self.target.error(&format!("create {dir}"), &e)),
            Err(_) => Err(BackendError::transient(
                KIND,
                self.target.shown(),
                format!("create {dir}: no answer within {OP_TIMEOUT:?}"),
            )),
        }
    }

    /// The node this session already holds at the registration's place (a create whose
    /// reply was lost may have made one after all), if any. With `--nerve` a sibling
    /// `<name>_<seq>` holding our data on another session (this registrar before a
    /// restart or a lost session) is deleted, so synapse never sees the instance twice.
    async fn find_own(
        &self,
        client: &zk::Client,
        session: zk::SessionId,
    ) -> Result<Option<String>, BackendError> {
        if !self.sequential {
            let stat = self
                .bounded("stat", &self.key, client.check_stat(&self.key))
                .await?;
            return Ok(stat
                .filter(|s| s.ephemeral_owner == session.0)
                .map(|_| self.key.clone()));
        }
        let Some((dir, stem)) = self.key.rsplit_once('/') else {
            return Ok(None);
        };
        let dir = if dir.is_empty() { "/" } else { dir };
        let kids = match tokio::time::timeout(OP_TIMEOUT, client.list_children(dir)).await {
            Ok(Err(zk::Error::NoNode)) => return Ok(None),
            other => other
                .unwrap_or(Err(zk::Error::Timeout))
                .map_err(|e| self.target.error(&format!("list {dir}"), &e))?,
        };
        let mut own = None;
        for kid in kids {
            let seq = kid.strip_prefix(stem).unwrap_or("");
            if seq.len() != 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let path = format!("{}/{kid}", dir.trim_end_matches('/'));
            let got = tokio::time::timeout(OP_TIMEOUT, client.get_data(&path))
                .await
                .unwrap_or(Err(zk::Error::Timeout));
            let (data, stat) = match got {
                Ok(v) => v,
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(self.target.error(&format!("read {path}"), &e)),
            };
            if stat.ephemeral_owner == session.0 {
                own.get_or_insert(path);
            } else if stat.ephemeral_owner != 0 && data == self.value {
                tracing::info!(key = %path, "deleting this instance's registration from an earlier session");
                let _ = tokio::time::timeout(OP_TIMEOUT, client.delete(&path, Some(stat.version)))
                    .await;
            }
        }
        Ok(own)
    }

    /// Creates the node on `client`'s session; returns its path, or the client's error
    /// (`NodeExists` matters to the caller).
    async fn create(&self, client: &zk::Client) -> Result<String, zk::Error> {
        let mode = if self.sequential {
            zk::CreateMode::EphemeralSequential
        } else {
            zk::CreateMode::Ephemeral
        };
        let acls = self.acls();
        let opts = mode.with_acls(acls);
        let created =
            tokio::time::timeout(OP_TIMEOUT, client.create(&self.key, &self.value, &opts))
                .await
                .unwrap_or(Err(zk::Error::Timeout));
        let (_, seq) = created?;
        Ok(if self.sequential {
            format!("{}{:010}", self.key, seq.into_i64())
        } else {
            self.key.clone()
        })
    }

    /// The key exists on another session: a node holding our value is this registrar's
    /// from before a restart or a lost session, and is replaced at once; another value
    /// belongs to a live instance (or one whose session has not expired yet) and is left
    /// alone: an error, so the keeper tries again until that session ends. A persistent
    /// node is never replaced.
    async fn take_over(&self, client: &zk::Client) -> Result<String, BackendError> {
        let got = tokio::time::timeout(OP_TIMEOUT, client.get_data(&self.key))
            .await
            .unwrap_or(Err(zk::Error::Timeout));
        let (data, stat) = match got {
            Ok(v) => v,
            Err(zk::Error::NoNode) => return self.create_named(client).await,
            Err(e) => return Err(self.target.error(&format!("read {}", self.key), &e)),
        };
        if stat.ephemeral_owner == 0 {
            return Err(BackendError::fatal(
                KIND,
                self.target.shown(),
                format!(
                    "{} is a persistent node (not a registration): refusing to replace it",
                    self.key
                ),
            ));
        }
        if stat.ephemeral_owner == client.session_id().0 {
            return Ok(self.key.clone());
        }
        if data != self.value {
            return Err(BackendError::transient(
                KIND,
                self.target.shown(),
                format!(
                    "{} is held by session {:#x} with another value; waiting until it goes",
                    self.key, stat.ephemeral_owner
                ),
            ));
        }
        let deleted =
            tokio::time::timeout(OP_TIMEOUT, client.delete(&self.key, Some(stat.version))).await;
        match deleted {
            // Replaced or removed meanwhile: the create below decides.
            Ok(Ok(()) | Err(zk::Error::NoNode | zk::Error::BadVersion)) | Err(_) => {}
            Ok(Err(e)) => return Err(self.target.error(&format!("replace {}", self.key), &e)),
        }
        self.create_named(client).await
    }

    /// [`ZkStore::create`] with its error named.
    async fn create_named(&self, client: &zk::Client) -> Result<String, BackendError> {
        self.create(client)
            .await
            .map_err(|e| self.target.error(&format!("create {}", self.key), &e))
    }
}

#[async_trait]
impl Store for ZkStore {
    async fn connect(&mut self) -> Result<(), BackendError> {
        self.client().await.map(|_| ())
    }

    async fn put(&mut self) -> Result<(), BackendError> {
        let client = self.client().await?;
        let session = client.session_id();
        // Ours already (a refresh that failed on a brief disconnect): keep it.
        if let Some((path, owner)) = self.node.clone()
            && owner == session
        {
            let stat = self
                .bounded("stat", &path, client.check_stat(&path))
                .await?;
            if stat.is_some_and(|s| s.ephemeral_owner == session.0) {
                return Ok(());
            }
        }
        self.node = None;
        self.warned_foreign = false;
        self.make_parents(&client).await?;
        if let Some(path) = self.find_own(&client, session).await? {
            self.node = Some((path, session));
            return Ok(());
        }
        let path = match self.create(&client).await {
            Ok(p) => p,
            Err(zk::Error::NodeExists) if !self.sequential => self.take_over(&client).await?,
            Err(e) => return Err(self.target.error(&format!("create {}", self.key), &e)),
        };
        self.node = Some((path, session));
        Ok(())
    }

    async fn refresh(&mut self) -> Result<(), BackendError> {
        let Some((path, owner)) = self.node.clone() else {
            return Err(BackendError::transient(
                KIND,
                self.target.shown(),
                "not registered",
            ));
        };
        let client = match &self.client {
            Some(c) if !c.state().is_terminated() && c.session_id() == owner => c.clone(),
            _ => {
                return Err(BackendError::transient(
                    KIND,
                    self.target.shown(),
                    format!("session of {path} expired; registering again"),
                ));
            }
        };
        match self
            .bounded("stat", &path, client.check_stat(&path))
            .await?
        {
            None => Err(BackendError::transient(
                KIND,
                self.target.shown(),
                format!("{path} is gone; registering again"),
            )),
            Some(s) if s.ephemeral_owner != owner.0 => {
                if !self.warned_foreign {
                    tracing::warn!(key = %path, "another session holds this node now; leaving it");
                    self.warned_foreign = true;
                }
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    async fn remove(&mut self) -> Result<Removed, BackendError> {
        let Some(client) = self.client.clone().filter(|c| !c.state().is_terminated()) else {
            // The session is gone, and with it the node.
            self.node = None;
            return Ok(Removed::NotOurs);
        };
        let session = client.session_id();
        // Untracked: a create whose reply was lost may still have made our node.
        let tracked = self.node.clone().filter(|(_, owner)| *owner == session);
        let path = match tracked {
            Some((path, _)) => path,
            None => match self.find_own(&client, session).await? {
                Some(path) => path,
                None => {
                    self.node = None;
                    return Ok(Removed::NotOurs);
                }
            },
        };
        let owner = session;
        let stat = self
            .bounded("stat", &path, client.check_stat(&path))
            .await?;
        let removed = match stat {
            Some(s) if s.ephemeral_owner == owner.0 => {
                let deleted =
                    tokio::time::timeout(OP_TIMEOUT, client.delete(&path, Some(s.version)))
                        .await
                        .unwrap_or(Err(zk::Error::Timeout));
                match deleted {
                    Ok(()) => Removed::Deleted,
                    // Gone meanwhile, or changed by someone else: not ours to delete.
                    Err(zk::Error::NoNode | zk::Error::BadVersion) => Removed::NotOurs,
                    Err(e) => return Err(self.target.error(&format!("delete {path}"), &e)),
                }
            }
            _ => Removed::NotOurs,
        };
        self.node = None;
        Ok(removed)
    }

    fn refresh_every(&self) -> Duration {
        (self.timeout / 3).clamp(Duration::from_millis(100), REFRESH_CAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(ttl: u64, nerve: bool) -> ZkStore {
        let cfg = BackendConfig {
            kind: crate::backend::BackendKind::Zookeeper,
            nodes: vec!["127.0.0.1:2181".into()],
            nerve,
            ..Default::default()
        };
        let reg = Registration {
            key: "/svc/web/a".into(),
            value: "v".into(),
            ttl,
            check: None,
        };
        ZkStore::new(&cfg, &reg).unwrap()
    }

    #[test]
    fn refreshes_often_enough_to_notice_a_lost_session() {
        assert_eq!(store(30, false).refresh_every(), REFRESH_CAP);
        assert_eq!(store(1, false).refresh_every(), Duration::from_secs(1) / 3);
        assert!(store(5, true).sequential);
    }
}
