//! What `/ready` makes of each backend: reachable or not, and how old its keys are.
//!
//! A backend's keys are "current" at its last successful listing, and continuously
//! while its watch is connected (the daemon confirms that every few seconds); a
//! snapshot saved by an earlier run is as old as when that run last knew it current.
//! A backend blocks readiness when it has never been current (down since start, no
//! saved state), or when its keys are older than its `max_staleness`. Otherwise an
//! outage, or serving saved state, is only noted in the answer: the daemon goes on
//! serving the last good configuration, which is what an outage of the store should
//! cost a proxy, until the data is too old to trust.

use std::time::{Duration, Instant};

/// One backend as `/ready` sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct Freshness {
    /// The last listing or watch attempt worked.
    pub up: bool,
    /// When the keys were last known current, and how old they already were then
    /// (non-zero for a saved snapshot: its age when it was loaded).
    pub current: Option<(Instant, Duration)>,
    /// Keys older than this block readiness; `None`: no limit.
    pub max_staleness: Option<Duration>,
    /// The keys come from a snapshot saved by an earlier run.
    pub serving_saved: bool,
}

/// What one backend contributes to the answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Fine,
    /// Down, and never current: nothing to serve.
    NeverSynced,
    /// Blocks readiness, with the reason.
    Stale(String),
    /// Ready, but worth saying.
    Note(String),
}

impl Freshness {
    /// How old the keys are at `now`.
    pub fn age(&self, now: Instant) -> Option<Duration> {
        self.current
            .map(|(at, then)| now.saturating_duration_since(at) + then)
    }

    pub fn verdict(&self, now: Instant) -> Verdict {
        let Some(age) = self.age(now) else {
            return if self.up {
                Verdict::Fine
            } else {
                Verdict::NeverSynced
            };
        };
        let what = match (self.serving_saved, self.up) {
            (true, _) => "serving saved state",
            (false, false) => "down",
            (false, true) => "up",
        };
        let limit = match self.max_staleness {
            Some(max) => format!("max_staleness {}", secs(max)),
            None => "no max_staleness".to_owned(),
        };
        let detail = format!("{what}, last current {} ago, {limit}", secs(age));
        if self.max_staleness.is_some_and(|max| age > max) {
            Verdict::Stale(detail)
        } else if self.serving_saved || !self.up {
            Verdict::Note(detail)
        } else {
            Verdict::Fine
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn verdicts() {
        let now = Instant::now();
        let ago = |n: u64| now.checked_sub(S * n as u32).unwrap_or(now);
        let mut f = Freshness::default();
        assert_eq!(f.verdict(now), Verdict::NeverSynced);
        f.up = true;
        assert_eq!(f.verdict(now), Verdict::Fine);
        f.current = Some((ago(5), Duration::ZERO));
        f.max_staleness = Some(S * 30);
        assert_eq!(f.verdict(now), Verdict::Fine);
        f.up = false;
        assert_eq!(
            f.verdict(now),
            Verdict::Note("down, last current 5s ago, max_staleness 30s".into())
        );
        assert!(matches!(f.verdict(now + S * 26), Verdict::Stale(s) if s.contains("31s ago")));
        f.max_staleness = None;
        assert!(matches!(f.verdict(now + S * 3600), Verdict::Note(_)));
        // A saved snapshot carries its age in.
        f.serving_saved = true;
        f.max_staleness = Some(S * 30);
        f.current = Some((now, S * 20));
        assert!(
            matches!(f.verdict(now), Verdict::Note(s) if s.starts_with("serving saved state, last current 20s"))
        );
        assert!(matches!(f.verdict(now + S * 11), Verdict::Stale(_)));
    }
}
