//! A resource's reload step in the daemon ([`Reloads`]): its `reload_cmd`, run once per
//! round for the resources sharing the same command ([`super::rounds`]), then, in exec
//! mode, the child's reload signal, once per round for all resources. The first of
//! these waits a random splay first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use nix::sys::signal::Signal;

use super::rounds::{Batch, Busy};
use crate::config::Resource;
use crate::exec::ChildHandle;
use crate::resource::apply::Reloads;
use crate::resource::{CommandEnv, CommandError, Limits, command};

/// The exec child's signal, shared by every resource of a generation.
#[derive(Clone)]
pub struct ExecSignal {
    pub child: Arc<ChildHandle>,
    pub signal: Signal,
}

/// One resource's reload step.
pub struct Route {
    /// The reload command (destination substituted) and the batch of its resources.
    command: Option<(String, Arc<Batch>)>,
    /// The exec child's signal and the batch of every resource.
    exec: Option<(ExecSignal, Arc<Batch>)>,
    timeout: Duration,
    splay: Duration,
    env: Arc<CommandEnv>,
    limits: Arc<Limits>,
}

/// The routes of a generation's resources, in their order.
pub fn routes(
    resources: &[Resource],
    exec: Option<ExecSignal>,
    global_splay: Duration,
    env: &Arc<CommandEnv>,
    limits: &Arc<Limits>,
) -> Vec<Arc<Route>> {
    let commands: Vec<Option<String>> = resources
        .iter()
        .map(|r| {
            r.reload_cmd
                .as_deref()
                .map(|c| command::substitute(c, &r.dest, &r.dest))
        })
        .collect();
    let mut sharing: HashMap<&str, usize> = HashMap::new();
    for c in commands.iter().flatten() {
        *sharing.entry(c).or_default() += 1;
    }
    let batches: HashMap<&str, Arc<Batch>> = sharing
        .into_iter()
        .map(|(c, n)| (c, Batch::new(c, n)))
        .collect();
    let exec_batch = exec.map(|e| {
        let what = format!("{} to the exec child", e.signal);
        (e, Batch::new(what, resources.len()))
    });
    resources
        .iter()
        .zip(&commands)
        .map(|(r, c)| {
            Arc::new(Route {
                command: c
                    .as_deref()
                    .and_then(|c| batches.get(c).map(|b| (c.to_string(), b.clone()))),
                exec: exec_batch.clone(),
                timeout: r.reload_timeout,
                splay: r.splay.unwrap_or(global_splay),
                env: env.clone(),
                limits: limits.clone(),
            })
        })
        .collect()
}

/// A random delay up to `max` (zero for zero).
pub fn splay_delay(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(if nanos == 0 {
        0
    } else {
        fastrand::u64(0..=nanos)
    })
}

impl Route {
    /// Marks a sync of this resource as in progress in its batches.
    pub fn enter(&self) -> (Option<Busy>, Option<Busy>) {
        (
            self.command.as_ref().map(|(_, b)| b.enter()),
            self.exec.as_ref().map(|(_, b)| b.enter()),
        )
    }
}

/// Runs `action` in `batch`'s round, or at once when the batch has one member.
async fn in_round<F>(batch: &Arc<Batch>, action: F) -> Result<(), CommandError>
where
    F: std::future::Future<Output = Result<(), CommandError>> + Send + 'static,
{
    if batch.shared() {
        batch.join(action).await
    } else {
        action.await
    }
}

impl Reloads for Route {
    fn signals(&self, _res: &Resource) -> bool {
        self.exec.is_some()
    }

    fn reload<'a>(&'a self, _res: &'a Resource) -> BoxFuture<'a, Result<(), CommandError>> {
        Box::pin(async move {
            let mut splay = self.splay;
            if let Some((cmd, batch)) = &self.command {
                let (cmd, timeout) = (cmd.clone(), self.timeout);
                let (env, limits) = (self.env.clone(), self.limits.clone());
                in_round(batch, async move {
                    tokio::time::sleep(splay_delay(splay)).await;
                    let _slot = limits.commands.acquire().await.ok();
                    command::run(&cmd, timeout, &env).await
                })
                .await?;
                splay = Duration::ZERO;
            }
            if let Some((exec, batch)) = &self.exec {
                let exec = exec.clone();
                in_round(batch, async move {
                    tokio::time::sleep(splay_delay(splay)).await;
                    exec.child
                        .signal(exec.signal)
                        .map(|sent| {
                            if sent {
                                tracing::info!(signal = %exec.signal, "exec child told to reload");
                            }
                        })
                        .map_err(|message| CommandError::Spawn {
                            cmd: format!(
                                "kill -{} (the exec child)",
                                exec.signal.as_str().trim_start_matches("SIG")
                            ),
                            message,
                        })
                })
                .await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splay_spreads_delays_over_the_whole_window() {
        let max = Duration::from_secs(2);
        assert_eq!(splay_delay(Duration::ZERO), Duration::ZERO);
        let delays: Vec<Duration> = (0..2000).map(|_| splay_delay(max)).collect();
        assert!(delays.iter().all(|d| *d <= max));
        // Each tenth of the window gets its share (200 expected; far from the bounds).
        for tenth in 0..10u32 {
            let (lo, hi) = (max * tenth / 10, max * (tenth + 1) / 10);
            let n = delays.iter().filter(|d| **d >= lo && **d < hi).count();
            assert!((100..=300).contains(&n), "{n} delays in tenth {tenth}");
        }
    }

    #[test]
    fn resources_sharing_a_reload_command_share_a_batch() {
        let mut res = Vec::new();
        for (name, cmd) in [
            ("a", "nginx -s reload"),
            ("b", "nginx -s reload"),
            ("c", "other"),
        ] {
            let mut r = crate::config::resource::test_resource();
            r.name = name.into();
            r.dest = format!("/tmp/{name}").into();
            r.reload_cmd = Some(cmd.into());
            res.push(r);
        }
        let env = Arc::new(CommandEnv::INHERIT);
        let limits = Arc::new(Limits::new(1));
        let routes = routes(&res, None, Duration::ZERO, &env, &limits);
        let batch = |i: usize| routes[i].command.as_ref().unwrap().1.clone();
        assert!(Arc::ptr_eq(&batch(0), &batch(1)));
        assert!(batch(0).shared());
        assert!(!batch(2).shared());
        assert!(routes.iter().all(|r| r.exec.is_none()));
    }
}
