//! When a resource syncs its pending changes: at once when it can, never more often than
//! its reloads may run, and bursts coalesced.
//!
//! - A change to a resource that is not rate-limited is synced at once (the leading
//!   edge): an isolated change and a steady stream cost no delay.
//! - A resource that runs a check or reload command syncs at most once per `wait.min`,
//!   measured from the end of its last sync, because HAProxy and nginx reloads cost far
//!   more than that; a resource with neither only writes a file, so it is not limited.
//! - A burst (a second change arrives before the pending one is synced) waits until the
//!   changes have been quiet for `wait.min`, and never longer than `wait.max` after the
//!   first of them: 100 registrations arriving together cost a sync for the first and
//!   one or two for the rest.

use std::time::{Duration, Instant};

use crate::config::Wait;

/// A resource's pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The quiet period of bursts and their longest delay.
    pub wait: Wait,
    /// Least time from the end of one sync to the start of the next: `wait.min` for a
    /// resource that runs commands, else zero.
    pub spacing: Duration,
}

/// What is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The first change not synced yet.
    pub first: Instant,
    /// The latest change.
    pub latest: Instant,
    /// More than one change arrived since the last sync began.
    pub burst: bool,
}

impl Pace {
    /// The pacing of a resource with `wait` that runs commands (`commands`) or not.
    pub fn new(wait: Wait, commands: bool) -> Pace {
        Pace {
            wait,
            spacing: if commands { wait.min } else { Duration::ZERO },
        }
    }

    /// When `pending` should be synced, given when the last sync ended; `None`: now.
    pub fn due(
        &self,
        last_end: Option<Instant>,
        pending: Pending,
        now: Instant,
    ) -> Option<Instant> {
        let earliest = last_end.map_or(now, |t| t + self.spacing);
        let at = if pending.burst {
            let quiet = (pending.latest + self.wait.min).min(pending.first + self.wait.max);
            earliest.max(quiet)
        } else {
            earliest
        };
        (at > now).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn wait() -> Wait {
        Wait {
            min: 100 * MS,
            max: Duration::from_secs(1),
        }
    }

    fn one(t: Instant) -> Pending {
        Pending {
            first: t,
            latest: t,
            burst: false,
        }
    }

    #[test]
    fn an_isolated_change_or_a_stream_is_synced_at_once_without_commands() {
        let p = Pace::new(wait(), false);
        let t0 = Instant::now();
        assert_eq!(p.due(None, one(t0), t0), None, "the first change");
        let end = t0 + 5 * MS;
        let next = end + 50 * MS;
        assert_eq!(
            p.due(Some(end), one(next), next),
            None,
            "50 ms after the last sync"
        );
    }

    #[test]
    fn with_commands_syncs_are_spaced_by_wait_min_from_the_last_sync() {
        let p = Pace::new(wait(), true);
        let t0 = Instant::now();
        assert_eq!(p.due(None, one(t0), t0), None, "leading edge");
        let end = t0 + 5 * MS;
        let next = end + 50 * MS;
        assert_eq!(
            p.due(Some(end), one(next), next),
            Some(end + 100 * MS),
            "waits only the rest of wait.min"
        );
        let late = end + 300 * MS;
        assert_eq!(
            p.due(Some(end), one(late), late),
            None,
            "after a quiet spell"
        );
    }

    #[test]
    fn a_burst_waits_for_quiet_but_never_past_max() {
        let p = Pace::new(wait(), false);
        let t0 = Instant::now();
        let burst = |latest| Pending {
            first: t0,
            latest,
            burst: true,
        };
        let l = t0 + 30 * MS;
        assert_eq!(p.due(Some(t0), burst(l), l), Some(l + 100 * MS));
        let l = t0 + 950 * MS;
        assert_eq!(
            p.due(Some(t0), burst(l), l),
            Some(t0 + Duration::from_secs(1)),
            "capped by max"
        );
        let now = t0 + Duration::from_secs(2);
        assert_eq!(p.due(Some(t0), burst(l), now), None, "overdue: now");
        // Spacing still holds for a burst.
        let p = Pace::new(wait(), true);
        let end = t0 + 900 * MS;
        let l = t0 + 960 * MS;
        assert_eq!(
            p.due(Some(end), burst(l), l),
            Some(t0 + Duration::from_secs(1))
        );
    }
}
