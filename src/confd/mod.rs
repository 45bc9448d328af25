//! confd's command line and confd.toml, so that confsync can replace the `confd` binary
//! with nothing else changed.
//!
//! The binary takes confd's command line when it is invoked as `confd` (a symlink or a
//! copy of that name), or when its first argument is a single-dash long flag such as
//! `-onetime` or `-backend=etcd` ([`detect`]); [`args`] parses it.

pub mod args;
pub mod spec;

use std::ffi::OsString;
use std::path::Path;

pub use args::{Parsed, UsageError, parse, usage};

/// The confd release whose command line and confd.toml confsync follows.
pub const CONFD_VERSION: &str = "0.16.0";

/// The line `-version` prints.
pub fn version() -> String {
    format!(
        "confsync {} (confd {CONFD_VERSION} command line)",
        env!("CARGO_PKG_VERSION")
    )
}

/// Whether `argv` (with the program name first) is a confd command line: the program's
/// file name is `confd`, or the first argument is a single-dash long flag (`-onetime`,
/// `-backend=etcd`; not `-h`).
pub fn detect(argv: &[OsString]) -> bool {
    let named_confd = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "confd");
    let single_dash_long = argv
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| a.len() > 2 && a.starts_with('-') && !a.starts_with("--"));
    named_confd || single_dash_long
}

#[cfg(test)]
mod tests;
