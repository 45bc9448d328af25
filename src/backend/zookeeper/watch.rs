//! Watching ZooKeeper: one session at a time, a persistent recursive watch per prefix
//! set before the listing, events applied by re-reading the nodes they name, and a new
//! listing after every reconnect (events sent while disconnected are lost) and every
//! `resync_interval`. A session that expires is replaced by a new one.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::ZkBackend;
use super::tree::{self, inside, parent};
use crate::backend::{BackendError, Backoff, Snapshot, Update};

/// Most events applied as one batch (one multi-read, one `Changes`).
const MAX_BATCH: usize = 4096;

/// What the watch has told the daemon, carried from one session to the next.
struct Link {
    /// A `Down` was sent and no `Up` yet.
    down: bool,
    backoff: Backoff,
}

/// How a session ended without an error.
enum End {
    /// Shutdown, or the daemon stopped listening.
    Stop,
    /// The session expired or closed: make a new one.
    Lost(String),
}

/// Runs sessions until `shutdown`, backing off between them.
pub(super) async fn run(
    backend: &ZkBackend,
    prefixes: Vec<String>,
    tx: mpsc::Sender<Update>,
    shutdown: CancellationToken,
) -> Result<(), BackendError> {
    let roots = tree::roots_of(&prefixes);
    let mut link = Link {
        down: false,
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
    };
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let why = match session(backend, &roots, &tx, &shutdown, &mut link).await {
            Ok(End::Stop) => return Ok(()),
            Ok(End::Lost(why)) => why,
            // The daemon watches only after a listing (or from saved state): a refusal now
            // (a prefix's ACL changed) is retried with the last good snapshot kept, never
            // a reason to stop the daemon.
            Err(e) if !e.is_transient() => {
                if !link.down {
                    tracing::error!(error = %e, "zookeeper refuses the watched prefixes; keeping the last good snapshot and trying again");
                }
                e.to_string()
            }
            Err(e) => e.to_string(),
        };
        if !link.down {
            tracing::warn!(error = %why, "zookeeper is unreachable; keeping the last good snapshot");
            link.down = true;
            if tx.send(Update::Down(why)).await.is_err() {
                return Ok(());
            }
        } else {
            tracing::debug!(error = %why, "zookeeper still away; trying again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(link.backoff.next_delay()) => {}
        }
    }
}

/// One node event: its path, and whether it created or deleted the node (which changes
/// its parent's child count).
type Event = (String, bool);

/// One session's life.
async fn session(
    backend: &ZkBackend,
    roots: &[String],
    tx: &mpsc::Sender<Update>,
    shutdown: &CancellationToken,
    link: &mut Link,
) -> Result<End, BackendError> {
    let target = &backend.target;
    let client = target.connect().await?;
    let mut state = client.state_watcher();
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    // Aborted (and the watchers dropped) when the session ends or they are replaced.
    let mut forwarders = set_watches(backend, &client, roots, &events_tx).await?;
    let reader = backend.reader();
    // Listed after the watches are set: a change made meanwhile arrives as an event.
    if !resync(&reader, &client, roots, tx, link).await? {
        return Ok(End::Stop);
    }
    link.backoff.reset();
    let mut tick = backend.resync.map(|d| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(End::Stop),
            s = state.changed() => match s {
                zk::SessionState::Disconnected => {
                    tracing::info!(endpoint = target.shown(), "zookeeper connection lost; the session tries the other members");
                }
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    tracing::info!(endpoint = target.shown(), "zookeeper connection back; watching and listing again (events sent meanwhile are lost)");
                    // The client (0.11.2) does not set persistent watches again on a new
                    // connection: new watchers first, then the old ones go.
                    let fresh = set_watches(backend, &client, roots, &events_tx).await?;
                    drop(std::mem::replace(&mut forwarders, fresh));
                    if !resync(&reader, &client, roots, tx, link).await? {
                        return Ok(End::Stop);
                    }
                }
                zk::SessionState::AuthFailed => {
                    return Err(target.error("session", &zk::Error::AuthFailed));
                }
                other => return Ok(End::Lost(format!("zookeeper session {other}"))),
            },
            Some(first) = events.recv() => {
                let mut paths = BTreeSet::new();
                add(&mut paths, first, roots);
                while paths.len() < MAX_BATCH {
                    match events.try_recv() {
                        Ok(ev) => add(&mut paths, ev, roots),
                        Err(_) => break,
                    }
                }
                let changes = reader.reread(&client, &paths).await?;
                if !changes.is_empty() && tx.send(Update::Changes(changes)).await.is_err() {
                    return Ok(End::Stop);
                }
            }
            _ = next_tick(&mut tick) => {
                if !resync(&reader, &client, roots, tx, link).await? {
                    return Ok(End::Stop);
                }
            }
        }
    }
}

/// A persistent recursive watch on every root, each forwarded into `events`.
async fn set_watches(
    backend: &ZkBackend,
    client: &zk::Client,
    roots: &[String],
    events: &mpsc::UnboundedSender<Event>,
) -> Result<JoinSet<()>, BackendError> {
    let mut forwarders = JoinSet::new();
    for root in roots {
        let watcher = client
            .watch(root, zk::AddWatchMode::PersistentRecursive)
            .await
            .map_err(|e| backend.target.error(&format!("watch {root}"), &e))?;
        forwarders.spawn(forward(watcher, events.clone()));
    }
    Ok(forwarders)
}

/// The next resync tick, never when there is no interval.
async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Lists `roots` and sends the result (after `Up` when a `Down` was sent); false when
/// the daemon stopped listening.
async fn resync(
    reader: &tree::Reader<'_>,
    client: &zk::Client,
    roots: &[String],
    tx: &mpsc::Sender<Update>,
    link: &mut Link,
) -> Result<bool, BackendError> {
    let kvs = reader.list(client, roots).await?;
    if link.down {
        tracing::info!(
            endpoint = reader.target.shown(),
            "zookeeper is reachable again"
        );
        link.down = false;
        if tx.send(Update::Up).await.is_err() {
            return Ok(false);
        }
    }
    let snap = Snapshot {
        kvs,
        revision: None,
    };
    Ok(tx.send(Update::Resync(snap)).await.is_ok())
}

/// The nodes to re-read for one event: the node, and for a create or delete its parent
/// (unless the node is a watched root, whose parent is not watched).
fn add(paths: &mut BTreeSet<String>, (path, structural): Event, roots: &[String]) {
    if !roots.iter().any(|r| inside(&path, r)) {
        return;
    }
    if structural
        && !roots.contains(&path)
        && let Some(p) = parent(&path)
    {
        paths.insert(p.to_string());
    }
    paths.insert(path);
}

/// Sends the watcher's node events on until the session ends (the watcher must not be
/// asked again after a terminal session event) or nobody listens.
async fn forward(mut watcher: zk::PersistentWatcher, tx: mpsc::UnboundedSender<Event>) {
    loop {
        let ev = watcher.changed().await;
        let structural = match ev.event_type {
            zk::EventType::Session => {
                if ev.session_state.is_terminated() {
                    return;
                }
                continue;
            }
            zk::EventType::NodeCreated | zk::EventType::NodeDeleted => true,
            zk::EventType::NodeDataChanged | zk::EventType::NodeChildrenChanged => false,
        };
        if tx.send((ev.path, structural)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_the_node_and_for_creates_its_parent() {
        let roots = vec!["/app".to_string()];
        let mut p = BTreeSet::new();
        add(&mut p, ("/app/s/a".into(), true), &roots);
        add(&mut p, ("/app/s/b".into(), false), &roots);
        add(&mut p, ("/app".into(), true), &roots);
        add(&mut p, ("/other".into(), true), &roots);
        let got: Vec<_> = p.into_iter().collect();
        assert_eq!(got, vec!["/app", "/app/s", "/app/s/a", "/app/s/b"]);
    }
}
