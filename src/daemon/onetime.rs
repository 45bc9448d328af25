//! `--onetime`: list every backend once, sync every resource, report.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{error, info};

use crate::backend::{self, KvMap};
use crate::config::{ResourceSet, RunConfig};
use crate::resource::{self, Limits, Outcome, Pass, SyncOptions};
use crate::store;

use super::owed::OwedReloads;
use super::{DaemonError, RunSummary};

/// `--onetime`: list every backend once, sync every resource, report.
pub async fn onetime(cfg: RunConfig, set: ResourceSet) -> Result<RunSummary, DaemonError> {
    resource::stage::sweep(&set.resources).await;
    let opts = SyncOptions {
        noop: cfg.noop,
        sync_only: cfg.sync_only,
        keep_stage_file: cfg.keep_stage_file,
    };
    let mut snapshots: BTreeMap<String, Arc<KvMap>> = BTreeMap::new();
    for r in &set.resources {
        if snapshots.contains_key(&r.backend) {
            continue;
        }
        let Some(bcfg) = cfg.backends.get(&r.backend) else {
            continue;
        };
        let lists: Vec<Vec<String>> = set
            .resources
            .iter()
            .filter(|x| x.backend == r.backend)
            .map(|x| x.key_prefixes())
            .collect();
        let prefixes = store::watch_prefixes_of(lists.iter().map(Vec::as_slice));
        let b = backend::build(bcfg)
            .await
            .map_err(|e| DaemonError::Fatal(r.backend.clone(), e))?;
        let snap = b.list(&prefixes).await.map_err(|e| {
            if e.is_transient() {
                DaemonError::Unreachable(r.backend.clone(), e)
            } else {
                DaemonError::Fatal(r.backend.clone(), e)
            }
        })?;
        snapshots.insert(r.backend.clone(), Arc::new(snap.kvs));
    }
    let owed = OwedReloads::open(cfg.state_dir().as_deref());
    let limits = Limits::new(cfg.parallel_commands);
    let mut failed = 0;
    for r in &set.resources {
        let Some(kvs) = snapshots.get(&r.backend) else {
            continue;
        };
        let pass = Pass {
            cache: None,
            limits: Some(&limits),
            ledger: Some(&owed),
            shared_engine: None,
            env: Some(&cfg.command_env),
            reloads: None,
            observer: None,
        };
        match resource::sync(r, &set.engine, kvs.clone(), opts, pass).await {
            Ok(s) => match s.outcome {
                Outcome::Updated(t) => info!(
                    resource = %r.name,
                    dest = %r.dest.display(),
                    render_ms = t.render.as_secs_f64() * 1e3,
                    check_ms = t.check.as_secs_f64() * 1e3,
                    reload_ms = t.reload.as_secs_f64() * 1e3,
                    "updated"
                ),
                Outcome::WouldChange(diff) => print!("{diff}"),
                Outcome::Reloaded(d) => info!(
                    resource = %r.name,
                    dest = %r.dest.display(),
                    reload_ms = d.as_secs_f64() * 1e3,
                    "reloaded (it was owed)"
                ),
                Outcome::Unchanged => {}
            },
            Err(e) => {
                error!(resource = %r.name, stage = e.stage(), "{e}");
                failed += 1;
            }
        }
    }
    Ok(RunSummary {
        failed,
        exec_status: None,
    })
}
