//! Signals passed on to the exec child as they are: SIGHUP (which also reloads confsync's
//! own configuration, through its own handler), SIGUSR1 and SIGUSR2. SIGTERM and SIGINT
//! are not passed on: they stop confsync, which then stops the child with the kill
//! signal (see [`super::child`]).

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::ChildHandle;

/// The signals passed on.
pub const FORWARDED: [Signal; 3] = [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2];

/// Passes [`FORWARDED`] signals to the child until `stop` is cancelled.
pub fn spawn(handle: Arc<ChildHandle>, stop: CancellationToken) {
    for sig in FORWARDED {
        let mut stream = match signal(SignalKind::from_raw(sig as i32)) {
            Ok(s) => s,
            Err(e) => {
                warn!("cannot listen for {sig}, so it is not passed on to the exec child: {e}");
                continue;
            }
        };
        let (handle, stop) = (handle.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = stream.recv() => if r.is_none() { return },
                }
                match handle.signal(sig) {
                    Ok(true) => debug!("{sig} passed on to the exec child"),
                    Ok(false) => debug!("{sig}: no exec child running to pass it on to"),
                    Err(e) => warn!("{e}"),
                }
            }
        });
    }
}
