//! Connecting to a ZooKeeper ensemble: the connect string (with its chroot), digest
//! auth, the session timeout, and what the client's errors mean for a retry.

use std::time::Duration;

use zookeeper_client as zk;

use crate::backend::{BackendConfig, BackendError};

/// The kind name in logs, metrics and errors.
pub(crate) const KIND: &str = "zookeeper";
/// Session timeout asked for when none is given (the server bounds it to 2-20 ticks:
/// 4-40 s with its default tick of 2 s).
pub(crate) const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Port of a node given without one.
const DEFAULT_PORT: u16 = 2181;

/// Where and how to connect; cheap to clone.
#[derive(Clone)]
pub(crate) struct Target {
    /// `host:port,host:port[/chroot]`, as the client takes it.
    connect: String,
    /// The user of digest auth, for messages.
    user: Option<String>,
    /// `user:password` for the `digest` scheme; never logged.
    digest: Option<Vec<u8>>,
    /// The session timeout asked for.
    pub session_timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("connect", &self.connect)
            .field("user", &self.user)
            .field("session_timeout", &self.session_timeout)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The ensemble `cfg` names: every `--node` is `host[:port]` or a whole connect
    /// string (`h1:2181,h2:2181/app`); a chroot may be given once (or the same on each).
    pub fn from_config(cfg: &BackendConfig) -> Result<Self, BackendError> {
        let given = cfg.nodes.join(",");
        let fatal = |m: String| BackendError::fatal(KIND, given.clone(), m);
        let mut hosts = Vec::new();
        let mut chroot: Option<String> = None;
        for part in cfg.nodes.iter().flat_map(|n| n.split(',')) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (host, root) = match part.find('/') {
                Some(i) => (&part[..i], Some(&part[i..])),
                None => (part, None),
            };
            if let Some(root) = root {
                let root = normalize_chroot(root).map_err(&fatal)?;
                match &chroot {
                    Some(c) if *c != root => {
                        return Err(fatal(format!(
                            "two different chroots: {c} and {root} (give it once)"
                        )));
                    }
                    _ => chroot = Some(root),
                }
            }
            hosts.push(host_port(host).map_err(&fatal)?);
        }
        if hosts.is_empty() {
            return Err(fatal(
                "the zookeeper backend needs at least one --node".into(),
            ));
        }
        if cfg.client_cert.is_some() || cfg.client_key.is_some() || cfg.client_ca_keys.is_some() {
            return Err(fatal(
                "TLS (--client-cert, --client-key, --client-ca-keys) is not supported with \
                 zookeeper yet; reach the ensemble over a loopback or private network"
                    .into(),
            ));
        }
        let digest = match (&cfg.username, &cfg.password) {
            (None, None) => None,
            (Some(u), Some(p)) => {
                if u.contains(':') || u.is_empty() {
                    return Err(fatal(format!(
                        "digest user {u:?} must be non-empty and hold no ':'"
                    )));
                }
                Some(format!("{u}:{p}").into_bytes())
            }
            (Some(u), None) => {
                return Err(fatal(format!(
                    "digest user {u:?} needs a password (--password-file or CONFSYNC_PASSWORD)"
                )));
            }
            (None, Some(_)) => {
                return Err(fatal(
                    "a password needs a --username (digest auth is user:password)".into(),
                ));
            }
        };
        let mut connect = hosts.join(",");
        if let Some(c) = chroot {
            connect.push_str(&c);
        }
        Ok(Self {
            connect,
            user: cfg.username.clone(),
            digest,
            session_timeout: cfg.session_timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT),
        })
    }

    /// The connect string, for messages (it holds no secret).
    pub fn shown(&self) -> &str {
        &self.connect
    }

    /// A new session, `session_timeout` asked for. Fails fast (`NoHosts`) once every
    /// member was tried, so the caller's backoff decides when to try again.
    pub async fn connect(&self) -> Result<zk::Client, BackendError> {
        self.connect_with(self.session_timeout).await
    }

    /// A new session with this timeout (a registrar's TTL).
    pub async fn connect_with(&self, timeout: Duration) -> Result<zk::Client, BackendError> {
        let mut connector = zk::Client::connector()
            .with_session_timeout(timeout)
            .with_fail_eagerly();
        if let Some(d) = &self.digest {
            connector = connector.with_auth("digest", d);
        }
        // The client's own bound is the session timeout; ours is at most 11 s, so a
        // blackholed member never holds a shutdown for minutes (a long --ttl).
        match tokio::time::timeout(
            timeout.min(Duration::from_secs(10)) + Duration::from_secs(1),
            connector.connect(&self.connect),
        )
        .await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(self.error("connect", &e)),
            Err(_) => Err(BackendError::transient(
                KIND,
                self.shown(),
                "no session established in time",
            )),
        }
    }

    /// What `err` from `op` means: the store is away (transient) or the configuration
    /// is wrong (fatal).
    pub fn error(&self, op: &str, err: &zk::Error) -> BackendError {
        use zk::Error as E;
        let who = self
            .user
            .as_deref()
            .map(|u| format!(" (digest user {u:?})"))
            .unwrap_or_else(|| " (no auth given)".into());
        match err {
            E::NoAuth => {
                BackendError::fatal(KIND, self.shown(), format!("{op}: not authorized{who}"))
            }
            E::AuthFailed => BackendError::fatal(
                KIND,
                self.shown(),
                format!("{op}: authentication failed{who}"),
            ),
            E::BadArguments(m) => {
                BackendError::fatal(KIND, self.shown(), format!("{op}: bad arguments: {m}"))
            }
            E::InvalidAcl => BackendError::fatal(KIND, self.shown(), format!("{op}: invalid ACL")),
            other => BackendError::transient(KIND, self.shown(), format!("{op}: {other}")),
        }
    }
}

/// `host[:port]` or `[v6][:port]`, checked; the port defaults to 2181.
fn host_port(s: &str) -> Result<String, String> {
    let bad = |why: &str| format!("--node {s:?}: {why}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return Err(bad("an IPv6 address needs its closing ]"));
        };
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected :PORT after ]"))?,
            ),
        };
        (format!("[{h}]"), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("the host is empty"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(bad("the host holds a space, control character or @"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("the port must be 1-65535")),
        },
    };
    Ok(format!("{host}:{port}"))
}

/// A chroot as the client wants it: absolute, no trailing `/`, no empty or `.` parts.
fn normalize_chroot(root: &str) -> Result<String, String> {
    let trimmed = root.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .split('/')
        .skip(1)
        .any(|p| p.is_empty() || p == "." || p == ".." || p.chars().any(char::is_control))
    {
        return Err(format!("chroot {root:?} is not a plain absolute path"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(nodes: &[&str]) -> Result<Target, BackendError> {
        Target::from_config(&BackendConfig {
            kind: crate::backend::BackendKind::Zookeeper,
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    }

    #[test]
    fn nodes_and_chroots_make_one_connect_string() {
        assert_eq!(target(&["127.0.0.1"]).unwrap().shown(), "127.0.0.1:2181");
        assert_eq!(
            target(&["a:1,b:2/app"]).unwrap().shown(),
            "a:1,b:2/app",
            "one connect string with a chroot"
        );
        assert_eq!(
            target(&["a:1", "b:2/app/"]).unwrap().shown(),
            "a:1,b:2/app",
            "split by the flag's comma"
        );
        assert_eq!(target(&["[::1]:2182"]).unwrap().shown(), "[::1]:2182");
        assert_eq!(target(&["[::1]"]).unwrap().shown(), "[::1]:2181");
        assert_eq!(target(&["h:1/"]).unwrap().shown(), "h:1");
    }

    #[test]
    fn bad_nodes_are_refused_by_name() {
        for (nodes, want) in [
            (&["a:1/x", "b:2/y"][..], "two different chroots"),
            (&["a:0"][..], "1-65535"),
            (&["a:http"][..], "1-65535"),
            (&["[::1"][..], "closing ]"),
            (&[":2181"][..], "empty"),
            (&["a b:1"][..], "space"),
            (&["a:1/x//y"][..], "plain absolute path"),
            (&["a:1/../y"][..], "plain absolute path"),
            (&[""][..], "at least one --node"),
        ] {
            let e = target(nodes).unwrap_err();
            assert!(!e.is_transient());
            assert!(e.to_string().contains(want), "{nodes:?}: {e}");
        }
    }

    #[test]
    fn digest_auth_needs_both_halves_and_is_never_shown() {
        let mut cfg = BackendConfig {
            kind: crate::backend::BackendKind::Zookeeper,
            nodes: vec!["h".into()],
            username: Some("alice".into()),
            password: Some("s3cret-pw".into()),
            ..Default::default()
        };
        let t = Target::from_config(&cfg).unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        cfg.password = None;
        let e = Target::from_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("needs a password"), "{e}");
        cfg.username = Some("a:b".into());
        cfg.password = Some("p".into());
        let e = Target::from_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("no ':'"), "{e}");
    }
}
