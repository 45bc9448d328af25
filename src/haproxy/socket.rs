//! A client of HAProxy's Runtime API on a unix stats socket: one command per connection
//! (HAProxy answers and closes), each bounded by a timeout; and the parse of
//! `show servers state <backend>`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Most bytes read back for one command (a `show` of thousands of servers fits).
const MAX_REPLY: usize = 8 << 20;

/// A stats socket at `level admin`.
#[derive(Debug, Clone)]
pub struct Socket {
    path: PathBuf,
    timeout: Duration,
}

/// A command that could not be sent or was not answered in time.
#[derive(Debug, thiserror::Error)]
#[error("haproxy socket {path}: `{command}`: {message}")]
pub struct SocketError {
    /// The socket.
    pub path: String,
    /// The command.
    pub command: String,
    /// What went wrong.
    pub message: String,
}

impl Socket {
    /// The socket at `path`; each command must be answered within `timeout`.
    pub fn new(path: &Path, timeout: Duration) -> Socket {
        Socket {
            path: path.to_path_buf(),
            timeout,
        }
    }

    /// Sends `command` and returns HAProxy's whole answer.
    pub async fn call(&self, command: &str) -> Result<String, SocketError> {
        let err = |message: String| SocketError {
            path: self.path.display().to_string(),
            command: command.to_string(),
            message,
        };
        let exchange = async {
            let mut s = UnixStream::connect(&self.path)
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            s.write_all(format!("{command}\n").as_bytes())
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
            let mut out = Vec::new();
            let mut limited = (&mut s).take(MAX_REPLY as u64 + 1);
            limited
                .read_to_end(&mut out)
                .await
                .map_err(|e| format!("cannot read the answer: {e}"))?;
            if out.len() > MAX_REPLY {
                return Err(format!("answer longer than {MAX_REPLY} bytes"));
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r.map_err(err),
            Err(_) => Err(err(format!("no answer within {:?}", self.timeout))),
        }
    }
}

/// One server as `show servers state` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveServer {
    /// Its address (`None`: unresolved, printed `-`).
    pub addr: Option<IpAddr>,
    /// Its port (0: none).
    pub port: u16,
    /// The weight set by configuration or `set weight` (`srv_uweight`).
    pub weight: u32,
    /// `srv_admin_state`: bit 0x01 forced maintenance, 0x04 from the configuration
    /// (`disabled`), 0x08 forced drain.
    pub admin: u32,
}

impl LiveServer {
    /// In maintenance, forced at runtime or by `disabled` in the configuration.
    pub fn in_maint(&self) -> bool {
        self.admin & 0x05 != 0
    }
}

/// Reads `show servers state <backend>`: version line `1`, a `#` header naming the
/// columns, one line per server. Columns are found by name, not position.
pub fn parse_state(text: &str) -> Result<BTreeMap<String, LiveServer>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match lines.next().map(str::trim) {
        Some("1") => {}
        Some(other) => return Err(format!("unexpected answer {other:?}")),
        None => return Err("empty answer".into()),
    }
    let header: Vec<&str> = match lines.next() {
        Some(h) if h.starts_with('#') => h.trim_start_matches('#').split_whitespace().collect(),
        _ => return Err("no column header".into()),
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let (name, addr, port, weight, admin) = (
        col("srv_name")?,
        col("srv_addr")?,
        col("srv_port")?,
        col("srv_uweight")?,
        col("srv_admin_state")?,
    );
    let mut out = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let get = |i: usize| {
            f.get(i)
                .copied()
                .ok_or_else(|| format!("short line {line:?}"))
        };
        let num = |i: usize| -> Result<u32, String> {
            get(i)?
                .parse()
                .map_err(|_| format!("bad number in {line:?}"))
        };
        out.insert(
            get(name)?.to_string(),
            LiveServer {
                addr: get(addr)?.parse().ok(),
                port: num(port)?
                    .try_into()
                    .map_err(|_| format!("bad port in {line:?}"))?,
                weight: num(weight)?,
                admin: num(admin)?,
            },
        );
    }
    Ok(out)
}

/// The `scur` (current sessions) of each server of `show stat <backend> 4 -1`.
pub fn parse_sessions(text: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let (Some(sv), Some(scur)) = (
        header.iter().position(|c| *c == "svname"),
        header.iter().position(|c| *c == "scur"),
    ) else {
        return BTreeMap::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.get(sv)?.to_string(), f.get(scur)?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_columns_by_name() {
        let text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 app 1 a 127.0.0.1 2 0 10 10 3 8 2 0 6 0 0 0 - 18001 - 0 0 - - 0\n3 app 9 d2 ::1 0 5 1 1 1 1 0 0 0 0 0 0 - 80 - 0 0 - - 0\n\n";
        let s = parse_state(text).unwrap();
        assert_eq!(s["a"].weight, 10);
        assert_eq!(s["a"].port, 18001);
        assert!(!s["a"].in_maint());
        assert!(s["d2"].in_maint());
        assert_eq!(s["d2"].addr, Some("::1".parse().unwrap()));
        assert!(parse_state("Can't find backend.\n").is_err());
    }

    #[test]
    fn reads_current_sessions() {
        let text = "# pxname,svname,qcur,qmax,scur,smax\napp,a,0,0,3,4\napp,b,0,0,0,0\n";
        let s = parse_sessions(text);
        assert_eq!((s["a"], s["b"]), (3, 0));
    }
}
