//! The engine's container events (each names a container to inspect again) and the full
//! listing of running containers, both limited by `--docker-label` filters.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::Docker;
use bollard::query_parameters::{EventsOptions, InspectContainerOptions, ListContainersOptions};
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::client::{DockerClient, DockerError};
use super::model::{Container, LabelFilter, matches_all};

/// The container actions that can change what a container contributes.
pub const ACTIONS: [&str; 9] = [
    "start",
    "die",
    "stop",
    "kill",
    "pause",
    "unpause",
    "health_status",
    "rename",
    "destroy",
];

/// Most inspects in flight during a full listing.
const INSPECTS_AT_ONCE: usize = 8;

/// One container event: which container to inspect again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// The container's id.
    pub id: String,
    /// Its name as the event gives it (the new name after a rename), if any.
    pub name: Option<String>,
    /// The action (`start`, `die`, `health_status`, ...; the health status word is cut
    /// off `health_status: healthy`).
    pub action: String,
}

fn label_filters(filters: &[LabelFilter]) -> Vec<String> {
    filters.iter().map(LabelFilter::engine_form).collect()
}

/// The container events from `since` (unix seconds; `None`: from now) on, until the
/// engine closes the stream or fails.
pub fn container_events(
    client: &DockerClient,
    docker: &Docker,
    filters: &[LabelFilter],
    since: Option<i64>,
) -> impl Stream<Item = Result<ContainerEvent, DockerError>> + Send + 'static {
    let mut f: HashMap<String, Vec<String>> = HashMap::new();
    f.insert("type".into(), vec!["container".into()]);
    f.insert(
        "event".into(),
        ACTIONS.iter().map(|s| s.to_string()).collect(),
    );
    if !filters.is_empty() {
        f.insert("label".into(), label_filters(filters));
    }
    let opts = EventsOptions {
        since: since.map(|s| s.to_string()),
        until: None,
        filters: Some(f),
    };
    let node = client.node().to_string();
    docker.events(Some(opts)).filter_map(move |item| {
        let out = match item {
            Err(source) => Some(Err(DockerError::Engine {
                node: node.clone(),
                what: "GET /events".into(),
                source,
            })),
            Ok(msg) => {
                let actor = msg.actor.unwrap_or_default();
                let action = msg.action.unwrap_or_default();
                let action = action
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                actor.id.filter(|id| !id.is_empty()).map(|id| {
                    Ok(ContainerEvent {
                        id,
                        name: actor.attributes.and_then(|mut a| a.remove("name")),
                        action,
                    })
                })
            }
        };
        std::future::ready(out)
    })
}

/// Inspects one container; `Ok(None)` when it is gone, or no longer passes `filters`.
pub async fn inspect(
    client: &DockerClient,
    docker: &Docker,
    id: &str,
    filters: &[LabelFilter],
    host_ip: IpAddr,
) -> Result<Option<Container>, DockerError> {
    match docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
    {
        Ok(r) => match Container::from_inspect(&r, host_ip) {
            Ok(c) => Ok(matches_all(filters, &c.labels).then_some(c)),
            Err(e) => {
                tracing::warn!(node = client.node(), error = %e, "container left out");
                Ok(None)
            }
        },
        Err(e) => {
            let err = client.error(format!("inspect container {id}"), e);
            if err.is_not_found() {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// Every running container that passes `filters`, each inspected (a container that
/// vanishes between the listing and its inspect is left out).
pub async fn list_running(
    client: &DockerClient,
    docker: &Docker,
    filters: &[LabelFilter],
    host_ip: IpAddr,
) -> Result<Vec<Container>, DockerError> {
    let mut f: HashMap<String, Vec<String>> = HashMap::new();
    f.insert("status".into(), vec!["running".into()]);
    if !filters.is_empty() {
        f.insert("label".into(), label_filters(filters));
    }
    let opts = ListContainersOptions {
        all: false,
        filters: Some(f),
        ..Default::default()
    };
    let summaries = docker
        .list_containers(Some(opts))
        .await
        .map_err(|e| client.error("GET /containers/json", e))?;
    let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
    let found: Vec<Option<Container>> = futures_util::stream::iter(ids)
        .map(|id| async move { inspect(client, docker, &id, filters, host_ip).await })
        .buffer_unordered(INSPECTS_AT_ONCE)
        .try_collect()
        .await?;
    let mut out: Vec<Container> = found
        .into_iter()
        .flatten()
        .filter(Container::is_running)
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
