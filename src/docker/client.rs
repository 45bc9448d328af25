//! Connecting to a Docker engine from a node string: `unix:///var/run/docker.sock` (the
//! default), `unix://PATH`, a bare socket path, or `tcp://HOST:PORT` (plain HTTP, or TLS
//! when a client certificate, key and CA are given).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};

/// The engine's usual socket.
pub const DEFAULT_NODE: &str = "unix:///var/run/docker.sock";

/// How long a request may wait for the engine's answer when not told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection needs.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The node string (see the module docs).
    pub node: String,
    /// TLS client certificate (PEM), for `tcp://`.
    pub client_cert: Option<PathBuf>,
    /// TLS client key (PEM), for `tcp://`.
    pub client_key: Option<PathBuf>,
    /// CA bundle (PEM) that signs the engine's certificate, for `tcp://`.
    pub client_ca: Option<PathBuf>,
    /// Limit on each request's wait for the engine's response headers (an event stream
    /// is bounded only in how long it takes to start).
    pub timeout: Duration,
}

impl ConnectOptions {
    /// Options for `node` (the default socket when `None`), no TLS, the default timeout.
    pub fn new(node: Option<&str>) -> Self {
        ConnectOptions {
            node: node.unwrap_or(DEFAULT_NODE).to_string(),
            client_cert: None,
            client_key: None,
            client_ca: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A Docker error, naming the engine and what was asked of it.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The node string or the TLS files are wrong: retrying will not help.
    #[error("docker node {node:?}: {message}")]
    Config { node: String, message: String },
    /// The engine could not be reached or refused a request.
    #[error("docker engine at {node}: {what}: {source}")]
    Engine {
        node: String,
        /// The request, e.g. `inspect container web1`.
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl DockerError {
    /// True for errors a retry may cure (the engine is down or busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, DockerError::Engine { .. })
    }

    /// True when the engine answered 404 (the container is gone).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            DockerError::Engine {
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                },
                ..
            }
        )
    }
}

/// How a node string reaches the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A unix socket at this path.
    Unix(PathBuf),
    /// `host:port` over TCP.
    Tcp(String),
}

/// Parses a node string.
pub fn parse_node(node: &str) -> Result<Transport, DockerError> {
    let bad = |message: &str| DockerError::Config {
        node: node.to_string(),
        message: message.to_string(),
    };
    let node_t = node.trim();
    if let Some(path) = node_t.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(bad("a unix socket needs an absolute path (unix:///path)"));
        }
        return Ok(Transport::Unix(PathBuf::from(path)));
    }
    if node_t.starts_with('/') {
        return Ok(Transport::Unix(PathBuf::from(node_t)));
    }
    for scheme in ["tcp://", "http://", "https://"] {
        if let Some(rest) = node_t.strip_prefix(scheme) {
            let addr = rest.trim_end_matches('/');
            let ok = addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok || addr.contains('/') {
                return Err(bad("expected tcp://HOST:PORT"));
            }
            return Ok(Transport::Tcp(addr.to_string()));
        }
    }
    Err(bad(
        "expected unix:///path/to/docker.sock or tcp://HOST:PORT",
    ))
}

enum Base {
    Unix { path: String, secs: u64 },
    Ready(Docker),
}

/// A connected engine client. Connecting does not reach the engine; the first request
/// does. The API version is agreed with the engine by [`DockerClient::engine`].
pub struct DockerClient {
    node: String,
    /// The client before version negotiation (the newest version bollard speaks); for a
    /// unix socket it is made on first use, since bollard wants the socket to exist.
    base: Base,
    /// The last negotiated client, reused until a request fails.
    agreed: Mutex<Option<Docker>>,
}

impl std::fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerClient")
            .field("node", &self.node)
            .finish()
    }
}

impl DockerClient {
    /// A client for `opts.node`; TLS files are read here (errors name them).
    pub fn connect(opts: &ConnectOptions) -> Result<Self, DockerError> {
        let transport = parse_node(&opts.node)?;
        let secs = opts.timeout.as_secs().max(1);
        let cfg_err = |message: String| DockerError::Config {
            node: opts.node.clone(),
            message,
        };
        let tls = [&opts.client_cert, &opts.client_key, &opts.client_ca];
        let base = match transport {
            Transport::Unix(path) => Base::Unix {
                path: path.to_string_lossy().into_owned(),
                secs,
            },
            Transport::Tcp(addr) => match tls {
                [None, None, None] => Base::Ready(
                    Docker::connect_with_http(&addr, secs, API_DEFAULT_VERSION)
                        .map_err(|e| cfg_err(e.to_string()))?,
                ),
                [Some(cert), Some(key), Some(ca)] => {
                    for (what, p) in [("certificate", cert), ("key", key), ("CA", ca)] {
                        std::fs::metadata(p).map_err(|e| {
                            cfg_err(format!("TLS client {what} {}: {e}", p.display()))
                        })?;
                    }
                    Base::Ready(
                        Docker::connect_with_ssl(&addr, key, cert, ca, secs, API_DEFAULT_VERSION)
                            .map_err(|e| {
                            cfg_err(format!(
                                "TLS with certificate {}, key {}, CA {}: {e}",
                                cert.display(),
                                key.display(),
                                ca.display()
                            ))
                        })?,
                    )
                }
                _ => {
                    return Err(cfg_err(
                        "TLS needs all three of --client-cert, --client-key and --client-ca-keys"
                            .into(),
                    ));
                }
            },
        };
        Ok(DockerClient {
            node: opts.node.clone(),
            base,
            agreed: Mutex::new(None),
        })
    }

    /// The node string this client was made from.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A client speaking an API version the engine accepts (asked of the engine once,
    /// then reused until [`DockerClient::forget_version`]).
    pub async fn engine(&self) -> Result<Docker, DockerError> {
        if let Some(d) = self.agreed.lock().ok().and_then(|g| g.clone()) {
            return Ok(d);
        }
        let base = match &self.base {
            Base::Ready(d) => d.clone(),
            Base::Unix { path, secs } => {
                Docker::connect_with_unix(path, *secs, API_DEFAULT_VERSION)
                    .map_err(|e| self.error(format!("connect to {path}"), e))?
            }
        };
        let d = base
            .negotiate_version()
            .await
            .map_err(|e| self.error("GET /version", e))?;
        if let Ok(mut g) = self.agreed.lock() {
            *g = Some(d.clone());
        }
        Ok(d)
    }

    /// Drops the agreed version, so the next request asks again (after a reconnect the
    /// engine may have been upgraded).
    pub fn forget_version(&self) {
        if let Ok(mut g) = self.agreed.lock() {
            *g = None;
        }
    }

    /// An engine error for request `what`.
    pub fn error(&self, what: impl Into<String>, source: bollard::errors::Error) -> DockerError {
        DockerError::Engine {
            node: self.node.clone(),
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_strings() {
        assert_eq!(
            parse_node("unix:///var/run/docker.sock").unwrap(),
            Transport::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            parse_node("/tmp/d.sock").unwrap(),
            Transport::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            parse_node("tcp://127.0.0.1:2375").unwrap(),
            Transport::Tcp("127.0.0.1:2375".into())
        );
        for bad in [
            "unix://rel.sock",
            "tcp://127.0.0.1",
            "tcp://:2375",
            "docker",
            "tcp://h:1/x",
        ] {
            let err = parse_node(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn tls_needs_all_three_files() {
        let mut o = ConnectOptions::new(Some("tcp://127.0.0.1:2376"));
        o.client_cert = Some("/nonexistent/cert.pem".into());
        let err = DockerClient::connect(&o).unwrap_err().to_string();
        assert!(err.contains("all three"), "{err}");
        o.client_key = Some("/nonexistent/key.pem".into());
        o.client_ca = Some("/nonexistent/ca.pem".into());
        let err = DockerClient::connect(&o).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn connecting_does_not_reach_the_engine() {
        let c = DockerClient::connect(&ConnectOptions::new(Some("unix:///nonexistent.sock")));
        assert_eq!(c.unwrap().node(), "unix:///nonexistent.sock");
    }
}
