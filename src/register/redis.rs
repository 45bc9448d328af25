//! Registration in Redis: `SET key value EX ttl`, repeated every third of the TTL, so a
//! registrar that dies leaves a key that expires. Deregistering deletes the key only
//! while it still holds our value (a Lua script, so the compare and the delete are one
//! step): an instance that has taken the key over keeps it.
//!
//! Connections, credentials, TLS and Sentinel come from the Redis backend's `conn`.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;

use super::Registration;
use super::keeper::{Removed, Store};
use crate::backend::redis::KeyMap;
use crate::backend::redis::conn::{KIND, Target, classify, describe};
use crate::backend::{BackendConfig, BackendError};

/// Longest wait for one command.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Deletes KEYS[1] only when it holds ARGV[1]; returns 1 when it deleted. With an
/// ownership hash (KEYS[2], field ARGV[2]) the field goes too while it holds ARGV[1].
const DELETE_IF_OURS: &str = r"
if KEYS[2] and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
    redis.call('HDEL', KEYS[2], ARGV[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// One registration's key in Redis.
pub struct RedisStore {
    /// Where to connect (servers or Sentinels).
    target: Target,
    /// The open connection and the node it goes to (`host:port`, for errors); dropped
    /// after any error so the next attempt reconnects and, behind Sentinel, asks again.
    conn: Option<(String, MultiplexedConnection)>,
    /// The Redis key (the registration's key mapped with `--separator`).
    key: String,
    value: String,
    ttl: u64,
    script: redis::Script,
    /// The ownership hash this key is recorded in (`register --from-docker`), as
    /// (Redis key of the hash, field): put sets the field to the value with the key, and
    /// deregistering removes the field while it still holds our value.
    owner: Option<(String, String)>,
}

impl RedisStore {
    /// Parses the nodes; no connection is made yet.
    pub fn new(cfg: &BackendConfig, reg: &Registration) -> Result<Self, BackendError> {
        Ok(Self {
            target: Target::from_config(cfg)?,
            conn: None,
            key: KeyMap::new(cfg.separator.as_deref()).to_store(&reg.key),
            value: reg.value.clone(),
            ttl: reg.ttl,
            script: redis::Script::new(DELETE_IF_OURS),
            owner: None,
        })
    }

    /// The connection to the server holding the data, opened when needed. Behind
    /// Sentinel the master is asked for every time, so a failover is followed at once.
    async fn conn(&mut self) -> Result<(String, MultiplexedConnection), BackendError> {
        if self.target.master_name().is_some() {
            let master = bounded(&self.target.shown(), self.target.master()).await?;
            if self.conn.as_ref().is_some_and(|(s, _)| *s != master.shown) {
                self.conn = None;
            }
        }
        if let Some((s, c)) = &self.conn {
            return Ok((s.clone(), c.clone()));
        }
        let (node, c) = bounded(&self.target.shown(), self.target.connect()).await?;
        self.conn = Some((node.shown.clone(), c.clone()));
        Ok((node.shown, c))
    }

    /// Runs `run` on a connection to the data server; an error drops the connection.
    async fn query<T, F>(
        &mut self,
        what: &str,
        run: impl FnOnce(MultiplexedConnection) -> F,
    ) -> Result<T, BackendError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let (shown, conn) = self.conn().await?;
        let result = match tokio::time::timeout(OP_TIMEOUT, run(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let msg = format!("{what} {}: {}", self.key, describe(&e));
                Err(if classify(&shown, &e).is_transient() {
                    BackendError::transient(KIND, shown, msg)
                } else {
                    BackendError::fatal(KIND, shown, msg)
                })
            }
            Err(_) => Err(BackendError::transient(
                KIND,
                shown,
                format!("{what} {}: no answer within {OP_TIMEOUT:?}", self.key),
            )),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

/// `f` bounded by twice [`OP_TIMEOUT`] (a connect may first ask a Sentinel).
async fn bounded<T>(
    shown: &str,
    f: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(OP_TIMEOUT * 2, f).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::transient(KIND, shown, "connect: no answer")),
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn connect(&mut self) -> Result<(), BackendError> {
        self.conn().await.map(|_| ())
    }

    async fn put(&mut self) -> Result<(), BackendError> {
        if self.owner.is_some() {
            return self.put_owned().await;
        }
        let (key, value, ttl) = (self.key.clone(), self.value.clone(), self.ttl);
        self.query("SET", |mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn refresh(&mut self) -> Result<(), BackendError> {
        // SET again: it also brings back a key lost with a restarted or failed-over server.
        self.put().await
    }

    async fn remove(&mut self) -> Result<Removed, BackendError> {
        let script = self.script.clone();
        let (key, value) = (self.key.clone(), self.value.clone());
        let owner = self.owner.clone();
        let deleted: i64 = self
            .query("delete-if-ours", |mut c| async move {
                let mut call = script.key(&key);
                call.arg(&value);
                if let Some((hash, field)) = &owner {
                    call.key(hash).arg(field);
                }
                call.invoke_async(&mut c).await
            })
            .await?;
        Ok(if deleted == 1 {
            Removed::Deleted
        } else {
            Removed::NotOurs
        })
    }

    fn refresh_every(&self) -> Duration {
        Duration::from_millis(self.ttl.max(1) * 1000 / 3)
    }
}

impl RedisStore {
    /// Records the key in the ownership hash `hash` (a Redis key) under `field`.
    pub fn owned_by(mut self, hash: String, field: String) -> Self {
        self.owner = Some((hash, field));
        self
    }

    /// `SET key value EX ttl` with the ownership field set and the hash's expiry pushed
    /// to the TTL, in one MULTI.
    async fn put_owned(&mut self) -> Result<(), BackendError> {
        let (key, value, ttl) = (self.key.clone(), self.value.clone(), self.ttl);
        let (hash, field) = self.owner.clone().unwrap_or_default();
        self.query("SET+HSET", |mut c| async move {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EX")
                .arg(ttl)
                .ignore()
                .cmd("HSET")
                .arg(&hash)
                .arg(&field)
                .arg(&value)
                .ignore()
                .cmd("EXPIRE")
                .arg(&hash)
                .arg(ttl)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}
