//! The docker backend: the engine's running containers as keys (layout in [`keys`]).
//!
//! - [`DockerBackend::connect`] checks the node string, TLS files and label filters;
//!   the engine is reached on first use (it may be down when confsync starts).
//! - `list` lists the running containers that pass the filters, inspects each, and
//!   lays them out as keys.
//! - `watch` (in [`watch`]) follows the engine's container events, inspecting again only
//!   the container an event names, with a full listing at the start of every session
//!   (after every reconnect) and every `resync_interval`.
//!
//! Paused containers are left out, like stopped ones: they cannot answer traffic.

mod keys;
mod watch;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Backend, BackendConfig, BackendError, KvMap, Snapshot, Update, under_any};
use crate::docker::{self, ConnectOptions, Container, DockerClient, DockerError, LabelFilter};

pub use keys::ROOT;

/// The kind name used in logs and errors.
const KIND: &str = "docker";
/// Bound on one whole listing (list plus every inspect).
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a Docker engine's containers.
pub struct DockerBackend {
    client: DockerClient,
    filters: Vec<LabelFilter>,
    /// Written for ports published on 0.0.0.0 or `::`.
    host_ip: IpAddr,
    /// Full listing this often while watching (`None`: only after reconnects).
    resync: Option<Duration>,
}

impl DockerBackend {
    /// Validates the configuration; does not reach the engine.
    pub fn connect(cfg: &BackendConfig) -> Result<Self, BackendError> {
        if cfg.nodes.len() > 1 {
            return Err(BackendError::fatal(
                KIND,
                cfg.nodes.join(","),
                "the docker backend reads one engine: give one --node",
            ));
        }
        let mut opts = ConnectOptions::new(cfg.nodes.first().map(String::as_str));
        opts.client_cert = cfg.client_cert.clone();
        opts.client_key = cfg.client_key.clone();
        opts.client_ca = cfg.client_ca_keys.clone();
        let client = DockerClient::connect(&opts)
            .map_err(|e| BackendError::fatal(KIND, opts.node.clone(), e))?;
        let filters = cfg
            .docker_labels
            .iter()
            .map(|f| f.parse::<LabelFilter>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::fatal(KIND, opts.node.clone(), e))?;
        Ok(DockerBackend {
            client,
            filters,
            host_ip: cfg
                .docker_host_ip
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            resync: cfg.resync_interval,
        })
    }

    /// A backend error for `e`, transient or fatal as it is.
    fn error(&self, e: DockerError) -> BackendError {
        if e.is_transient() {
            self.client.forget_version();
            BackendError::transient(KIND, self.client.node(), e)
        } else {
            BackendError::fatal(KIND, self.client.node(), e)
        }
    }

    /// Every running container that passes the filters, by id.
    async fn containers(&self) -> Result<Vec<Container>, BackendError> {
        let work = async {
            let engine = self.client.engine().await?;
            docker::list_running(&self.client, &engine, &self.filters, self.host_ip).await
        };
        match tokio::time::timeout(LIST_TIMEOUT, work).await {
            Ok(r) => r.map_err(|e| self.error(e)),
            Err(_) => Err(BackendError::transient(
                KIND,
                self.client.node(),
                format!("no full listing within {} s", LIST_TIMEOUT.as_secs()),
            )),
        }
    }
}

/// The keys of `containers` under `prefixes`.
fn keys_under<'a>(
    containers: impl IntoIterator<Item = &'a Container>,
    prefixes: &[String],
) -> KvMap {
    let mut kvs = keys::layout(containers);
    kvs.retain(|k, _| under_any(k, prefixes));
    kvs
}

#[async_trait]
impl Backend for DockerBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        let containers = self.containers().await?;
        Ok(Snapshot {
            kvs: keys_under(&containers, prefixes),
            revision: None,
        })
    }

    fn can_watch(&self) -> bool {
        true
    }

    fn resyncs_while_watching(&self) -> bool {
        true
    }

    async fn watch(
        &self,
        prefixes: Vec<String>,
        from: Arc<Snapshot>,
        tx: mpsc::Sender<Update>,
        shutdown: CancellationToken,
    ) -> Result<(), BackendError> {
        watch::run(self, &prefixes, &from, &tx, &shutdown).await
    }
}
