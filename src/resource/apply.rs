//! How a daemon runs reloads: [`Reloads`], given to a sync through its `Pass`, takes over
//! the reload step (to run one command for a round of resources that share it, signal an
//! exec child, or wait a splay first). Without one, a sync runs its own `reload_cmd`.

use futures_util::future::BoxFuture;

use super::command::CommandError;
use crate::config::Resource;

/// The reload step of a daemon's resource.
pub trait Reloads: Send + Sync {
    /// Whether replacing `res`'s file owes a reload even when it has no `reload_cmd`
    /// (an exec child is signalled).
    fn signals(&self, res: &Resource) -> bool;
    /// Runs `res`'s reload; done when the reload that covers its file is.
    fn reload<'a>(&'a self, res: &'a Resource) -> BoxFuture<'a, Result<(), CommandError>>;
}

/// Whether replacing `res`'s file owes a reload.
pub fn owes_reload(res: &Resource, reloads: Option<&dyn Reloads>) -> bool {
    res.reload_cmd.is_some() || reloads.is_some_and(|r| r.signals(res))
}
