//! `confsync register --from-docker`: keeps every running (filtered) container of one
//! Docker engine registered in etcd or Redis while it runs.
//!
//! - A full listing at start and after every reconnect to the engine says what runs;
//!   the engine's container events (from a second before that listing, so nothing falls
//!   between the two) name the containers to inspect again. A container is wanted while
//!   it runs and, with a HEALTHCHECK, is healthy; its key and value come from the
//!   templates, and a container whose values are refused is left out with a warning
//!   naming it.
//! - Before the first keeper starts, the store is reconciled: this registrar's own keys
//!   (see `docker_owner`) that no running container wants are removed.
//! - Engine down: the keepers keep refreshing what is registered; the engine is asked
//!   again with backoff, and its listing then reconciles.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::docker_args::DockerSettings;
use super::docker_keepers::{Keepers, Wanted};
use super::docker_owner;
use super::docker_template::{Field, Values};
use super::keeper::Outcome;
use super::{RegisterError, Registration, check_key};
use crate::backend::{BackendConfig, Backoff};
use crate::docker::{Container, DockerError, container_events, inspect, list_running};

/// Shortest wait before asking a lost engine again.
const RETRY_BASE: Duration = Duration::from_millis(200);
/// Longest wait before asking a lost engine again.
const RETRY_CAP: Duration = Duration::from_secs(5);

/// Why one connection to the engine ended.
enum Ended {
    Shutdown,
    Fatal(RegisterError),
    /// The engine (or, before the first reconcile, the store) failed; try again.
    Retry(String),
}

impl From<DockerError> for Ended {
    fn from(e: DockerError) -> Self {
        Ended::Retry(e.to_string())
    }
}

impl From<RegisterError> for Ended {
    fn from(e: RegisterError) -> Self {
        Ended::Fatal(e)
    }
}

/// Runs the registrar until `shutdown`; every registration is removed at the end.
pub async fn run(
    cfg: &BackendConfig,
    s: DockerSettings,
    shutdown: CancellationToken,
) -> Result<Outcome, RegisterError> {
    let mut keepers = Keepers::new(cfg, &s.owner, shutdown.child_token());
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
    let mut reconciled = false;
    let mut outage: Option<String> = None;
    info!(
        docker = s.client.node(),
        registrar = s.owner.id(),
        "registering Docker containers"
    );
    let fatal = loop {
        let ended = follow_engine(
            cfg,
            &s,
            &mut keepers,
            &mut reconciled,
            &mut backoff,
            &mut outage,
            &shutdown,
        )
        .await;
        let why = match ended {
            Ended::Shutdown => break None,
            Ended::Fatal(e) => break Some(e),
            Ended::Retry(why) => why,
        };
        if outage.as_deref() != Some(why.as_str()) {
            warn!(error = %why, "Docker engine unreachable; registrations are kept, retrying with backoff");
        }
        outage = Some(why);
        s.client.forget_version();
        let wait = backoff.next_delay();
        tokio::select! {
            _ = shutdown.cancelled() => break None,
            r = keepers.next_end() => if let Err(e) = r { break Some(e) },
            _ = tokio::time::sleep(wait) => {}
        }
    };
    let outcome = keepers.finish().await;
    match fatal {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// One connection to the engine: list, reconcile, follow events until it fails.
async fn follow_engine(
    cfg: &BackendConfig,
    s: &DockerSettings,
    keepers: &mut Keepers<'_>,
    reconciled: &mut bool,
    backoff: &mut Backoff,
    outage: &mut Option<String>,
    shutdown: &CancellationToken,
) -> Ended {
    let docker = tokio::select! {
        _ = shutdown.cancelled() => return Ended::Shutdown,
        d = s.client.engine() => match d { Ok(d) => d, Err(e) => return e.into() },
    };
    let since = unix_now() - 1;
    let listing = tokio::select! {
        _ = shutdown.cancelled() => return Ended::Shutdown,
        l = list_running(&s.client, &docker, &s.filters, s.host_ip) => match l {
            Ok(l) => l,
            Err(e) => return e.into(),
        },
    };
    if let Some(was) = outage.take() {
        info!(was = %was, "Docker engine reachable again");
    }
    let all: HashMap<String, Wanted> = listing
        .iter()
        .filter_map(|c| wanted(s, c).map(|w| (c.id.clone(), w)))
        .collect();
    if !*reconciled {
        let keys = all.values().map(|w| w.reg.key.clone()).collect();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return Ended::Shutdown,
            r = docker_owner::reconcile(cfg, &s.owner, &keys) => r,
        };
        match result {
            Ok(n) => info!(
                removed = n,
                running = listing.len(),
                "reconciled with the store"
            ),
            Err(e) if e.is_transient() => return Ended::Retry(format!("store: {e}")),
            Err(source) => {
                return Ended::Fatal(RegisterError::Fatal {
                    key: s.owner.base(),
                    source,
                });
            }
        }
        *reconciled = true;
    }
    if let Err(e) = keepers.replace_all(all).await {
        return e.into();
    }
    let mut events = Box::pin(container_events(
        &s.client,
        &docker,
        &s.filters,
        Some(since),
    ));
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return Ended::Shutdown,
            r = keepers.next_end() => match r {
                Ok(()) => continue,
                Err(e) => return e.into(),
            },
            e = events.next() => e,
        };
        let event = match event {
            // The stream proved itself only when it delivers (see the backend's watch).
            Some(Ok(e)) => {
                backoff.reset();
                e
            }
            Some(Err(e)) => return e.into(),
            None => return Ended::Retry("the event stream ended".into()),
        };
        debug!(container = %event.id, action = %event.action, "container event");
        let found = match inspect(&s.client, &docker, &event.id, &s.filters, s.host_ip).await {
            Ok(found) => found,
            Err(e) => return e.into(),
        };
        let want = found.as_ref().and_then(|c| wanted(s, c));
        if let Err(e) = keepers.set(&event.id, want).await {
            return e.into();
        }
    }
}

/// What container `c` is registered as, or `None` (not serving, or refused: logged).
fn wanted(s: &DockerSettings, c: &Container) -> Option<Wanted> {
    if !c.is_serving() {
        debug!(container = %c.name, state = %c.state, health = c.health.as_str(), "not registered: not running and healthy");
        return None;
    }
    match registration(s, c) {
        Ok(reg) => Some(Wanted {
            name: c.name.clone(),
            reg,
        }),
        Err(why) => {
            warn!(container = %c.name, id = %c.id, "not registered: {why}");
            None
        }
    }
}

/// Container `c`'s key and value from the templates, every value checked.
fn registration(s: &DockerSettings, c: &Container) -> Result<Registration, String> {
    let mut v = Values {
        name: c.name.clone(),
        id: c.id.clone(),
        ..Values::default()
    };
    let needs_service = [Field::Service, Field::Port, Field::Host]
        .iter()
        .any(|f| s.key.uses(*f) || s.value.uses(*f));
    if needs_service {
        let addr = c.service()?;
        v.service = Some(addr.service);
        v.port = Some(addr.addr.port.to_string());
        v.host = Some(match addr.addr.ip {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        });
    }
    let key = s.key.expand(&v).map_err(|e| e.0)?;
    check_key(&key).map_err(|m| format!("key {m}"))?;
    if !key.starts_with(s.key.prefix()) {
        return Err(format!("key {key:?} is outside {:?}", s.key.prefix()));
    }
    let value = s.value.expand(&v).map_err(|e| e.0)?;
    Ok(Registration {
        key,
        value,
        ttl: s.ttl,
        check: None,
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::docker::{Health, HostAddr, PortKey};
    use crate::register::docker_args::DockerSettings;
    use crate::register::docker_owner::Owner;
    use crate::register::docker_template::Template;

    fn settings(key: &str, value: &str) -> DockerSettings {
        let opts = crate::docker::ConnectOptions::new(None);
        DockerSettings {
            client: crate::docker::DockerClient::connect(&opts).unwrap(),
            filters: vec![],
            key: Template::parse("--key-template", key).unwrap(),
            value: Template::parse("--value-template", value).unwrap(),
            host_ip: "127.0.0.1".parse().unwrap(),
            ttl: 2,
            owner: Owner::new("h").unwrap(),
        }
    }

    fn container(name: &str, ip: &str, labels: &[(&str, &str)]) -> Container {
        let mut ports = BTreeMap::new();
        ports.insert(
            PortKey {
                private: 8000,
                proto: "tcp".into(),
            },
            HostAddr {
                ip: ip.parse().unwrap(),
                port: 32768,
            },
        );
        Container {
            id: "c0ffee".into(),
            name: name.into(),
            image: "reg:5000/team/web:1".into(),
            state: "running".into(),
            health: Health::None,
            ip: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports,
        }
    }

    #[test]
    fn a_container_becomes_a_key_and_value() {
        let s = settings("/app/{service}/{name}", "{host}:{port}");
        let r = registration(&s, &container("web1", "10.0.0.7", &[])).unwrap();
        assert_eq!(
            (r.key.as_str(), r.value.as_str()),
            ("/app/web/web1", "10.0.0.7:32768")
        );
        let r = registration(&s, &container("web1", "::1", &[])).unwrap();
        assert_eq!(r.value, "[::1]:32768");
    }

    #[test]
    fn hostile_labels_and_names_are_refused_naming_the_placeholder() {
        let s = settings("/app/{service}/{name}", "{host}:{port}");
        let evil = container("web1", "10.0.0.7", &[("confsync.service", "../../etc")]);
        let why = registration(&s, &evil).unwrap_err();
        assert!(why.contains("{service}"), "{why}");
        let why = registration(&s, &container("a..b", "10.0.0.7", &[])).unwrap_err();
        assert!(why.contains("{name}"), "{why}");
        let mut portless = container("web1", "10.0.0.7", &[]);
        portless.ports.clear();
        assert!(registration(&s, &portless).unwrap_err().contains("port"));
        // A template without {port}/{host}/{service} needs no published port.
        let s = settings("/app/ids/{id}", "{name}");
        assert_eq!(registration(&s, &portless).unwrap().key, "/app/ids/c0ffee");
    }
}
