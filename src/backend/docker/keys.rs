//! The key layout of the docker backend (stable; documented in the README):
//!
//! ```text
//! /docker/containers/<name>/id | image | state | health | ip
//! /docker/containers/<name>/labels/<label>       = value
//! /docker/containers/<name>/ports/<private>/<proto> = host-ip:host-port
//! /docker/services/<service>/<name>              = host-ip:host-port
//! ```
//!
//! A container is in `services/` while it is running and healthy (or has no
//! healthcheck), under the service and port its labels or image give it.
//!
//! Names, label keys and service names come from whoever starts containers, so each path
//! segment must be a plain one: not empty, not `.` or `..`, no `/`, no control
//! characters, at most [`MAX_SEGMENT`] bytes. An entry with a bad segment is left out,
//! with a warning naming it (escaped), so one container cannot forge another's keys.

use std::collections::BTreeMap;

use crate::backend::KvMap;
use crate::backend::text::shown;
use crate::docker::Container;

/// The root every key of this backend lies under.
pub const ROOT: &str = "/docker";

/// Longest path segment taken from a container, in bytes.
pub const MAX_SEGMENT: usize = 255;

/// Why `segment` cannot be a path segment, or `None` when it can.
fn bad_segment(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        Some("it is empty")
    } else if segment == "." || segment == ".." {
        Some("it is . or ..")
    } else if segment.contains('/') {
        Some("it holds a /")
    } else if segment.chars().any(char::is_control) {
        Some("it holds a control character")
    } else if segment.len() > MAX_SEGMENT {
        Some("it is too long")
    } else {
        None
    }
}

/// True when `segment` is usable; warns (naming container and what) when it is not.
fn usable(container: &str, what: &str, segment: &str) -> bool {
    match bad_segment(segment) {
        None => true,
        Some(why) => {
            tracing::warn!(
                backend = "docker",
                container = %shown(container.as_bytes()),
                "{what} {} left out: {why}",
                shown(segment.as_bytes())
            );
            false
        }
    }
}

/// Every key the running `containers` give.
pub fn layout<'a>(containers: impl IntoIterator<Item = &'a Container>) -> KvMap {
    let mut kvs = BTreeMap::new();
    for c in containers {
        if !c.is_running() || !usable(&c.name, "container name", &c.name) {
            continue;
        }
        let base = format!("{ROOT}/containers/{}", c.name);
        kvs.insert(format!("{base}/id"), c.id.clone());
        kvs.insert(format!("{base}/image"), c.image.clone());
        kvs.insert(format!("{base}/state"), c.state.clone());
        kvs.insert(format!("{base}/health"), c.health.as_str().to_string());
        if let Some(ip) = c.ip {
            kvs.insert(format!("{base}/ip"), ip.to_string());
        }
        for (k, v) in &c.labels {
            if usable(&c.name, "label", k) {
                kvs.insert(format!("{base}/labels/{k}"), v.clone());
            }
        }
        for (k, addr) in &c.ports {
            kvs.insert(
                format!("{base}/ports/{}/{}", k.private, k.proto),
                addr.to_string(),
            );
        }
        if !c.is_serving() {
            continue;
        }
        match c.service() {
            Ok(s) if usable(&c.name, "service", &s.service) => {
                kvs.insert(
                    format!("{ROOT}/services/{}/{}", s.service, c.name),
                    s.addr.to_string(),
                );
            }
            Ok(_) => {}
            Err(why) => {
                tracing::debug!(container = %c.name, "not in the service view: {why}");
            }
        }
    }
    kvs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{Health, HostAddr, PortKey};

    fn container(name: &str) -> Container {
        Container {
            id: format!("id-{name}"),
            name: name.into(),
            image: "team/app:1".into(),
            state: "running".into(),
            health: Health::None,
            ip: Some("10.0.0.2".parse().unwrap()),
            labels: BTreeMap::from([("tier".to_string(), "web".to_string())]),
            ports: BTreeMap::from([(
                PortKey {
                    private: 8000,
                    proto: "tcp".into(),
                },
                HostAddr {
                    ip: "127.0.0.1".parse().unwrap(),
                    port: 40001,
                },
            )]),
        }
    }

    #[test]
    fn the_documented_layout() {
        let kvs = layout([&container("w1")]);
        let want: KvMap = [
            ("/docker/containers/w1/health", "none"),
            ("/docker/containers/w1/id", "id-w1"),
            ("/docker/containers/w1/image", "team/app:1"),
            ("/docker/containers/w1/ip", "10.0.0.2"),
            ("/docker/containers/w1/labels/tier", "web"),
            ("/docker/containers/w1/ports/8000/tcp", "127.0.0.1:40001"),
            ("/docker/containers/w1/state", "running"),
            ("/docker/services/app/w1", "127.0.0.1:40001"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(kvs, want);
    }

    #[test]
    fn unhealthy_or_stopped_containers_leave_the_service_view() {
        let mut sick = container("w1");
        sick.health = Health::Unhealthy;
        let kvs = layout([&sick]);
        assert!(kvs.contains_key("/docker/containers/w1/id"));
        assert!(!kvs.keys().any(|k| k.starts_with("/docker/services/")));
        let mut paused = container("w2");
        paused.state = "paused".into();
        assert!(layout([&paused]).is_empty());
    }

    #[test]
    fn hostile_segments_are_left_out() {
        let mut c = container("w1");
        c.labels
            .insert("../../services/app/evil".into(), "x".into());
        c.labels.insert("a\nb".into(), "x".into());
        c.labels.insert(String::new(), "x".into());
        c.labels
            .insert("confsync.service".into(), "../containers".into());
        let kvs = layout([&c]);
        assert!(
            kvs.keys().all(|k| !k.contains("..") && !k.contains('\n')),
            "{kvs:?}"
        );
        assert!(!kvs.keys().any(|k| k.starts_with("/docker/services/")));
        assert!(kvs.contains_key("/docker/containers/w1/labels/confsync.service"));
        let mut dots = container("..");
        dots.labels.clear();
        assert!(layout([&dots]).is_empty());
    }
}
