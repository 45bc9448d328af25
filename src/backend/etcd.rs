//! etcd v3 backend (in progress).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Backend, BackendConfig, BackendError, Snapshot};

/// Reads and watches prefixes in an etcd v3 cluster.
pub struct EtcdBackend {
    endpoints: String,
}

impl EtcdBackend {
    /// Builds the client for every member in `cfg.nodes`.
    pub async fn connect(cfg: &BackendConfig) -> Result<Self, BackendError> {
        Ok(Self {
            endpoints: cfg.nodes.join(","),
        })
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    fn kind(&self) -> &'static str {
        "etcd"
    }

    async fn list(&self, _prefixes: &[String]) -> Result<Snapshot, BackendError> {
        let _ = Arc::new(());
        Err(BackendError::fatal("etcd", self.endpoints.clone(), "not implemented yet"))
    }
}
