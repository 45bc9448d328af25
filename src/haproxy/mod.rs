//! HAProxy without reloads: when a render differs from the live config only in `server`
//! lines of `backend`/`listen` sections, the change is made through the Runtime API on
//! the resource's `haproxy_socket` (a stats socket at `level admin`), checked with
//! `show servers state`, and the file is swapped in without a reload. Anything else, or
//! any failure on the way, is a [`Fallback`]: the caller swaps and reloads as usual,
//! which also puts right a change left half-applied.
//!
//! `config` reads the structure and diffs it, `server_line` parses one `server` line,
//! `socket` talks to HAProxy, `apply` turns the diff into commands and checks the result.

pub mod apply;
pub mod config;
pub mod server_line;
pub mod socket;

use std::path::Path;
use std::time::{Duration, Instant};

/// How long one Runtime API command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a change went through a reload instead of the Runtime API (a bounded set: these
/// are metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Something other than servers changed, or there was no file in place to compare.
    OtherChange,
    /// A `server` line the runtime path does not take (a host name, a port range,
    /// unsafe characters) or a keyword HAProxy refused for a dynamic server.
    RefusedLine,
    /// A server would be added to a `balance static-rr` backend.
    StaticRr,
    /// A server would be added where `default-server` applies (dynamic servers do not
    /// inherit it).
    DefaultServer,
    /// The file in place still owes a reload: the runtime does not match it.
    ReloadOwed,
    /// The config is not UTF-8 text.
    NotText,
    /// The socket could not be reached or did not answer in time.
    Socket,
    /// HAProxy refused a command.
    Command,
    /// `show servers state` did not match the new file afterwards.
    Verify,
}

impl Reason {
    /// Every reason, to create the metric series up front.
    pub const ALL: [Reason; 9] = [
        Reason::OtherChange,
        Reason::RefusedLine,
        Reason::StaticRr,
        Reason::DefaultServer,
        Reason::ReloadOwed,
        Reason::NotText,
        Reason::Socket,
        Reason::Command,
        Reason::Verify,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OtherChange => "other_change",
            Reason::RefusedLine => "refused_line",
            Reason::StaticRr => "static_rr",
            Reason::DefaultServer => "default_server",
            Reason::ReloadOwed => "reload_owed",
            Reason::NotText => "not_text",
            Reason::Socket => "socket",
            Reason::Command => "command",
            Reason::Verify => "verify",
        }
    }
}

/// Why the Runtime API was not (or not fully) used; the caller reloads instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Fallback {
    /// For the metric.
    pub reason: Reason,
    /// For the log: which section, line, server or command.
    pub detail: String,
}

impl Fallback {
    /// A fallback for `reason`, explained by `detail`.
    pub fn new(reason: Reason, detail: String) -> Fallback {
        Fallback { reason, detail }
    }
}

/// A change made through the Runtime API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Commands sent (the checks included).
    pub commands: usize,
    /// From the first command to the end of the check.
    pub elapsed: Duration,
}

/// How a change reached HAProxy, when the resource has a socket.
pub type Attempt = Result<Applied, Fallback>;

/// Makes the live HAProxy behind `socket` match `new`, when `old` (the file in place)
/// differs from it only in servers; removed servers drain for up to `drain`. On
/// `Err` the runtime may be half-changed: the caller must reload from `new`.
pub async fn update(socket: &Path, drain: Duration, old: Option<&[u8]>, new: &[u8]) -> Attempt {
    let Some(old) = old else {
        return Err(Fallback::new(
            Reason::OtherChange,
            "no file in place to compare with".into(),
        ));
    };
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .map_err(|_| Fallback::new(Reason::NotText, "the config is not UTF-8".into()))
    };
    let changes = config::diff(&text(old)?, &text(new)?)?;
    let begun = Instant::now();
    let sock = socket::Socket::new(socket, COMMAND_TIMEOUT);
    let commands = apply::apply(&sock, &changes, drain).await?;
    Ok(Applied {
        commands,
        elapsed: begun.elapsed(),
    })
}
