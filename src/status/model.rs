//! What `GET /status.json` answers and `confsync status` reads: one [`Report`] of every
//! backend and resource, as serde types. Times are Unix seconds with their age at the
//! time the report was made, so a reader needs no clock of its own.

use serde::{Deserialize, Serialize};

/// The whole status of a running daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// confsync's version.
    pub version: String,
    /// When this report was made (Unix seconds).
    pub generated_unix: f64,
    /// Backends by name.
    pub backends: Vec<BackendReport>,
    /// Resources by name.
    pub resources: Vec<ResourceReport>,
}

/// A moment, and how long before the report it was.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct When {
    /// Unix seconds.
    pub unix: f64,
    /// Seconds between it and the report (0 for a clock that went back).
    pub age_seconds: f64,
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendReport {
    /// `default` or its `[backends.NAME]`.
    pub name: String,
    /// `etcd`, `redis`, `file`, `env`, `docker`.
    pub kind: String,
    /// Whether its last listing or watch succeeded.
    pub up: bool,
    /// Serving the snapshot an earlier run saved, not yet confirmed by the backend.
    pub serving_saved_state: bool,
    /// Keys in its last good snapshot.
    pub keys: Option<usize>,
    /// When its keys were last known current: its last successful listing, or the last
    /// check that its watch is connected (for saved state: when that was current).
    pub last_sync: Option<When>,
    /// Its last successful full listing (at start, after a watch reconnects, at each
    /// poll or periodic resync); a watch keeps the keys current between listings.
    pub last_listing: Option<When>,
    /// Its latest error (kept after it recovers; `up` tells whether it did).
    pub last_error: Option<Failure>,
}

/// Something that went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub at: When,
    /// The step that failed: `render`, `min_keys`, `io`, `check`, `reload`, `backend`.
    pub stage: String,
    /// What happened (without a command's output, which is in `output`).
    pub message: String,
    /// A check or reload command's output (its stderr, or stdout when stderr is empty).
    pub output: Option<String>,
}

/// One resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceReport {
    /// Its conf.d file's stem.
    pub name: String,
    pub dest: String,
    pub backend: String,
    /// Its template (`src`).
    pub template: String,
    /// Its file is not world-readable (or its mode is not known yet): diff, error text
    /// and command output are withheld.
    pub secret: bool,
    /// `in_step`, `retrying`, `refused` or `not_synced` (no sync yet).
    pub state: String,
    /// Why it is retrying or refused.
    pub state_detail: Option<String>,
    /// The file in place still owes its reload.
    pub reload_pending: bool,
    /// Keys its last render saw (after `value_pattern` and `key_pattern`).
    pub keys_seen: Option<usize>,
    /// Keys `value_pattern` and `key_pattern` left out of its last render.
    pub keys_left_out: usize,
    /// Set while a guard (`min_keys`) refuses the render.
    pub guard_refusal: Option<String>,
    pub last_render: Option<When>,
    /// When its destination was last replaced (`diff` is that change).
    pub last_change: Option<When>,
    pub last_reload: Option<ReloadReport>,
    pub last_error: Option<Failure>,
    /// The unified diff of its last change, capped.
    pub diff: Option<DiffReport>,
    /// Why there is no diff although it changed (a secret resource, or the report's
    /// budget for diffs spent).
    pub diff_withheld: Option<String>,
}

/// A resource's last reload step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub at: When,
    /// `runtime` (HAProxy's Runtime API, no reload) or `reload` (its reload step).
    pub path: String,
    pub ok: bool,
}

/// A unified diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    pub text: String,
    /// Cut at the size cap.
    pub truncated: bool,
}
