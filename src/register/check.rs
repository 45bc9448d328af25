//! Health checks: a plain HTTP/1.1 GET, a TCP connect or a shell command, each bounded by
//! a timeout, and the rise/fall rule that turns results into a healthy/unhealthy state.
//!
//! The HTTP check speaks plain HTTP only (no TLS): it is meant for the instance's own
//! port on loopback or a private network. For HTTPS use `--check-cmd "curl -fsS ..."`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::resource::CommandEnv;

/// Most bytes read while looking for the HTTP status line.
const STATUS_LINE_LIMIT: usize = 1024;

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// GET `path` from `host:port`; a 2xx or 3xx status passes.
    Http {
        /// The URL as given, for logs.
        url: String,
        /// Host to connect to (also sent as `Host:`).
        host: String,
        /// Port (80 when the URL has none).
        port: u16,
        /// Path and query, at least `/`.
        path: String,
    },
    /// Connect to `HOST:PORT`; an accepted connection passes.
    Tcp(String),
    /// Run under `/bin/sh -c` with the given environment (never confsync's secrets);
    /// exit status 0 passes.
    Cmd(String, Arc<CommandEnv>),
}

impl Probe {
    /// Parses an `http://host[:port][/path]` URL.
    pub fn http(url: &str) -> Result<Probe, String> {
        let bad = |why: &str| format!("check URL {url:?}: {why}");
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            bad("only http:// URLs are supported (no TLS; use --check-cmd with curl for https)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = split_host_port(authority, 80)
            .ok_or_else(|| bad("expected http://host[:port][/path]"))?;
        if path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("the path holds spaces or control characters"));
        }
        Ok(Probe::Http {
            url: url.to_string(),
            host,
            port,
            path: path.to_string(),
        })
    }

    /// Parses `HOST:PORT`.
    pub fn tcp(addr: &str) -> Result<Probe, String> {
        match split_host_port(addr, 0) {
            Some((_, p)) if p != 0 => Ok(Probe::Tcp(addr.to_string())),
            _ => Err(format!("TCP check {addr:?}: expected HOST:PORT")),
        }
    }

    /// A shell command.
    pub fn cmd(cmd: &str) -> Result<Probe, String> {
        if cmd.trim().is_empty() {
            return Err("the check command is empty".into());
        }
        Ok(Probe::Cmd(cmd.to_string(), Arc::new(CommandEnv::INHERIT)))
    }

    /// The same check, a command one running with `env` (`--command-env`).
    pub fn with_env(self, env: &Arc<CommandEnv>) -> Probe {
        match self {
            Probe::Cmd(cmd, _) => Probe::Cmd(cmd, env.clone()),
            other => other,
        }
    }

    /// Runs the check once, failing it at `timeout`; the error says why it failed.
    pub async fn run(&self, timeout: Duration) -> Result<(), String> {
        match self {
            // The store's password is confsync's secret, not the check's.
            Probe::Cmd(cmd, env) => crate::resource::command::run(cmd, timeout, env)
                .await
                .map_err(|e| e.to_string()),
            Probe::Tcp(addr) => {
                match tokio::time::timeout(timeout, TcpStream::connect(addr.as_str())).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
                    Err(_) => Err(format!("connect to {addr}: no answer within {timeout:?}")),
                }
            }
            Probe::Http { url, .. } => match tokio::time::timeout(timeout, self.http_get()).await {
                Ok(Ok(status)) if (200..400).contains(&status) => Ok(()),
                Ok(Ok(status)) => Err(format!("GET {url}: status {status}")),
                Ok(Err(e)) => Err(format!("GET {url}: {e}")),
                Err(_) => Err(format!("GET {url}: no answer within {timeout:?}")),
            },
        }
    }

    /// One GET; the status code of the answer.
    async fn http_get(&self) -> Result<u16, String> {
        let Probe::Http {
            host, port, path, ..
        } = self
        else {
            return Err("not an HTTP check".into());
        };
        let mut s = TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|e| e.to_string())?;
        let host_header = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: confsync-register\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        while !buf.contains(&b'\n') && buf.len() < STATUS_LINE_LIMIT {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        parse_status(&buf)
    }

    /// What the check does, for logs.
    pub fn describe(&self) -> String {
        match self {
            Probe::Http { url, .. } => format!("GET {url}"),
            Probe::Tcp(a) => format!("connect {a}"),
            Probe::Cmd(c, _) => format!("`{c}`"),
        }
    }
}

/// The status code of an HTTP/1.x status line at the start of `buf`.
fn parse_status(buf: &[u8]) -> Result<u16, String> {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(format!("not an HTTP/1.x answer: {:?}", line.trim())),
    }
}

fn split_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() && default_port != 0 => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        None if !s.is_empty() && default_port != 0 => Some((s.to_string(), default_port)),
        _ => None,
    }
}

/// A health check and its rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// What to run.
    pub probe: Probe,
    /// From the start of one check to the start of the next.
    pub interval: Duration,
    /// A check still running after this long fails.
    pub timeout: Duration,
    /// Passes in a row that make an unhealthy instance healthy.
    pub rise: u32,
    /// Failures in a row that make a healthy instance unhealthy.
    pub fall: u32,
}

/// Rise/fall over a stream of results.
#[derive(Debug, Clone)]
pub struct Health {
    rise: u32,
    fall: u32,
    /// `None` until the first result, which decides the starting state.
    healthy: Option<bool>,
    /// Results in a row that disagree with the current state.
    streak: u32,
}

impl Health {
    /// No results yet.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: None,
            streak: 0,
        }
    }

    /// Records one result; the new state when it changed.
    pub fn record(&mut self, pass: bool) -> Option<bool> {
        match self.healthy {
            None => {
                self.healthy = Some(pass);
                Some(pass)
            }
            Some(h) if h == pass => {
                self.streak = 0;
                None
            }
            Some(h) => {
                self.streak += 1;
                let need = if h { self.fall } else { self.rise };
                if self.streak >= need {
                    self.streak = 0;
                    self.healthy = Some(pass);
                    Some(pass)
                } else {
                    None
                }
            }
        }
    }
}

/// Runs `spec` every interval until `shutdown`, publishing the state on `tx` whenever it
/// changes (the first result included). Logs state changes; single failures at debug.
pub async fn run_checker(
    spec: CheckSpec,
    key: String,
    tx: watch::Sender<Option<bool>>,
    shutdown: CancellationToken,
) {
    let mut health = Health::new(spec.rise, spec.fall);
    let what = spec.probe.describe();
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next += spec.interval;
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = spec.probe.run(spec.timeout) => r,
        };
        if let Err(e) = &result {
            debug!(key = %key, check = %what, error = %e, "check failed");
        }
        match health.record(result.is_ok()) {
            Some(true) => info!(key = %key, check = %what, "check passes: healthy"),
            Some(false) => {
                warn!(key = %key, check = %what, error = %result.err().unwrap_or_default(), "check fails: unhealthy")
            }
            None => continue,
        }
        let _ = tx.send(health.healthy);
        // A slow check must not make the next ones run back to back.
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall() {
        let mut h = Health::new(2, 3);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some(false));
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
        let mut h = Health::new(2, 2);
        assert_eq!(h.record(false), Some(false));
    }

    #[test]
    fn parses_urls_and_status_lines() {
        assert_eq!(
            Probe::http("http://127.0.0.1:8001/health?x=1").unwrap(),
            Probe::Http {
                url: "http://127.0.0.1:8001/health?x=1".into(),
                host: "127.0.0.1".into(),
                port: 8001,
                path: "/health?x=1".into()
            }
        );
        assert!(matches!(
            Probe::http("http://h").unwrap(),
            Probe::Http { port: 80, .. }
        ));
        assert!(Probe::http("https://h/").unwrap_err().contains("no TLS"));
        assert!(Probe::http("http://h:x/").is_err());
        assert!(Probe::tcp("127.0.0.1").is_err());
        assert!(Probe::tcp("[::1]:80").is_ok());
        assert_eq!(parse_status(b"HTTP/1.0 302 Found\r\n"), Ok(302));
        assert!(parse_status(b"SSH-2.0\r\n").is_err());
    }

    #[tokio::test]
    async fn tcp_and_cmd_checks() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = Duration::from_secs(2);
        assert!(Probe::tcp(&addr).unwrap().run(t).await.is_ok());
        drop(l);
        assert!(
            Probe::tcp(&addr)
                .unwrap()
                .run(t)
                .await
                .unwrap_err()
                .contains(&addr)
        );
        assert!(Probe::cmd("exit 0").unwrap().run(t).await.is_ok());
        assert!(Probe::cmd("exit 4").unwrap().run(t).await.is_err());
    }
}
