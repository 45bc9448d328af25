//! What the status registry keeps of each resource and backend: one record each, every
//! text in it capped, so the registry's memory is bounded by the configuration.

use std::time::SystemTime;

use super::clock::unix;
use super::model::{BackendReport, DiffReport, Failure, ReloadReport, ResourceReport, When};
use crate::http::ResourceState;
use crate::resource::{CommandError, SyncError};

/// Most bytes kept of an error message or of a command's output.
pub const MAX_TEXT: usize = 16 * 1024;

/// What is withheld from a secret resource's error, in place of its text.
const WITHHELD: &str = "withheld: the file is not world-readable (see the daemon's log)";

/// One resource's record.
#[derive(Debug, Clone)]
pub(super) struct ResourceRecord {
    pub dest: String,
    pub backend: String,
    pub template: String,
    /// Its file is not world-readable, or its mode is not known yet.
    pub secret: bool,
    /// `None` until its first sync.
    pub state: Option<ResourceState>,
    pub pending: bool,
    pub keys_seen: Option<usize>,
    pub keys_left_out: usize,
    pub guard_refusal: Option<String>,
    pub last_render: Option<SystemTime>,
    pub last_change: Option<SystemTime>,
    /// When, `runtime` or `reload`, and whether it worked.
    pub last_reload: Option<(SystemTime, &'static str, bool)>,
    pub last_error: Option<FailureRecord>,
    /// The last change's diff and whether it was cut; `None` for a secret resource (and
    /// while it is being worked out).
    pub diff: Option<(String, bool)>,
    /// Changes recorded so far: a diff worked out in the background is kept only if no
    /// later change has come meanwhile.
    pub changes: u64,
}

/// An error as recorded.
#[derive(Debug, Clone)]
pub(super) struct FailureRecord {
    pub at: SystemTime,
    pub stage: &'static str,
    pub message: String,
    pub output: Option<String>,
}

/// One backend's record.
#[derive(Debug, Clone, Default)]
pub(super) struct BackendRecord {
    pub kind: String,
    pub up: bool,
    pub serving_saved: bool,
    pub keys: Option<usize>,
    pub last_sync: Option<SystemTime>,
    pub last_listing: Option<SystemTime>,
    pub last_error: Option<FailureRecord>,
}

impl ResourceRecord {
    /// A resource not synced yet; `secret` until a sync sees its mode, unless its
    /// configured mode says.
    pub fn new(dest: String, backend: String, template: String, mode: Option<u32>) -> Self {
        ResourceRecord {
            dest,
            backend,
            template,
            secret: mode.is_none_or(|m| m & 0o004 == 0),
            state: None,
            pending: false,
            keys_seen: None,
            keys_left_out: 0,
            guard_refusal: None,
            last_render: None,
            last_change: None,
            last_reload: None,
            last_error: None,
            diff: None,
            changes: 0,
        }
    }

    /// Marks the resource secret or not; turning secret drops the texts recorded
    /// while it was not (its diff, its last error's message and output).
    pub fn set_secret(&mut self, secret: bool) {
        if secret && !self.secret {
            self.diff = None;
            if let Some(f) = &mut self.last_error {
                f.message = format!("{} failed; {WITHHELD}", f.stage);
                f.output = None;
            }
        }
        self.secret = secret;
    }

    /// `e` as recorded now, its texts withheld for a secret resource.
    pub fn failure(&self, e: &SyncError) -> FailureRecord {
        let (message, output) = describe(e);
        let (message, output) = if self.secret {
            (format!("{} failed; {WITHHELD}", e.stage()), None)
        } else {
            (cap(message), output.map(cap))
        };
        FailureRecord {
            at: SystemTime::now(),
            stage: e.stage(),
            message,
            output,
        }
    }

    pub fn report(&self, name: &str, now: SystemTime) -> ResourceReport {
        let (state, detail) = match &self.state {
            None => ("not_synced", None),
            Some(ResourceState::InStep) => ("in_step", None),
            Some(ResourceState::Retrying(w)) => ("retrying", Some(w.clone())),
            Some(ResourceState::Refused(w)) => ("refused", Some(w.clone())),
        };
        let withheld = self.secret && self.last_change.is_some();
        ResourceReport {
            name: name.to_owned(),
            dest: self.dest.clone(),
            backend: self.backend.clone(),
            template: self.template.clone(),
            secret: self.secret,
            state: state.to_owned(),
            state_detail: detail,
            reload_pending: self.pending,
            keys_seen: self.keys_seen,
            keys_left_out: self.keys_left_out,
            guard_refusal: self.guard_refusal.clone(),
            last_render: self.last_render.map(|t| when(t, now)),
            last_change: self.last_change.map(|t| when(t, now)),
            last_reload: self.last_reload.map(|(t, path, ok)| ReloadReport {
                at: when(t, now),
                path: path.to_owned(),
                ok,
            }),
            last_error: self.last_error.as_ref().map(|f| f.report(now)),
            diff: match (&self.diff, self.secret) {
                (Some((text, truncated)), false) => Some(DiffReport {
                    text: text.clone(),
                    truncated: *truncated,
                }),
                _ => None,
            },
            diff_withheld: withheld.then(|| {
                "the file is not world-readable, so its contents are not shown".to_owned()
            }),
        }
    }
}

impl FailureRecord {
    /// A backend's error.
    pub fn backend(why: &str) -> Self {
        FailureRecord {
            at: SystemTime::now(),
            stage: "backend",
            message: cap(why.to_owned()),
            output: None,
        }
    }

    fn report(&self, now: SystemTime) -> Failure {
        Failure {
            at: when(self.at, now),
            stage: self.stage.to_owned(),
            message: self.message.clone(),
            output: self.output.clone(),
        }
    }
}

impl BackendRecord {
    pub fn report(&self, name: &str, now: SystemTime) -> BackendReport {
        BackendReport {
            name: name.to_owned(),
            kind: self.kind.clone(),
            up: self.up,
            serving_saved_state: self.serving_saved,
            keys: self.keys,
            last_sync: self.last_sync.map(|t| when(t, now)),
            last_listing: self.last_listing.map(|t| when(t, now)),
            last_error: self.last_error.as_ref().map(|f| f.report(now)),
        }
    }
}

/// `t` and its age at `now`.
fn when(t: SystemTime, now: SystemTime) -> When {
    When {
        unix: unix(t),
        age_seconds: now.duration_since(t).map_or(0.0, |d| d.as_secs_f64()),
    }
}

/// An error's message without a command's output, and that output.
fn describe(e: &SyncError) -> (String, Option<String>) {
    match e {
        SyncError::Check {
            dest, kept, source, ..
        } => {
            let (cmd, output) = command(source);
            let msg =
                format!("check rejected the new {dest}, which was left unchanged{kept}: {cmd}");
            (msg, output)
        }
        SyncError::Reload { dest, source, .. } => {
            let (cmd, output) = command(source);
            (
                format!("{dest} was updated but the reload failed: {cmd}"),
                output,
            )
        }
        other => (other.to_string(), None),
    }
}

/// What a command did, and its output when it printed something.
fn command(e: &CommandError) -> (String, Option<String>) {
    let output = |o: &str| Some(o.trim().to_owned()).filter(|o| !o.is_empty());
    match e {
        CommandError::Spawn { .. } => (e.to_string(), None),
        CommandError::Failed {
            cmd,
            status,
            output: o,
        } => (format!("`{cmd}` failed ({status})"), output(o)),
        CommandError::TimedOut {
            cmd,
            timeout,
            output: o,
        } => (
            format!("`{cmd}` timed out after {timeout:?} and was killed"),
            output(o),
        ),
    }
}

/// `s` cut to [`MAX_TEXT`] bytes on a char boundary, marked when cut.
pub fn cap(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" [...]");
    }
    s
}
