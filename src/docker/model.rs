//! One container as confsync sees it, built from one inspect of the engine, and the rules
//! that give it a place in the service view: which service it belongs to and which of
//! its published ports is the service's.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};

/// The label naming a container's service (else the image's repository name is used).
pub const SERVICE_LABEL: &str = "confsync.service";
/// The label naming the private port that serves (else the only published port is used).
pub const PORT_LABEL: &str = "confsync.port";

/// A container's Docker HEALTHCHECK state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The container has no healthcheck.
    None,
    /// The healthcheck has not passed yet.
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    /// The word used in keys: `none`, `starting`, `healthy` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::None => "none",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// A published port's key: the container's private port and its protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortKey {
    pub private: u16,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
}

/// A published port's host side, with an unspecified host IP (`0.0.0.0`, `::`, empty)
/// already replaced by the configured host IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for HostAddr {
    /// `ip:port`, with an IPv6 address in brackets (`[::1]:8080`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        std::net::SocketAddr::new(self.ip, self.port).fmt(f)
    }
}

/// One container, from one inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Full container id.
    pub id: String,
    /// Name without Docker's leading `/`.
    pub name: String,
    /// The image as the container was created with it (`registry/team/app:1.2`).
    pub image: String,
    /// Docker's state word: `running`, `paused`, `exited`, ...
    pub state: String,
    pub health: Health,
    /// The container's address on its first network (by network name), if any.
    pub ip: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
    /// Published ports; a private port published twice (IPv4 and IPv6) keeps the first
    /// binding once mapped.
    pub ports: BTreeMap<PortKey, HostAddr>,
}

/// Why an inspect could not become a [`Container`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container {container}: {message}")]
pub struct ModelError {
    /// The id or name the engine was asked about.
    pub container: String,
    pub message: String,
}

/// A container's place in the service view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddr {
    pub service: String,
    pub addr: HostAddr,
}

impl Container {
    /// Builds a container from an inspect; `host_ip` replaces unspecified host IPs.
    pub fn from_inspect(r: &ContainerInspectResponse, host_ip: IpAddr) -> Result<Self, ModelError> {
        let fail = |message: &str| ModelError {
            container: r.name.clone().or_else(|| r.id.clone()).unwrap_or_default(),
            message: message.to_string(),
        };
        let id = r.id.clone().ok_or_else(|| fail("the engine gave no id"))?;
        let name = r
            .name
            .as_deref()
            .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| fail("the engine gave no name"))?;
        let config = r.config.as_ref();
        let image = config
            .and_then(|c| c.image.clone())
            .or_else(|| r.image.clone())
            .unwrap_or_default();
        let state_info = r.state.as_ref();
        let state = state_info
            .and_then(|s| s.status)
            .map(state_word)
            .unwrap_or_else(|| "unknown".to_string());
        let health = match state_info
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
        {
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
            _ => Health::None,
        };
        let labels = config
            .and_then(|c| c.labels.as_ref())
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let net = r.network_settings.as_ref();
        let ip = net.and_then(|n| n.networks.as_ref()).and_then(|nets| {
            let mut sorted: Vec<_> = nets.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            sorted
                .into_iter()
                .find_map(|(_, e)| e.ip_address.as_deref()?.parse::<IpAddr>().ok())
        });
        let mut ports = BTreeMap::new();
        if let Some(map) = net.and_then(|n| n.ports.as_ref()) {
            for (spec, bindings) in map {
                let Some(key) = parse_port_key(spec) else {
                    continue;
                };
                let first = bindings.iter().flatten().find_map(|b| {
                    let port = b.host_port.as_deref()?.parse::<u16>().ok()?;
                    Some(HostAddr {
                        ip: map_host_ip(b.host_ip.as_deref(), host_ip)?,
                        port,
                    })
                });
                if let Some(addr) = first {
                    ports.insert(key, addr);
                }
            }
        }
        Ok(Container {
            id,
            name,
            image,
            state,
            health,
            ip,
            labels,
            ports,
        })
    }

    /// True for a running container (a paused one is not running).
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// True when the container may take traffic: running, and healthy or without a
    /// healthcheck.
    pub fn is_serving(&self) -> bool {
        self.is_running() && matches!(self.health, Health::None | Health::Healthy)
    }

    /// The service and address this container is listed under, or why it has none.
    pub fn service(&self) -> Result<ServiceAddr, String> {
        let service = match self.labels.get(SERVICE_LABEL) {
            Some(s) => s.clone(),
            None => image_repository(&self.image)
                .ok_or_else(|| {
                    format!(
                        "no {SERVICE_LABEL} label and the image {:?} has no repository name",
                        self.image
                    )
                })?
                .to_string(),
        };
        let addr = match self.labels.get(PORT_LABEL) {
            Some(p) => {
                let private: u16 = p
                    .parse()
                    .map_err(|_| format!("label {PORT_LABEL}={p:?} is not a port number"))?;
                self.ports
                    .iter()
                    .find(|(k, _)| k.private == private && k.proto == "tcp")
                    .or_else(|| self.ports.iter().find(|(k, _)| k.private == private))
                    .map(|(_, a)| a.clone())
                    .ok_or_else(|| {
                        format!("label {PORT_LABEL}={p} names a port that is not published")
                    })?
            }
            None => {
                let mut it = self.ports.values();
                match (it.next(), it.next()) {
                    (Some(a), None) => a.clone(),
                    (None, _) => return Err("no published port".into()),
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "{} published ports and no {PORT_LABEL} label to choose one",
                            self.ports.len()
                        ));
                    }
                }
            }
        };
        Ok(ServiceAddr { service, addr })
    }
}

fn state_word(s: ContainerStateStatusEnum) -> String {
    match s {
        ContainerStateStatusEnum::EMPTY => "unknown".to_string(),
        other => other.to_string(),
    }
}

/// `8000/tcp` as a key; `None` for anything else.
fn parse_port_key(spec: &str) -> Option<PortKey> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    Some(PortKey {
        private: port.parse().ok()?,
        proto,
    })
}

/// A binding's host IP, with `0.0.0.0`, `::` and empty mapped to `host_ip`; `None` for
/// text that is not an IP address.
pub fn map_host_ip(bound: Option<&str>, host_ip: IpAddr) -> Option<IpAddr> {
    match bound.map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(host_ip),
        Some(s) => {
            let ip: IpAddr = s.parse().ok()?;
            Some(if ip.is_unspecified() { host_ip } else { ip })
        }
    }
}

/// The repository name of an image reference, without registry, namespace, tag or
/// digest: `registry:5000/team/app:1.2@sha256:...` is `app`. `None` for an image given
/// by id (`sha256:...` or bare hex).
pub fn image_repository(image: &str) -> Option<&str> {
    let no_digest = image.split_once('@').map_or(image, |(n, _)| n);
    if no_digest.starts_with("sha256:") {
        return None;
    }
    let last = no_digest.rsplit('/').next()?;
    let repo = last.split_once(':').map_or(last, |(r, _)| r);
    let is_id =
        repo.len() >= 12 && repo.bytes().all(|b| b.is_ascii_hexdigit()) && !no_digest.contains('/');
    (!repo.is_empty() && !is_id).then_some(repo)
}

/// A `--docker-label key[=value]` filter: the container must have the label (with that
/// value when one is given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
}

impl std::str::FromStr for LabelFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (s, None),
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("--docker-label {s:?}: the label name is empty"));
        }
        Ok(LabelFilter {
            key: key.to_string(),
            value,
        })
    }
}

impl LabelFilter {
    /// The engine's filter form (`key` or `key=value`), for `label` filters.
    pub fn engine_form(&self) -> String {
        match &self.value {
            Some(v) => format!("{}={v}", self.key),
            None => self.key.clone(),
        }
    }

    /// True when `labels` pass this filter.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match (labels.get(&self.key), &self.value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
        }
    }
}

/// True when `labels` pass every filter.
pub fn matches_all(filters: &[LabelFilter], labels: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|f| f.matches(labels))
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
