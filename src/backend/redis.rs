//! Redis backend (in progress).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Backend, BackendConfig, BackendError, Snapshot};

/// Reads and watches prefixes in Redis.
pub struct RedisBackend {
    endpoints: String,
}

impl RedisBackend {
    /// Builds the client for every member in `cfg.nodes`.
    pub async fn connect(cfg: &BackendConfig) -> Result<Self, BackendError> {
        Ok(Self {
            endpoints: cfg.nodes.join(","),
        })
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn list(&self, _prefixes: &[String]) -> Result<Snapshot, BackendError> {
        let _ = Arc::new(());
        Err(BackendError::fatal("redis", self.endpoints.clone(), "not implemented yet"))
    }
}
