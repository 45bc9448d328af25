//! nerve's registration format, so SmartStack users can switch one side at a time: nerve
//! (and `confsync register --nerve`) writes an ephemeral sequential znode
//! `<path>/<name>_<sequence>` holding `{"host":"10.0.0.5","port":8080,"name":"web1"}`;
//! synapse (and the backend with `--nerve`) reads it back as `host:port`.

use serde::{Deserialize, Serialize};

/// The fields of one registration nerve writes (others, such as `weight` or `labels`,
/// are ignored when reading).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Address the instance serves on.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The instance's name (nerve's `instance_id`).
    pub name: String,
}

/// The JSON nerve writes for `host:port` named `name`.
pub fn encode(host: &str, port: u16, name: &str) -> String {
    serde_json::to_string(&Registration {
        host: host.to_string(),
        port,
        name: name.to_string(),
    })
    .unwrap_or_default()
}

/// `host:port` (`[v6]:port` for an IPv6 host) from a znode's data, or why not: the host
/// must be an IP address or a hostname and the port 1-65535, so a registration cannot
/// carry anything else into a rendered file.
pub fn decode(data: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Wire {
        host: String,
        port: serde_json::Value,
    }
    let wire: Wire = serde_json::from_str(data)
        .map_err(|e| format!("not nerve's JSON ({{\"host\":..,\"port\":..}}): {e}"))?;
    let port = match &wire.port {
        serde_json::Value::Number(n) => n.as_u64(),
        // nerve's configs often hold the port as a string; it writes what it was given.
        serde_json::Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    }
    .filter(|p| (1..=65535).contains(p))
    .ok_or_else(|| format!("nerve port {} is not 1-65535", wire.port))?;
    let host = wire.host.trim_start_matches('[').trim_end_matches(']');
    let addr = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    crate::template::safe::addr(&addr)
        .map(str::to_string)
        .map_err(|e| format!("nerve host {:?}: {e}", wire.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_nerve_writes_reads_back_as_host_port() {
        assert_eq!(
            decode(&encode("10.0.0.5", 8080, "web1")).unwrap(),
            "10.0.0.5:8080"
        );
        assert_eq!(
            decode(r#"{"host":"::1","port":"80","name":"x","weight":3}"#).unwrap(),
            "[::1]:80"
        );
        assert_eq!(
            decode(r#"{"host":"web-1.internal","port":443}"#).unwrap(),
            "web-1.internal:443"
        );
    }

    #[test]
    fn hostile_or_broken_registrations_are_refused() {
        for data in [
            "10.0.0.5:8080",
            r#"{"host":"10.0.0.5"}"#,
            r#"{"host":"10.0.0.5","port":0}"#,
            r#"{"host":"10.0.0.5","port":70000}"#,
            r#"{"host":"10.0.0.5","port":-1}"#,
            r#"{"host":"a b","port":80}"#,
            r#"{"host":"a;\n  server evil 1.2.3.4:80","port":80}"#,
            r#"{"host":"","port":80}"#,
            r#"{"host":5,"port":80}"#,
        ] {
            assert!(decode(data).is_err(), "{data}");
        }
    }
}
