//! The daemon's side of exec mode: start the child after the first render, notice when
//! it exits, stop it when the daemon stops (see [`crate::exec`]).

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::RunConfig;
use crate::config::exec::ExecConfig;
use crate::exec::child::{self, Ended};
use crate::exec::{ChildHandle, forward};
use crate::resource::CommandEnv;

/// The exec child of a run, if it has one.
pub struct ExecRun {
    setup: Option<(ExecConfig, CommandEnv, Arc<ChildHandle>)>,
    stop: CancellationToken,
    task: Option<JoinHandle<Ended>>,
}

impl ExecRun {
    /// Exec mode's state for `cfg`; signals are passed on to `child` from now on.
    pub fn new(cfg: &RunConfig, child: Option<Arc<ChildHandle>>) -> ExecRun {
        let stop = CancellationToken::new();
        let setup = cfg.exec.clone().zip(child).map(|(e, handle)| {
            forward::spawn(handle.clone(), stop.clone());
            (e, cfg.command_env.clone(), handle)
        });
        ExecRun {
            setup,
            stop,
            task: None,
        }
    }

    /// Starts the child (once).
    pub fn start(&mut self) {
        if let Some((cfg, env, handle)) = self.setup.take() {
            self.task = Some(tokio::spawn(child::supervise(
                cfg,
                env,
                handle,
                self.stop.clone(),
            )));
        }
    }

    /// Whether the child's supervision is running.
    pub fn running(&self) -> bool {
        self.task.is_some()
    }

    /// The status of a child that exited by itself (it is not restarted); pending while
    /// it runs.
    pub async fn exited(&mut self) -> u8 {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        let ended = task.await;
        self.task = None;
        match ended {
            Ok(Ended::Exited(code)) => code,
            // Only when stopping, which is not waited for here.
            Ok(Ended::Stopped) => 0,
            Err(_) => 1,
        }
    }

    /// Stops the child (kill signal, timeout, SIGKILL) and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
