//! One `server <name> <address>[:port] [keywords...]` line of an HAProxy config, split
//! into what the Runtime API can change on a live server (address, port, weight,
//! `disabled`) and everything else, which it cannot.

use std::net::IpAddr;

/// A parsed `server` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    /// The server's name, unique in its backend.
    pub name: String,
    /// The IP address (a host name is refused: the runtime path never resolves names).
    pub addr: IpAddr,
    /// The port; `None` when the line gives none (HAProxy then uses the client's).
    pub port: Option<u16>,
    /// `weight N` (HAProxy's default is 1).
    pub weight: u32,
    /// `disabled`: the server starts in maintenance.
    pub disabled: bool,
    /// `check`: health checks run (a dynamic server needs `enable health`).
    pub check: bool,
    /// `agent-check`: agent checks run (a dynamic server needs `enable agent`).
    pub agent: bool,
    /// Every other keyword and value, in order: passed to `add server` as written,
    /// and compared as a whole (a change there is not a runtime change).
    pub rest: Vec<String>,
}

/// Why a `server` line cannot go through the Runtime API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Too short or not a `server` line.
    #[error("not a `server <name> <address>` line")]
    Shape,
    /// An address that is not an IP literal with an optional plain port.
    #[error("address {0:?} is not an IP address with an optional port")]
    Address(String),
    /// `weight` without a number from 0 to 256.
    #[error("weight {0:?} is not a number from 0 to 256")]
    Weight(String),
    /// A word the CLI would read as syntax (`;`, `\`, quotes) or that is not plain text.
    #[error("word {0:?} has characters the runtime API cannot be sent safely")]
    Unsafe(String),
}

impl ServerLine {
    /// Parses the words of a `server` line (the first word is `server`).
    pub fn parse(words: &[String]) -> Result<ServerLine, LineError> {
        let [kw, name, addr, rest @ ..] = words else {
            return Err(LineError::Shape);
        };
        if kw != "server" {
            return Err(LineError::Shape);
        }
        for w in words {
            if !safe_word(w) {
                return Err(LineError::Unsafe(w.clone()));
            }
        }
        let (addr, port) = parse_address(addr)?;
        let mut line = ServerLine {
            name: name.clone(),
            addr,
            port,
            weight: 1,
            disabled: false,
            check: false,
            agent: false,
            rest: Vec::new(),
        };
        let mut words = rest.iter();
        while let Some(w) = words.next() {
            match w.as_str() {
                "weight" => {
                    let v = words.next().ok_or(LineError::Weight(String::new()))?;
                    line.weight = v
                        .parse()
                        .ok()
                        .filter(|n| *n <= 256)
                        .ok_or_else(|| LineError::Weight(v.clone()))?;
                }
                "disabled" => line.disabled = true,
                "enabled" => line.disabled = false,
                other => {
                    line.check |= other == "check";
                    line.agent |= other == "agent-check";
                    line.rest.push(w.clone());
                }
            }
        }
        Ok(line)
    }

    /// `ip:port` (`[ip]:port` for IPv6) or the bare address, as `add server` takes it.
    pub fn address(&self) -> String {
        match (self.addr, self.port) {
            (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
            (a, Some(p)) => format!("{a}:{p}"),
            (a, None) => a.to_string(),
        }
    }
}

/// Plain printable ASCII without the CLI's separators, escapes and quotes.
pub(super) fn safe_word(w: &str) -> bool {
    !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b'\\' | b'"' | b'\'' | b'#'))
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`, `ipv4@...`/`ipv6@...`; nothing else
/// (host names, port ranges and offsets, unix sockets go through a reload).
fn parse_address(text: &str) -> Result<(IpAddr, Option<u16>), LineError> {
    let bad = || LineError::Address(text.to_string());
    let t = text
        .strip_prefix("ipv4@")
        .or_else(|| text.strip_prefix("ipv6@"))
        .unwrap_or(text);
    let (host, port) = if let Some(v6) = t.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if t.matches(':').count() > 1 {
        // A bare IPv6 address: its last group would be read as a port.
        return Err(bad());
    } else {
        match t.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (t, None),
        }
    };
    let addr: IpAddr = host.parse().map_err(|_| bad())?;
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?)
        }
        Some(_) => return Err(bad()),
    };
    Ok((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn splits_what_the_runtime_can_change_from_the_rest() {
        let l = ServerLine::parse(&words(
            "server web1 10.0.0.1:8080 check inter 2s weight 10 disabled maxconn 5",
        ))
        .unwrap();
        assert_eq!(l.name, "web1");
        assert_eq!(l.address(), "10.0.0.1:8080");
        assert_eq!((l.weight, l.disabled, l.check), (10, true, true));
        assert_eq!(l.rest, words("check inter 2s maxconn 5"));
        let v6 = ServerLine::parse(&words("server a [::1]:80")).unwrap();
        assert_eq!(v6.address(), "[::1]:80");
        assert_eq!(
            ServerLine::parse(&words("server a 127.0.0.1"))
                .unwrap()
                .port,
            None
        );
    }

    #[test]
    fn refuses_what_would_need_a_resolver_or_could_inject_commands() {
        for bad in [
            "server a localhost:80",
            "server a ::1",
            "server a 127.0.0.1:80-90",
            "server a 127.0.0.1:+1",
            "server a /run/app.sock",
            "server a 127.0.0.1:0",
            "server a 127.0.0.1:80 weight 300",
            "server a 127.0.0.1:80 weight",
            "server a;b 127.0.0.1:80",
            "server a 127.0.0.1:80 check;del",
            "server a",
        ] {
            assert!(ServerLine::parse(&words(bad)).is_err(), "{bad}");
        }
    }
}
