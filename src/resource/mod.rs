//! One resource's sync: render, compare, stage, check, swap, reload. The destination is
//! never written in place: it is replaced by a rename only after the check passed.

pub mod apply;
pub mod child_env;
pub mod command;
pub mod dest_path;
mod leftovers;
pub mod observe;
mod owner;
mod quote;
mod render;
pub mod stage;
mod swap;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::KvMap;
use crate::config::Resource;

use crate::template::{Engine, EntryCache, TemplateError};

pub use child_env::CommandEnv;
pub use command::CommandError;
use render::render_bounded;
pub use render::{Excluded, Rendered, render};

/// Run-wide switches that change what a sync does.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Print a diff of what would change; write nothing, run nothing.
    pub noop: bool,
    /// Write the destination but run neither check nor reload.
    pub sync_only: bool,
    /// Leave a staged file that failed its check on disk, for inspection.
    pub keep_stage_file: bool,
}

/// What a successful sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The destination already matched: nothing written, checked or reloaded.
    Unchanged,
    /// The destination was replaced (and checked and reloaded where configured).
    Updated(Timings),
    /// `--noop`: the unified diff of what would change.
    WouldChange(String),
    /// The destination already matched, and the reload it was owed ran (taking this long).
    Reloaded(Duration),
}

/// How long each step of an update took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Rendering the template.
    pub render: Duration,
    /// Running the check command.
    pub check: Duration,
    /// Running the reload command.
    pub reload: Duration,
}

/// Why a sync failed; the text names the resource and the file or command at fault.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The template failed; the destination was not touched.
    #[error("resource {resource}: {dest} left unchanged: {source}")]
    Render {
        resource: String,
        dest: String,
        #[source]
        source: TemplateError,
    },
    /// Reading the destination or writing the stage file failed.
    #[error("resource {resource}: {what} {path}: {source}")]
    Io {
        resource: String,
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The check command rejected the staged file; the destination was not touched.
    #[error(
        "resource {resource}: check rejected the new {dest}, which was left unchanged{kept}: {source}"
    )]
    Check {
        resource: String,
        dest: String,
        /// Where the rejected file was kept, if it was.
        kept: String,
        #[source]
        source: Box<CommandError>,
    },
    /// A guard refused the render (too few keys); the destination was not touched.
    #[error(
        "resource {resource}: {dest} left unchanged: only {found} key(s) under its prefixes, fewer than min_keys = {min_keys}"
    )]
    Guard {
        resource: String,
        dest: String,
        found: usize,
        min_keys: usize,
    },
    /// The destination was replaced but the reload command failed.
    #[error("resource {resource}: {dest} was updated but the reload failed: {source}")]
    Reload {
        resource: String,
        dest: String,
        #[source]
        source: Box<CommandError>,
    },
}

impl SyncError {
    /// Whether trying again without any change may work: a reload, a disk or file
    /// error, a command that could not start, timed out or was killed. A render, a
    /// guard or a check that said no give the same answer until the data changes.
    pub fn may_pass(&self) -> bool {
        match self {
            Self::Io { .. } | Self::Reload { .. } => true,
            Self::Check { source, .. } => source.is_local(),
            Self::Render { .. } | Self::Guard { .. } => false,
        }
    }

    /// True for a render abandoned at its `render_timeout`.
    pub fn is_render_timeout(&self) -> bool {
        matches!(
            self,
            Self::Render {
                source: crate::template::TemplateError::TimedOut { .. },
                ..
            }
        )
    }

    /// Short label for metrics and logs: render, io, check or reload.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Render { .. } => "render",
            Self::Guard { .. } => "min_keys",
            Self::Io { .. } => "io",
            Self::Check { .. } => "check",
            Self::Reload { .. } => "reload",
        }
    }
}

/// What a sync did, and the keys its `value_pattern` and `key_pattern` left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// What happened to the destination.
    pub outcome: Outcome,
    /// Keys whose values failed `value_pattern` or whose names failed `key_pattern`.
    pub excluded: Vec<Excluded>,
    /// For an update of a resource with `haproxy_socket`: made through the Runtime API
    /// (no reload), or why it fell back to the reload.
    pub runtime: Option<crate::haproxy::Attempt>,
}

/// What a sync needs from the daemon beyond the resource and the data.
#[derive(Default, Clone, Copy)]
pub struct Pass<'a> {
    /// Entries of the last render, reused by this one.
    pub cache: Option<&'a Arc<EntryCache>>,
    /// Shared bounds on blocking work and commands; `None`: unbounded.
    pub limits: Option<&'a Limits>,
    /// Told when a swap makes a reload owed and when the reload is done; asked whether
    /// one is owed for the file already in place (then it runs even if the render
    /// changes nothing).
    pub ledger: Option<&'a dyn Ledger>,
    /// The engine, shared: renders then run on a thread of their own and are abandoned
    /// at the resource's `render_timeout`. `None` (one-time runs): they run in place.
    pub shared_engine: Option<&'a Arc<Engine>>,
    /// The environment of check and reload commands; `None`: [`CommandEnv::INHERIT`].
    pub env: Option<&'a CommandEnv>,
    /// Runs the reload step instead of the sync (a daemon's rounds and exec child).
    pub reloads: Option<&'a dyn apply::Reloads>,
    /// Told the keys a render saw and what a change replaced (the status page).
    pub observer: Option<&'a dyn observe::Observer>,
}

/// Where a reload that is owed is recorded, so it survives a failure, a SIGHUP and a
/// restart.
pub trait Ledger: Send + Sync {
    /// Whether a reload is owed for `res`'s destination (an earlier swap whose reload
    /// failed or was interrupted).
    fn is_owed(&self, res: &Resource) -> bool;
    /// `res`'s destination was replaced and its reload has not succeeded yet.
    fn owe(&self, res: &Resource);
    /// `res`'s reload succeeded (or it has none).
    fn paid(&self, res: &Resource);
}

/// Bounds shared by every resource: so many resources cannot open more files or run
/// more commands at once than the host allows.
#[derive(Debug)]
pub struct Limits {
    /// Renders, destination reads and stage writes at once.
    pub io: tokio::sync::Semaphore,
    /// Check and reload commands at once.
    pub commands: tokio::sync::Semaphore,
}

impl Limits {
    /// `commands` commands and two blocking sections per CPU at once.
    pub fn new(commands: usize) -> Limits {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Limits {
            io: tokio::sync::Semaphore::new((2 * cpus).max(2)),
            commands: tokio::sync::Semaphore::new(commands.max(1)),
        }
    }
}

async fn permit<'a>(
    limits: Option<&'a Limits>,
    pick: fn(&Limits) -> &tokio::sync::Semaphore,
) -> Option<tokio::sync::SemaphorePermit<'a>> {
    match limits {
        // The semaphores are never closed.
        Some(l) => pick(l).acquire().await.ok(),
        None => None,
    }
}

/// Brings `res.dest` in step with `kvs`, and pays a reload that is owed.
pub async fn sync(
    res: &Resource,
    engine: &Engine,
    kvs: Arc<KvMap>,
    opts: SyncOptions,
    pass: Pass<'_>,
) -> Result<Synced, SyncError> {
    let was_owed = pass.ledger.is_some_and(|l| l.is_owed(res));
    let updated = update(res, engine, kvs, opts, pass).await;
    let owed = match &updated {
        // Made through HAProxy's Runtime API: nothing to reload (and nothing was owed:
        // a debt sends the change through the reload).
        Ok((Outcome::Updated(_), _, Some(Ok(_)))) => false,
        // Without a reload command there is nothing to run, only an old debt to clear.
        Ok((Outcome::Updated(_), _, _)) => apply::owes_reload(res, pass.reloads) || was_owed,
        Ok((Outcome::Unchanged, _, _)) => was_owed,
        Ok((Outcome::WouldChange(_) | Outcome::Reloaded(_), _, _)) => false,
        // The file in place passed its check when it was swapped in: its reload is still
        // owed whatever became of this render.
        Err(_) => was_owed,
    };
    let reload = if owed && !opts.noop && !opts.sync_only {
        Some(reload(res, pass).await)
    } else {
        None
    };
    let (outcome, excluded, runtime) = updated?;
    let reloaded = reload.transpose()?;
    let outcome = match (outcome, reloaded) {
        (Outcome::Updated(t), Some(d)) => Outcome::Updated(Timings { reload: d, ..t }),
        (Outcome::Unchanged, Some(d)) => Outcome::Reloaded(d),
        (o, _) => o,
    };
    Ok(Synced {
        outcome,
        excluded,
        runtime,
    })
}

/// Runs `res`'s reload: the daemon's [`apply::Reloads`] when given, else its reload
/// command (if any) under the command limit; records it as paid.
async fn reload(res: &Resource, pass: Pass<'_>) -> Result<Duration, SyncError> {
    let begun = Instant::now();
    let ran = match (pass.reloads, &res.reload_cmd) {
        (Some(r), _) => r.reload(res).await,
        (None, Some(cmd)) => {
            let _slot = permit(pass.limits, |l| &l.commands).await;
            let cmd = command::substitute(cmd, &res.dest, &res.dest);
            let env = pass.env.unwrap_or(CommandEnv::inherit());
            command::run(&cmd, res.reload_timeout, env).await
        }
        (None, None) => Ok(()),
    };
    ran.map_err(|source| SyncError::Reload {
        resource: res.name.clone(),
        dest: res.dest.display().to_string(),
        source: Box::new(source),
    })?;
    if let Some(l) = pass.ledger {
        blocking(|| l.paid(res));
    }
    Ok(begun.elapsed())
}

/// What [`update`] did, the keys it left out, and how HAProxy's runtime was used.
type Updated = (Outcome, Vec<Excluded>, Option<crate::haproxy::Attempt>);

/// A rendered file this large leaves enough freed memory behind (its render, the copy
/// it replaced) to hand back to the system ([`crate::memory::freed`]).
const LARGE_FILE: usize = 1 << 20;

/// Render, compare, stage, check, apply through HAProxy's Runtime API where it can, and
/// swap; the reload is [`sync`]'s.
async fn update(
    res: &Resource,
    engine: &Engine,
    kvs: Arc<KvMap>,
    opts: SyncOptions,
    pass: Pass<'_>,
) -> Result<Updated, SyncError> {
    let io_slot = permit(pass.limits, |l| &l.io).await;
    let started = Instant::now();
    let Rendered {
        text: rendered,
        keys,
        excluded,
    } = match pass.shared_engine {
        Some(shared) => render_bounded(res, shared, kvs, pass.cache).await?,
        None => blocking(|| render(res, engine, kvs, pass.cache, None))?,
    };
    let mut t = Timings {
        render: started.elapsed(),
        ..Timings::default()
    };
    let io = |what, path: &std::path::Path, source| SyncError::Io {
        resource: res.name.clone(),
        what,
        path: path.display().to_string(),
        source,
    };
    let dest = &res.dest;
    let mut current = blocking(|| stage::compare(dest, &rendered, res.mode, res.uid, res.gid))
        .map_err(|e| io("cannot read destination", dest, e))?;
    if let Some(o) = pass.observer {
        o.rendered(keys, current.target.mode);
    }
    if current.up_to_date {
        return Ok((Outcome::Unchanged, excluded, None));
    }
    if opts.noop {
        let old = match current.old.take() {
            Some(o) => {
                blocking(|| o.into_bytes()).map_err(|e| io("cannot read destination", dest, e))?
            }
            None => Vec::new(),
        };
        let d = diff(
            &String::from_utf8_lossy(&old),
            &String::from_utf8_lossy(&rendered),
            dest,
        );
        return Ok((Outcome::WouldChange(d), excluded, None));
    }
    let staged = blocking(|| stage::stage(&current, &rendered, res.create_dest_dirs, &res.file))
        .map_err(|e| io("cannot write the stage file for", dest, e))?;
    drop(io_slot);
    if !opts.sync_only
        && let Some(cmd) = &res.check_cmd
    {
        let _slot = permit(pass.limits, |l| &l.commands).await;
        let begun = Instant::now();
        let cmd = command::substitute(cmd, staged.path(), dest);
        let env = pass.env.unwrap_or(CommandEnv::inherit());
        if let Err(source) = command::run(&cmd, res.check_timeout, env).await {
            let kept = if opts.keep_stage_file {
                format!(" (rejected file kept at {})", staged.keep().display())
            } else {
                String::new()
            };
            return Err(SyncError::Check {
                resource: res.name.clone(),
                dest: dest.display().to_string(),
                kept,
                source: Box::new(source),
            });
        }
        t.check = begun.elapsed();
    }
    // Checked, not yet in place: HAProxy's runtime can take it now (a failure part way
    // is put right by the reload from this file that follows).
    let runtime = match (&res.haproxy_socket, opts.sync_only) {
        (Some(sock), false) => {
            let owed = pass.ledger.is_some_and(|l| l.is_owed(res));
            if let Some(o) = &mut current.old {
                blocking(|| o.bytes().map(drop))
                    .map_err(|e| io("cannot read destination", dest, e))?;
            }
            let old = current.old.as_ref().and_then(stage::Old::read);
            Some(runtime_update(res, sock, owed, old, &rendered).await)
        }
        _ => None,
    };
    let via_runtime = matches!(runtime, Some(Ok(_)));
    // From the rename on, the file in place has not been reloaded yet.
    let owe = !opts.sync_only && apply::owes_reload(res, pass.reloads);
    if owe
        && !via_runtime
        && let Some(l) = pass.ledger
    {
        blocking(|| l.owe(res));
    }
    let swapped = blocking(|| staged.with_backup(res.backup).swap(current.old.as_mut()));
    if let Err(e) = swapped {
        // The rename may not have happened; the ledger is put right by the next sync.
        // A runtime already changed now runs ahead of the file: a reload puts it back.
        if let (true, true, Some(l)) = (owe, via_runtime, pass.ledger) {
            blocking(|| l.owe(res));
        }
        return Err(io("cannot replace", dest, e));
    }
    // The old file was read whole and a render's buffers shrink with it: a large file
    // going (every key deleted) frees as much as a large one coming.
    let old_len = current.old.as_ref().map_or(0, |o| o.len() as usize);
    let rendered_len = rendered.len();
    if let Some(o) = pass.observer {
        o.replaced(current.old, rendered);
    }
    if rendered_len.max(old_len) >= LARGE_FILE {
        crate::memory::freed();
    }
    Ok((Outcome::Updated(t), excluded, runtime))
}

/// The change from `old` to `new` through HAProxy's Runtime API on `sock`, unless a
/// reload is still `owed` (then the runtime does not match `old`).
async fn runtime_update(
    res: &Resource,
    sock: &std::path::Path,
    owed: bool,
    old: Option<&[u8]>,
    new: &[u8],
) -> crate::haproxy::Attempt {
    use crate::haproxy::{Fallback, Reason};
    if owed {
        let why = "the file in place still owes its reload".to_string();
        return Err(Fallback::new(Reason::ReloadOwed, why));
    }
    crate::haproxy::update(sock, res.drain_timeout, old, new).await
}

/// Runs `f`, which blocks (a render, reads and writes with fsync), without stalling the
/// other tasks of a multi-threaded runtime: its worker hands them to another thread
/// first. Elsewhere (a current-thread runtime, no runtime) `f` just runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A unified diff from `old` to `new` for `dest`.
pub fn diff(old: &str, new: &str, dest: &std::path::Path) -> String {
    let d = dest.display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&d, &format!("{d} (rendered)"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn blocking_work_lets_the_other_tasks_of_the_worker_run() {
        // One worker thread: a render on it must not stop a task that is due meanwhile.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let during = rt.block_on(async {
            let t = ticks.clone();
            tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let t = ticks.clone();
            tokio::spawn(async move {
                let before = t.load(Ordering::SeqCst);
                super::blocking(|| std::thread::sleep(Duration::from_millis(300)));
                t.load(Ordering::SeqCst) - before
            })
            .await
            .unwrap()
        });
        assert!(
            during >= 5,
            "the ticker ran {during} times during 300 ms of blocking work"
        );
        // Without a multi-threaded runtime the work just runs.
        assert_eq!(super::blocking(|| 7), 7);
    }
}
