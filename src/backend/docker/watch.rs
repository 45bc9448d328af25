//! Watching the engine: one session is an event stream opened from two seconds before a
//! full listing (so no change falls between the two; an event replayed from before the
//! listing only costs an inspect), then one inspect per container an event names, and
//! the keys diffed into [`Update::Changes`]. The stream ending or a request failing ends
//! the session: `Down` is sent once, the last good keys stay with the daemon, and the
//! next session starts after a capped backoff with `Up` and a fresh `Resync`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{DockerBackend, KIND, keys, keys_under};
use crate::backend::{BackendError, Backoff, Change, KvMap, Snapshot, Update};
use crate::docker::{self, Container};

/// Most events handled as one batch (one `Changes`).
const MAX_BATCH: usize = 256;
/// How far before the listing the event stream starts, in seconds.
const REPLAY_SECS: u64 = 2;

/// What the watch has told the daemon, carried from one session to the next.
struct Link {
    /// A `Down` was sent and no `Up` yet.
    down: bool,
    backoff: Backoff,
    /// The keys as the daemon holds them (as sent so far).
    sent: KvMap,
}

/// Runs sessions until `shutdown`, backing off between them.
pub(super) async fn run(
    b: &DockerBackend,
    prefixes: &[String],
    from: &Snapshot,
    tx: &mpsc::Sender<Update>,
    shutdown: &CancellationToken,
) -> Result<(), BackendError> {
    let mut link = Link {
        down: false,
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
        sent: from.kvs.clone(),
    };
    while !shutdown.is_cancelled() {
        let err = match session(b, prefixes, tx, shutdown, &mut link).await {
            Ok(()) => return Ok(()),
            Err(e) if !e.is_transient() => {
                tracing::error!(error = %e, "docker watch stopped");
                return Err(e);
            }
            Err(e) => e,
        };
        b.client.forget_version();
        if link.down {
            tracing::debug!(error = %err, "docker engine still unreachable");
        } else {
            tracing::warn!(error = %err, "docker engine unreachable; keeping the last good keys");
            link.down = true;
            if tx.send(Update::Down(err.to_string())).await.is_err() {
                return Ok(());
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(link.backoff.next_delay()) => {}
        }
    }
    Ok(())
}

/// The changes that turn `old` into `new`.
fn diff(old: &KvMap, new: &KvMap) -> Vec<Change> {
    let gone = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| (k.clone(), None));
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())));
    gone.chain(set).collect()
}

/// Sends what changed since the last update; false when the daemon stopped listening.
async fn send_changes(
    containers: &BTreeMap<String, Container>,
    prefixes: &[String],
    tx: &mpsc::Sender<Update>,
    link: &mut Link,
) -> bool {
    let now = keys_under(containers.values(), prefixes);
    let changes = diff(&link.sent, &now);
    link.sent = now;
    changes.is_empty() || tx.send(Update::Changes(changes)).await.is_ok()
}

/// Sends the change of some containers' keys from `before` to `after` (`after` under the
/// prefixes already); false when the daemon stopped listening.
async fn send_part(
    before: &KvMap,
    after: KvMap,
    tx: &mpsc::Sender<Update>,
    link: &mut Link,
) -> bool {
    let changes = diff(before, &after);
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        link.sent.remove(k);
    }
    link.sent.extend(after);
    changes.is_empty() || tx.send(Update::Changes(changes)).await.is_ok()
}

/// The keys of the container named `name` in `sent`: its own under `containers/` and
/// its entry in a service.
fn sent_for(sent: &KvMap, name: &str) -> KvMap {
    let own = format!("{}/containers/{name}/", keys::ROOT);
    let services = format!("{}/services/", keys::ROOT);
    let mine = sent
        .range(own.clone()..)
        .take_while(|(k, _)| k.starts_with(&own));
    let serving = sent
        .range(services.clone()..)
        .take_while(|(k, _)| k.starts_with(&services))
        .filter(|(k, _)| k.rsplit_once('/').is_some_and(|(_, n)| n == name));
    mine.chain(serving)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn by_id(list: Vec<Container>) -> BTreeMap<String, Container> {
    list.into_iter().map(|c| (c.id.clone(), c)).collect()
}

/// One event stream's life: `Ok` on shutdown, `Err` when the engine is lost.
async fn session(
    b: &DockerBackend,
    prefixes: &[String],
    tx: &mpsc::Sender<Update>,
    shutdown: &CancellationToken,
    link: &mut Link,
) -> Result<(), BackendError> {
    let engine = b.client.engine().await.map_err(|e| b.error(e))?;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(REPLAY_SECS))
        .unwrap_or(0);
    let since = i64::try_from(since).unwrap_or(0);
    let mut events = Box::pin(docker::container_events(
        &b.client,
        &engine,
        &b.filters,
        Some(since),
    ));
    let mut containers = by_id(b.containers().await?);
    if link.down {
        link.down = false;
        tracing::info!(node = b.client.node(), "docker engine reachable again");
        if tx.send(Update::Up).await.is_err() {
            return Ok(());
        }
    }
    link.sent = keys_under(containers.values(), prefixes);
    let snapshot = Snapshot {
        kvs: link.sent.clone(),
        revision: None,
    };
    if tx.send(Update::Resync(snapshot)).await.is_err() {
        return Ok(());
    }
    let mut resync = b.resync.map(|every| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let tick = async {
            match resync.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick => {
                containers = by_id(b.containers().await?);
                if !send_changes(&containers, prefixes, tx, link).await {
                    return Ok(());
                }
                continue;
            }
            ev = events.next() => ev,
        };
        // The stream proved itself only when it delivers: an engine (or a socket proxy)
        // that answers listings but drops `/events` at once keeps backing off.
        if matches!(first, Some(Ok(_))) {
            link.backoff.reset();
        }
        let mut ids = BTreeSet::new();
        let mut ended = None;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                None => {
                    ended = Some(BackendError::transient(
                        KIND,
                        b.client.node(),
                        "the event stream ended",
                    ))
                }
                Some(Err(e)) => ended = Some(b.error(e)),
                Some(Ok(ev)) => {
                    tracing::debug!(id = %ev.id, action = %ev.action, "docker event");
                    ids.insert(ev.id);
                    if ids.len() < MAX_BATCH {
                        next = events.next().now_or_never();
                    }
                }
            }
        }
        // Only the named containers changed: their keys as sent, against their keys now.
        let mut before = KvMap::new();
        for c in ids.iter().filter_map(|id| containers.get(id)) {
            before.extend(sent_for(&link.sent, &c.name));
        }
        for id in &ids {
            match docker::inspect(&b.client, &engine, id, &b.filters, b.host_ip).await {
                Ok(Some(c)) if c.is_running() => {
                    containers.insert(id.clone(), c);
                }
                Ok(_) => {
                    containers.remove(id);
                }
                Err(e) => return Err(b.error(e)),
            }
        }
        let after = keys_under(ids.iter().filter_map(|id| containers.get(id)), prefixes);
        if !send_part(&before, after, tx, link).await {
            return Ok(());
        }
        if let Some(e) = ended {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_removes_adds_and_changes() {
        let old: KvMap = [("/a", "1"), ("/b", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let new: KvMap = [("/b", "3"), ("/c", "4")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let d = diff(&old, &new);
        assert_eq!(
            d,
            vec![
                ("/a".to_string(), None),
                ("/b".to_string(), Some("3".to_string())),
                ("/c".to_string(), Some("4".to_string())),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn a_containers_sent_keys_are_its_own_and_its_service_entry() {
        let sent: KvMap = [
            "/docker/containers/web1/id",
            "/docker/containers/web1/ports/80/tcp",
            "/docker/containers/web10/id",
            "/docker/services/app/web1",
            "/docker/services/app/web10",
        ]
        .into_iter()
        .map(|k| (k.to_string(), "v".to_string()))
        .collect();
        let mine: Vec<String> = sent_for(&sent, "web1").into_keys().collect();
        assert_eq!(
            mine,
            [
                "/docker/containers/web1/id",
                "/docker/containers/web1/ports/80/tcp",
                "/docker/services/app/web1",
            ]
        );
    }
}
