//! One reload per round: resources that share a reload (the same `reload_cmd`, or the
//! exec child's signal) and change together get it once, after all their files are in
//! place and checked.
//!
//! A [`Batch`] is shared by the workers of the resources it covers. A worker is *busy*
//! from the start of a sync to its end; a sync that replaced its file *joins* the open
//! round (the first opens one). The round's reload runs as soon as every member joined,
//! or every busy member has joined and [`GRACE`] has passed since it opened (for
//! workers woken by the same change a moment later), and never later than [`HOLD`]
//! after it opened (a slow check does not hold the others up for long). Every member
//! of the round gets the one result: a failure leaves each one's reload owed in the
//! ledger, to be retried as usual. Two rounds of a batch never run at once: a round
//! that closes while the previous one's reload runs waits for it to end (and members
//! waiting for a result do not count as syncing). A resource alone in its batch runs its reload at
//! once, without a round.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tracing::debug;

use crate::resource::CommandError;

/// How long a round stays open for members that have not started syncing yet.
pub const GRACE: Duration = Duration::from_millis(50);
/// Longest a round waits for busy members.
pub const HOLD: Duration = Duration::from_secs(2);

type Outcome = Option<Result<(), CommandError>>;

/// The reload shared by some resources, and its open round.
#[derive(Debug)]
pub struct Batch {
    /// What it runs, for logs.
    what: String,
    /// Resources that share it.
    members: usize,
    state: Mutex<State>,
    changed: Notify,
    /// Held while a round's reload runs: two rounds never run it at once.
    running: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Members syncing now.
    busy: usize,
    /// Of those, members waiting for a closed round's reload (not syncing any more).
    waiting: usize,
    /// The round that has not run yet.
    open: Option<Round>,
}

#[derive(Debug)]
struct Round {
    joined: usize,
    done: watch::Sender<Outcome>,
}

/// A member's sync in progress; dropping it ends it.
#[derive(Debug)]
pub struct Busy(Arc<Batch>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.busy = st.busy.saturating_sub(1);
        drop(st);
        self.0.changed.notify_waiters();
    }
}

impl Batch {
    /// A batch for `members` resources running `what`.
    pub fn new(what: impl Into<String>, members: usize) -> Arc<Batch> {
        Arc::new(Batch {
            what: what.into(),
            members,
            state: Mutex::default(),
            changed: Notify::new(),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether it covers more than one resource (else a reload runs at once).
    pub fn shared(&self) -> bool {
        self.members > 1
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A member starts a sync.
    pub fn enter(self: &Arc<Self>) -> Busy {
        self.lock().busy += 1;
        Busy(self.clone())
    }

    /// Joins the open round (or opens one, whose reload is `action`) and waits for its
    /// result. The round runs on a task of its own, so a member's sync dropped at
    /// shutdown does not abandon the others.
    pub async fn join<F>(self: &Arc<Self>, action: F) -> Result<(), CommandError>
    where
        F: Future<Output = Result<(), CommandError>> + Send + 'static,
    {
        let (mut rx, lead) = {
            let mut st = self.lock();
            match &mut st.open {
                Some(round) => {
                    round.joined += 1;
                    (round.done.subscribe(), false)
                }
                None => {
                    let (done, rx) = watch::channel(None);
                    st.open = Some(Round { joined: 1, done });
                    (rx, true)
                }
            }
        };
        self.changed.notify_waiters();
        if lead {
            tokio::spawn(self.clone().lead(action));
        }
        match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Ok(())),
            Err(_) => Err(CommandError::Spawn {
                cmd: self.what.clone(),
                message: "the round's reload was abandoned (confsync is stopping)".into(),
            }),
        }
    }

    /// Waits until the round is complete (see the module docs), closes it and runs it.
    async fn lead<F>(self: Arc<Self>, action: F)
    where
        F: Future<Output = Result<(), CommandError>>,
    {
        let opened = Instant::now();
        let (grace_end, deadline) = (opened + GRACE, opened + HOLD);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (all, settled) = {
                let st = self.lock();
                let joined = st.open.as_ref().map_or(0, |r| r.joined);
                (
                    joined >= self.members,
                    joined >= st.busy.saturating_sub(st.waiting),
                )
            };
            let now = Instant::now();
            if all || (settled && now >= grace_end) || now >= deadline {
                break;
            }
            let wake = if settled { grace_end } else { deadline };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        let Some(round) = ({
            let mut st = self.lock();
            let round = st.open.take();
            st.waiting += round.as_ref().map_or(0, |r| r.joined);
            round
        }) else {
            return;
        };
        debug!(reload = %self.what, resources = round.joined, waited_ms = opened.elapsed().as_millis() as u64, "one reload for the round");
        let result = {
            let _one_at_a_time = self.running.lock().await;
            action.await
        };
        {
            let mut st = self.lock();
            st.waiting = st.waiting.saturating_sub(round.joined);
        }
        let _ = round.done.send(Some(result));
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(runs: &Arc<AtomicUsize>) -> impl Future<Output = Result<(), CommandError>> + use<> {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn members_that_change_together_share_one_run() {
        let batch = Batch::new("reload", 3);
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..3u64 {
            let (b, r) = (batch.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                let _busy = b.enter();
                // Renders and checks of different lengths.
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                b.join(counting(&r)).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_member_whose_file_did_not_change_does_not_hold_the_round() {
        let batch = Batch::new("reload", 2);
        let runs = Arc::new(AtomicUsize::new(0));
        let idle = batch.enter();
        let b = batch.clone();
        let r = runs.clone();
        let joined = tokio::spawn(async move {
            let _busy = b.enter();
            b.join(counting(&r)).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0, "waits for the busy member");
        let started = Instant::now();
        drop(idle);
        joined.await.unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_reaches_every_member_and_a_later_change_gets_its_own_round() {
        let batch = Batch::new("reload", 2);
        let fail = || async {
            Err(CommandError::Spawn {
                cmd: "reload".into(),
                message: "no".into(),
            })
        };
        let (a, b) = (batch.enter(), batch.enter());
        let (r1, r2) = tokio::join!(batch.join(fail()), batch.join(fail()));
        assert!(r1.is_err() && r2.is_err());
        drop((a, b));
        let runs = Arc::new(AtomicUsize::new(0));
        let _busy = batch.enter();
        batch.join(counting(&runs)).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_round_opened_while_one_runs_neither_overlaps_it_nor_waits_for_its_members() {
        let batch = Batch::new("reload", 2);
        let running = Arc::new(AtomicUsize::new(0));
        let overlapped = Arc::new(AtomicUsize::new(0));
        let slow = {
            let (running, overlapped) = (running.clone(), overlapped.clone());
            move || {
                let (running, overlapped) = (running.clone(), overlapped.clone());
                async move {
                    if running.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlapped.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                }
            }
        };
        // Member A's round runs its slow reload; meanwhile member B swaps a file in.
        let (b1, s1) = (batch.clone(), slow.clone());
        let first = tokio::spawn(async move {
            let _busy = b1.enter();
            b1.join(s1()).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let (b2, s2) = (batch.clone(), slow.clone());
        let second = tokio::spawn(async move {
            let _busy = b2.enter();
            b2.join(s2()).await
        });
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(overlapped.load(Ordering::SeqCst), 0, "one reload at a time");
        // Not HOLD: A waiting for its result does not count as syncing.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
}
