//! Where the backend connects: parsing `--node` values, finding the master through
//! Sentinel, opening command and pub/sub connections with timeouts, and sorting Redis
//! errors into transient and fatal ones. Credentials never reach a log line or an error.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisError,
};

use super::super::{BackendConfig, BackendError};

/// Kind name used in errors and logs.
pub const KIND: &str = "redis";
/// How long a TCP or unix connect (plus the handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command or pipeline may take before the connection counts as dead.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Redis's default port, for nodes given without one.
const DEFAULT_PORT: u16 = 6379;

/// One Redis server (or Sentinel) to talk to.
#[derive(Clone)]
pub struct Node {
    /// Address, database and credentials.
    info: ConnectionInfo,
    /// CA and client certificate for `rediss://` nodes (`None`: the system's roots).
    tls: Option<Arc<Certs>>,
    /// `host:port/db` or the socket path: what errors and logs show (never credentials).
    pub shown: String,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// The database this node reads from (keyspace channels are per database).
    pub fn db(&self) -> i64 {
        self.info.redis_settings().db()
    }

    fn client(&self) -> Result<redis::Client, BackendError> {
        let client = match (self.info.addr(), &self.tls) {
            (ConnectionAddr::TcpTls { .. }, Some(certs)) => redis::Client::build_with_tls(
                self.info.clone(),
                redis::TlsCertificates {
                    client_tls: certs
                        .client
                        .as_ref()
                        .map(|(cert, key)| redis::ClientTlsConfig {
                            client_cert: cert.clone(),
                            client_key: key.clone(),
                        }),
                    root_cert: certs.root.clone(),
                },
            ),
            _ => redis::Client::open(self.info.clone()),
        };
        client.map_err(|e| classify(&self.shown, &e))
    }

    /// A multiplexed command connection, answered within [`RESPONSE_TIMEOUT`].
    pub async fn connect(&self) -> Result<MultiplexedConnection, BackendError> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let client = self.client()?;
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| classify(&self.shown, &e))
    }

    /// A dedicated pub/sub connection (Redis needs one of its own for subscriptions).
    pub async fn pubsub(&self) -> Result<PubSub, BackendError> {
        let client = self.client()?;
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, client.get_async_pubsub()).await {
            Ok(r) => r.map_err(|e| classify(&self.shown, &e)),
            Err(_) => Err(BackendError::transient(
                KIND,
                &self.shown,
                "pub/sub connect timed out",
            )),
        }
    }
}

/// PEM files for TLS, read once when the backend is built.
pub struct Certs {
    /// CA bundle that signs the server's certificate (`--client-ca-keys`).
    root: Option<Vec<u8>>,
    /// Client certificate and key for servers that check clients (`--client-cert`/`-key`).
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl Certs {
    /// Reads the TLS files `cfg` names; `None` when it names none.
    fn load(cfg: &BackendConfig) -> Result<Option<Arc<Self>>, BackendError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| {
                BackendError::fatal(KIND, p.display().to_string(), format!("cannot read: {e}"))
            })
        };
        let root = cfg.client_ca_keys.as_deref().map(read).transpose()?;
        let client = match (&cfg.client_cert, &cfg.client_key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => {
                return Err(BackendError::fatal(
                    KIND,
                    "-",
                    "--client-cert and --client-key go together (give both or neither)",
                ));
            }
        };
        Ok((root.is_some() || client.is_some()).then(|| Arc::new(Self { root, client })))
    }
}

/// Where the data lives: the nodes themselves, or the master Sentinels name.
#[derive(Clone)]
pub enum Target {
    /// Redis servers, tried in order; the first that answers is used.
    Direct(Vec<Node>),
    /// The nodes are Sentinels; the data is on the master they call `name`.
    Sentinel {
        /// The Sentinels, asked in order.
        sentinels: Vec<Node>,
        /// The master's name in the Sentinel configuration.
        name: String,
        /// Database to select on the master.
        db: i64,
        /// ACL user for the master (Sentinels use the credentials in their own URLs).
        username: Option<String>,
        /// Password for the master; never shown.
        password: Option<String>,
        /// TLS for the master when the Sentinels are `rediss://` (`Some(None)`: system roots).
        master_tls: Option<Option<Arc<Certs>>>,
    },
}

impl Target {
    /// Parses `cfg.nodes` (default `127.0.0.1:6379`); bad nodes are fatal errors.
    pub fn from_config(cfg: &BackendConfig) -> Result<Self, BackendError> {
        let raw: Vec<String> = if cfg.nodes.is_empty() {
            vec![format!("127.0.0.1:{DEFAULT_PORT}")]
        } else {
            cfg.nodes.clone()
        };
        let user = cfg.username.as_deref().filter(|s| !s.is_empty());
        let pass = cfg.password.as_deref().filter(|s| !s.is_empty());
        let certs = Certs::load(cfg)?;
        match cfg.sentinel_master.as_deref().filter(|s| !s.is_empty()) {
            None => {
                let nodes = raw
                    .iter()
                    .map(|n| parse_node(n, user, pass, certs.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self::Direct(nodes))
            }
            Some(name) => {
                let sentinels = raw
                    .iter()
                    .map(|n| parse_node(n, None, None, certs.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                let db = sentinels.first().map(Node::db).unwrap_or(0);
                let master_tls = sentinels
                    .first()
                    .filter(|n| matches!(n.info.addr(), ConnectionAddr::TcpTls { .. }))
                    .map(|_| certs.clone());
                Ok(Self::Sentinel {
                    sentinels,
                    name: name.to_string(),
                    db,
                    username: user.map(str::to_string),
                    password: pass.map(str::to_string),
                    master_tls,
                })
            }
        }
    }

    /// All configured endpoints, for errors that are not about one node.
    pub fn shown(&self) -> String {
        match self {
            Self::Direct(nodes) => nodes
                .iter()
                .map(|n| n.shown.as_str())
                .collect::<Vec<_>>()
                .join(","),
            Self::Sentinel {
                sentinels, name, ..
            } => {
                let s: Vec<&str> = sentinels.iter().map(|n| n.shown.as_str()).collect();
                format!("sentinel {} master {name}", s.join(","))
            }
        }
    }

    /// Finds the server to read from and opens a command connection to it.
    pub async fn connect(&self) -> Result<(Node, MultiplexedConnection), BackendError> {
        match self {
            Self::Direct(nodes) => {
                let mut last = None;
                for node in nodes {
                    match node.connect().await {
                        Ok(c) => return Ok((node.clone(), c)),
                        Err(e) if !e.is_transient() => return Err(e),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| BackendError::fatal(KIND, "-", "no nodes configured")))
            }
            Self::Sentinel { name, .. } => {
                let node = self.master().await?;
                let mut conn = node.connect().await?;
                let role: Vec<redis::Value> = match redis::cmd("ROLE").query_async(&mut conn).await
                {
                    Ok(r) => r,
                    // An ACL user without ROLE: trust Sentinel's answer.
                    Err(e) if is_refusal(&e) => return Ok((node, conn)),
                    Err(e) => return Err(classify(&node.shown, &e)),
                };
                let is_master =
                    matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master");
                if !is_master {
                    return Err(BackendError::transient(
                        KIND,
                        &node.shown,
                        format!(
                            "Sentinel names it master {name:?} but it is not a master (failover in progress?)"
                        ),
                    ));
                }
                Ok((node, conn))
            }
        }
    }

    /// Sentinel mode: the master the first answering Sentinel names (not connected yet).
    pub async fn master(&self) -> Result<Node, BackendError> {
        let Self::Sentinel {
            sentinels,
            name,
            db,
            username,
            password,
            master_tls,
        } = self
        else {
            return Err(BackendError::fatal(
                KIND,
                self.shown(),
                "not in Sentinel mode",
            ));
        };
        let mut last = None;
        for s in sentinels {
            match ask_sentinel(s, name).await {
                Ok((host, port)) => {
                    let auth = (username.as_deref(), password.as_deref());
                    return master_node(&host, port, *db, auth, master_tls.clone());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| BackendError::fatal(KIND, "-", "no Sentinels configured")))
    }

    /// Sentinel mode: a subscription to the first reachable Sentinel's `+switch-master`
    /// channel, so a failover is noticed at once rather than when the old master is
    /// reconfigured. `None` for plain nodes or when no Sentinel answers.
    pub async fn switch_events(&self) -> Option<redis::aio::PubSubStream> {
        let Self::Sentinel { sentinels, .. } = self else {
            return None;
        };
        for s in sentinels {
            let Ok(mut ps) = s.pubsub().await else {
                continue;
            };
            if ps.subscribe("+switch-master").await.is_ok() {
                return Some(ps.into_on_message());
            }
        }
        None
    }

    /// The Sentinel master name, in Sentinel mode.
    pub fn master_name(&self) -> Option<&str> {
        match self {
            Self::Sentinel { name, .. } => Some(name),
            Self::Direct(_) => None,
        }
    }
}

/// Asks one Sentinel where master `name` is.
async fn ask_sentinel(sentinel: &Node, name: &str) -> Result<(String, u16), BackendError> {
    let mut conn = sentinel.connect().await?;
    let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(name)
        .query_async(&mut conn)
        .await
        .map_err(|e| classify(&sentinel.shown, &e))?;
    addr.ok_or_else(|| {
        BackendError::transient(
            KIND,
            &sentinel.shown,
            format!("this Sentinel does not know a master named {name:?}"),
        )
    })
}

fn master_node(
    host: &str,
    port: u16,
    db: i64,
    (user, pass): (Option<&str>, Option<&str>),
    tls: Option<Option<Arc<Certs>>>,
) -> Result<Node, BackendError> {
    let addr = match tls {
        Some(_) => ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: false,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host.to_string(), port),
    };
    let shown = shown_addr(&addr, db);
    let info = addr
        .into_connection_info()
        .map_err(|e| classify(&shown, &e))?;
    let settings = with_auth(info.redis_settings().clone().set_db(db), user, pass);
    Ok(Node {
        shown,
        info: info.set_redis_settings(settings),
        tls: tls.flatten(),
    })
}

fn with_auth(
    mut settings: redis::RedisConnectionInfo,
    user: Option<&str>,
    pass: Option<&str>,
) -> redis::RedisConnectionInfo {
    if let Some(u) = user {
        settings = settings.set_username(u);
    }
    if let Some(p) = pass {
        settings = settings.set_password(p);
    }
    settings
}

fn shown_addr(addr: &ConnectionAddr, db: i64) -> String {
    let base = match addr {
        ConnectionAddr::Tcp(h, p)
        | ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } => {
            if h.contains(':') {
                format!("[{h}]:{p}")
            } else {
                format!("{h}:{p}")
            }
        }
        ConnectionAddr::Unix(path) => {
            return format!(
                "unix:{}{}",
                path.display(),
                if db != 0 {
                    format!("/{db}")
                } else {
                    String::new()
                }
            );
        }
        _ => "?".to_string(),
    };
    if db != 0 {
        format!("{base}/{db}")
    } else {
        base
    }
}

/// Parses one `--node`: `host:port[/db]`, `host[/db]`, a unix socket path, or a
/// `redis://`, `rediss://` or `unix://` URL. `user`/`pass` override URL credentials.
pub fn parse_node(
    raw: &str,
    user: Option<&str>,
    pass: Option<&str>,
    tls: Option<Arc<Certs>>,
) -> Result<Node, BackendError> {
    let raw = raw.trim();
    let bad = |msg: &str| BackendError::fatal(KIND, redact(raw), msg);
    if raw.is_empty() {
        return Err(bad("empty node"));
    }
    let info: ConnectionInfo = if raw.contains("://") {
        raw.into_connection_info().map_err(|e| {
            bad(&format!(
                "not a Redis URL: {}",
                e.detail().unwrap_or(e.category())
            ))
        })?
    } else if raw.starts_with('/') || raw.starts_with('.') {
        ConnectionAddr::Unix(raw.into())
            .into_connection_info()
            .map_err(|_| bad("not a unix socket path"))?
    } else {
        let (hostport, db) = match raw.split_once('/') {
            Some((hp, db)) => (
                hp,
                db.parse::<i64>()
                    .map_err(|_| bad("the database after '/' must be a number"))?,
            ),
            None => (raw, 0),
        };
        let (host, port) =
            split_host_port(hostport).ok_or_else(|| bad("expected host:port[/db]"))?;
        let info = ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map_err(|_| bad("expected host:port[/db]"))?;
        let settings = info.redis_settings().clone().set_db(db);
        info.set_redis_settings(settings)
    };
    let settings = with_auth(info.redis_settings().clone(), user, pass);
    let shown = shown_addr(info.addr(), settings.db());
    Ok(Node {
        info: info.set_redis_settings(settings),
        shown,
        tls,
    })
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None if !s.is_empty() => Some((s.to_string(), DEFAULT_PORT)),
        None => None,
    }
}

/// A node string fit for an error message: URL credentials are cut out.
fn redact(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(i), Some(at)) if at > i => format!("{}://{}", &raw[..i], &raw[at + 1..]),
        _ => raw.to_string(),
    }
}

/// True for server errors that mean "you may not do this" (NOPERM) or "no such command"
/// (ERR, as for a renamed CONFIG), rather than "not now" (LOADING, MASTERDOWN) or "the
/// connection broke".
pub fn is_refusal(e: &RedisError) -> bool {
    matches!(e.code(), Some("NOPERM" | "ERR"))
}

/// Sorts a Redis error for `endpoint`: bad credentials, missing permissions and bad
/// configuration are fatal; everything else (refused, reset, timeouts, loading) is transient.
pub fn classify(endpoint: &str, e: &RedisError) -> BackendError {
    let code = e.code().unwrap_or("");
    let fatal = matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    ) || matches!(code, "WRONGPASS" | "NOAUTH" | "NOPERM");
    let message = describe(e);
    if fatal {
        BackendError::fatal(KIND, endpoint, message)
    } else {
        BackendError::transient(KIND, endpoint, message)
    }
}

/// The error text, which for server errors is the server's own message (Redis never
/// echoes passwords in errors).
pub fn describe(e: &RedisError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_db() {
        let n = parse_node("127.0.0.1:6380/3", None, None, None).unwrap();
        assert_eq!(n.shown, "127.0.0.1:6380/3");
        assert_eq!(n.db(), 3);
        let n = parse_node("localhost", None, None, None).unwrap();
        assert_eq!(n.shown, "localhost:6379");
        let n = parse_node("[::1]:7000", None, None, None).unwrap();
        assert_eq!(n.shown, "[::1]:7000");
        let n = parse_node("/run/redis.sock", None, None, None).unwrap();
        assert_eq!(n.shown, "unix:/run/redis.sock");
        assert!(parse_node("host:port", None, None, None).is_err());
        assert!(parse_node("host:1/x", None, None, None).is_err());
    }

    #[test]
    fn urls_lose_their_credentials_in_text() {
        let n = parse_node("redis://bob:hunter2@127.0.0.1:7001/2", None, None, None).unwrap();
        assert_eq!(n.shown, "127.0.0.1:7001/2");
        assert_eq!(n.info.redis_settings().password(), Some("hunter2"));
        let e = parse_node("redis://bob:hunter2@127.0.0.1:port", None, None, None).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("127.0.0.1:port"), "{e}");
    }

    #[test]
    fn flags_override_url_credentials() {
        let n = parse_node(
            "redis://bob:old@127.0.0.1:7001",
            Some("alice"),
            Some("new"),
            None,
        )
        .unwrap();
        assert_eq!(n.info.redis_settings().username(), Some("alice"));
        assert_eq!(n.info.redis_settings().password(), Some("new"));
    }
}
