//! Registration in etcd: a lease of the TTL kept alive over one keepalive stream, the key
//! put with the lease. Revoking the lease deletes the key at once; a registrar that dies
//! stops the keepalives and etcd deletes the key when the lease runs out.
//!
//! The client, its credentials and TLS come from the etcd backend
//! ([`EtcdBackend`](crate::backend::etcd::EtcdBackend)).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp};

use super::Registration;
use super::keeper::{Removed, Store};
use crate::backend::etcd::EtcdBackend;
use crate::backend::{BackendConfig, BackendError};

/// Kind name in errors.
const KIND: &str = "etcd";
/// Longest wait for one request (grant, put, keepalive answer, revoke).
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// A lease we hold, with its keepalive stream.
struct Lease {
    id: i64,
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
}

/// One registration's lease and key in etcd.
pub struct EtcdStore {
    /// The backend's client builder (credentials, TLS, every member).
    backend: EtcdBackend,
    /// The members, for errors.
    endpoint: String,
    key: String,
    value: String,
    /// The TTL asked for.
    ttl: i64,
    /// The TTL etcd granted (it may raise a TTL below its minimum).
    granted: i64,
    /// The live lease, while its keepalive stream works.
    lease: Option<Lease>,
    /// A lease whose keepalive stream broke: it may still hold the key, so it is revoked
    /// once a new lease holds the key, or at deregistration.
    stale: Option<i64>,
    /// An ownership record (`register --from-docker`): this key is put with the same
    /// lease and the registered key as its value, so it lives and dies with the key.
    marker: Option<String>,
}

impl EtcdStore {
    /// Validates the configuration (no request is made yet).
    pub async fn new(cfg: &BackendConfig, reg: &Registration) -> Result<Self, BackendError> {
        Ok(Self {
            backend: EtcdBackend::connect(cfg).await?,
            endpoint: cfg.nodes.join(","),
            key: reg.key.clone(),
            value: reg.value.clone(),
            ttl: reg.ttl as i64,
            granted: reg.ttl as i64,
            lease: None,
            stale: None,
            marker: None,
        })
    }

    /// Runs one request with [`OP_TIMEOUT`], classifying its error.
    async fn op<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(OP_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.backend.error(e)),
            Err(_) => Err(self.transient(format!("{what}: no answer within {OP_TIMEOUT:?}"))),
        }
    }

    fn transient(&self, msg: String) -> BackendError {
        BackendError::transient(
            KIND,
            self.endpoint.clone(),
            format!("key {}: {msg}", self.key),
        )
    }

    async fn client(&self) -> Result<Client, BackendError> {
        match tokio::time::timeout(OP_TIMEOUT * 2, self.backend.client()).await {
            Ok(r) => r,
            Err(_) => Err(self.transient("connect: no answer".into())),
        }
    }
}

/// True when etcd says the lease does not exist (expired or revoked already).
fn lease_not_found(e: &BackendError) -> bool {
    e.to_string().contains("lease not found")
}

#[async_trait]
impl Store for EtcdStore {
    async fn connect(&mut self) -> Result<(), BackendError> {
        // Building the client authenticates when a user is given.
        self.client().await.map(|_| ())
    }

    async fn put(&mut self) -> Result<(), BackendError> {
        let mut c = self.client().await?;
        let grant = self
            .op("lease grant", c.lease_grant(self.ttl, None))
            .await?;
        let id = grant.id();
        let opts = PutOptions::new().with_lease(id);
        let mut ops = vec![TxnOp::put(
            self.key.as_str(),
            self.value.as_str(),
            Some(opts.clone()),
        )];
        if let Some(m) = &self.marker {
            ops.push(TxnOp::put(m.as_str(), self.key.as_str(), Some(opts)));
        }
        let put = self.op("put", c.txn(Txn::new().and_then(ops)));
        if let Err(e) = put.await {
            // Not holding anything; let it go rather than wait for it to expire.
            let _ = self.op("lease revoke", c.lease_revoke(id)).await;
            return Err(e);
        }
        let (keeper, stream) = self.op("lease keepalive", c.lease_keep_alive(id)).await?;
        self.granted = grant.ttl().max(1);
        let old = self
            .lease
            .replace(Lease { id, keeper, stream })
            .map(|l| l.id);
        // The key now belongs to the new lease: revoking the old one deletes nothing else.
        for old in [old, self.stale.take()].into_iter().flatten() {
            if old != id {
                let _ = self.op("lease revoke", c.lease_revoke(old)).await;
            }
        }
        Ok(())
    }

    async fn refresh(&mut self) -> Result<(), BackendError> {
        let Some(mut lease) = self.lease.take() else {
            return Err(self.transient("no lease".into()));
        };
        let id = lease.id;
        let sent = lease.keeper.keep_alive().await;
        let answer = match sent {
            Ok(()) => tokio::time::timeout(OP_TIMEOUT, lease.stream.message()).await,
            Err(e) => Ok(Err(e)),
        };
        match answer {
            Ok(Ok(Some(r))) if r.ttl() > 0 => {
                self.lease = Some(lease);
                Ok(())
            }
            Ok(Ok(Some(_))) => Err(self.transient(format!("lease {id:x} expired"))),
            Ok(Ok(None)) => {
                self.stale = Some(id);
                Err(self.transient(format!("keepalive stream of lease {id:x} ended")))
            }
            Ok(Err(e)) => {
                self.stale = Some(id);
                Err(self.backend.error(e))
            }
            Err(_) => {
                self.stale = Some(id);
                Err(self.transient(format!(
                    "no keepalive answer for lease {id:x} within {OP_TIMEOUT:?}"
                )))
            }
        }
    }

    async fn remove(&mut self) -> Result<Removed, BackendError> {
        let Some(id) = self.lease.take().map(|l| l.id).or(self.stale.take()) else {
            return Ok(Removed::NotOurs);
        };
        let result = match self.client().await {
            Ok(mut c) => self.op("lease revoke", c.lease_revoke(id)).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => Ok(Removed::Deleted),
            Err(e) if lease_not_found(&e) => Ok(Removed::NotOurs),
            Err(e) => {
                self.stale = Some(id);
                Err(e)
            }
        }
    }

    fn refresh_every(&self) -> Duration {
        Duration::from_millis((self.granted.max(1) as u64) * 1000 / 3)
    }
}

impl EtcdStore {
    /// Puts `marker` (an ownership record) with the key, on the same lease.
    pub fn marked(mut self, marker: String) -> Self {
        self.marker = Some(marker);
        self
    }
}
