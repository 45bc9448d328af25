//! YAML, JSON and TOML files as a store. Maps become `/a/b`, lists `/a/0`, scalars become
//! strings; later files override earlier ones; a directory stands for every data file
//! below it, in name order. With `--watch`, changes arrive through `notify`.
//!
//! YAML is read as confd reads it (yaml.v2, YAML 1.1): `resolve` (scalars), `walk`
//! (nodes to keys, merges), `path` (`path.Join`), `keys` (duplicate keys), `yaml` (the full parser, anchors
//! and aliases), `fast` (the common shape in one pass). JSON and TOML go through serde
//! (`serde_flatten`).

mod fast;
mod keys;
mod path;
mod resolve;
mod serde_flatten;
mod walk;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Backend, BackendConfig, BackendError, KvMap, Snapshot, Update, under_any};

/// Data files and directories, read afresh on every listing.
#[derive(Debug, Clone)]
pub struct FileBackend {
    paths: Vec<PathBuf>,
}

impl FileBackend {
    /// A backend over `cfg.files`; at least one path is required.
    pub fn new(cfg: &BackendConfig) -> Result<Self, BackendError> {
        if cfg.files.is_empty() {
            return Err(BackendError::fatal(
                "file",
                "-",
                "the file backend needs at least one --file (a YAML, JSON or TOML file or a directory)",
            ));
        }
        Ok(Self {
            paths: cfg.files.clone(),
        })
    }

    fn endpoint(&self) -> String {
        self.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Every data file `paths` stand for, in the order they apply.
pub fn data_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            collect_dir(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_dir(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json" | "toml")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads and flattens every file `paths` stand for; the error names the file and line.
pub fn load(paths: &[PathBuf]) -> Result<KvMap, String> {
    let mut kvs = Entries::new();
    for f in data_files(paths)? {
        let text = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let text = String::from_utf8(text).map_err(|e| {
            format!(
                "{}: not UTF-8 text (byte {})",
                f.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        flatten_str(&f, &text, &mut kvs).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    Ok(into_map(kvs))
}

/// Entries in the order the files hold them; a later one overrides an earlier one.
pub type Entries = Vec<(String, String)>;

/// The map of `entries`, the last of equal keys winning. Built in one go from sorted
/// entries, its nodes are full: at 100,000 keys that is 4 MB less than inserting one by
/// one, which leaves every node of an in-order insert half empty.
pub fn into_map(mut entries: Entries) -> KvMap {
    // Latest first, then a stable sort: of each run of equal keys the first is the one
    // read last, and `dedup_by` keeps the first.
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    entries.into_iter().collect()
}

/// Flattens one document onto `out`, choosing the format from the file's extension
/// (YAML, as confd reads it, for anything but `.toml` and `.json`).
pub fn flatten_str(path: &Path, text: &str, out: &mut Entries) -> Result<(), String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
            serde_flatten::flatten(de, out).map_err(|e| e.to_string())
        }
        Some("json") => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_flatten::flatten(&mut de, out).map_err(|e| e.to_string())?;
            de.end().map_err(|e| e.to_string())
        }
        _ => yaml::read(text, out).map_err(|e| e.to_string()),
    }
}

#[async_trait]
impl Backend for FileBackend {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        let paths = self.paths.clone();
        let mut all = tokio::task::spawn_blocking(move || load(&paths))
            .await
            .map_err(|e| BackendError::transient("file", self.endpoint(), e))?
            .map_err(|e| BackendError::transient("file", self.endpoint(), e))?;
        all.retain(|k, _| under_any(k, prefixes));
        Ok(Snapshot {
            kvs: all,
            revision: None,
        })
    }

    fn can_watch(&self) -> bool {
        true
    }

    async fn watch(
        &self,
        prefixes: Vec<String>,
        from: Arc<Snapshot>,
        tx: mpsc::Sender<Update>,
        shutdown: CancellationToken,
    ) -> Result<(), BackendError> {
        use notify::Watcher;
        let (ntx, mut nrx) = mpsc::unbounded_channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.map(|e| !e.kind.is_access()).unwrap_or(true) {
                let _ = ntx.send(());
            }
        })
        .map_err(|e| BackendError::fatal("file", self.endpoint(), e))?;
        // Watch parent directories too: editors and `mv` replace files by renaming.
        for p in &self.paths {
            let dir = if p.is_dir() {
                p.clone()
            } else {
                p.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."))
            };
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            watcher
                .watch(&dir, notify::RecursiveMode::Recursive)
                .map_err(|e| BackendError::fatal("file", dir.display().to_string(), e))?;
        }
        let mut last = (*from).clone();
        let mut down = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                got = nrx.recv() => if got.is_none() { return Ok(()) },
            }
            // Coalesce the burst of events one save makes.
            tokio::time::sleep(Duration::from_millis(30)).await;
            while nrx.try_recv().is_ok() {}
            match self.list(&prefixes).await {
                Ok(snap) => {
                    if down {
                        down = false;
                        let _ = tx.send(Update::Up).await;
                    }
                    if snap != last {
                        last = snap.clone();
                        if tx.send(Update::Resync(snap)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                Err(e) => {
                    if !down {
                        down = true;
                        let _ = tx.send(Update::Down(e.to_string())).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod scalar_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod yaml_tests;
