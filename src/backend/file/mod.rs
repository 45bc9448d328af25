//! YAML, JSON and TOML files as a store. Maps become `/a/b`, lists `/a/0`, scalars become
//! strings; later files override earlier ones; a directory stands for every data file
//! below it, in name order. With `--watch`, changes arrive through `notify`.
//!
//! Files are read safely and only when complete: `tree` (the directory walk: no loops,
//! no FIFOs or devices), `read` (one file, capped), `settle` (when a file is stable, and
//! the last good data of each file until then), `watch` (events, and what they say of a
//! file being complete).
//!
//! YAML is read as confd reads it (yaml.v2, YAML 1.1): `resolve` (scalars), `walk`
//! (nodes to keys, merges), `path` (`path.Join`), `keys` (duplicate keys), `yaml` (the full parser, anchors
//! and aliases), `fast` (the common shape in one pass). JSON and TOML go through serde
//! (`serde_flatten`).

mod empty;
mod fast;
mod keys;
mod path;
mod read;
mod resolve;
mod serde_flatten;
mod settle;
mod tree;
mod walk;
mod watch;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Backend, BackendConfig, BackendError, KvMap, Snapshot, Update, under_any};
use empty::Format;
use settle::{Complete, Files, Patience};

/// Data files and directories, read afresh on every listing; a file is used only once it
/// is stable (see [`settle`]), and until then its last good data stands in for it.
#[derive(Debug, Clone)]
pub struct FileBackend {
    paths: Vec<PathBuf>,
    /// Last good entries per file and what was last seen of each (shared by the clones a
    /// listing's blocking task takes).
    files: Arc<Mutex<Files>>,
    /// What the watch learned about files being complete (closed after writing, renamed).
    complete: Arc<Complete>,
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
            files: Arc::default(),
            complete: Arc::default(),
        })
    }

    fn endpoint(&self) -> String {
        self.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Lists on a blocking thread (the walk and the reads touch the disk, and a listing
    /// may wait for files to settle); `retry_at` says when a file not yet stable is worth
    /// another look.
    async fn load_listed(
        &self,
        prefixes: &[String],
        patience: Patience,
    ) -> Result<(Snapshot, Option<std::time::Instant>), BackendError> {
        let (paths, files, complete) = (
            self.paths.clone(),
            self.files.clone(),
            self.complete.clone(),
        );
        let listed = tokio::task::spawn_blocking(move || {
            let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
            files.load(&paths, &complete, patience)
        })
        .await
        .map_err(|e| BackendError::transient("file", self.endpoint(), e))?
        .map_err(|e| BackendError::transient("file", self.endpoint(), e))?;
        let mut kvs = into_map(listed.entries);
        kvs.retain(|k, _| under_any(k, prefixes));
        Ok((
            Snapshot {
                kvs,
                revision: None,
            },
            listed.retry_at,
        ))
    }
}

/// Reads and flattens every file `paths` stand for, waiting (briefly) for files still
/// being written; the error names the file and line.
pub fn load(paths: &[PathBuf]) -> Result<KvMap, String> {
    let listed = Files::default().load(paths, &Complete::default(), Patience::Wait)?;
    Ok(into_map(listed.entries))
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
///
/// An empty document is an error (see [`empty`]): a file that means to hold no keys
/// says so with `{}` (YAML, JSON) or a table header (TOML).
pub fn flatten_str(path: &Path, text: &str, out: &mut Entries) -> Result<(), String> {
    let base = out.len();
    let format = Format::of(path);
    empty::check_blank(format, text)?;
    match format {
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
            serde_flatten::flatten(de, out).map_err(|e| e.to_string())?;
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_flatten::flatten(&mut de, out).map_err(|e| e.to_string())?;
            de.end().map_err(|e| e.to_string())?;
        }
        Format::Yaml => yaml::read(text, out).map_err(|e| e.to_string())?,
    }
    // Only a file without keys can be empty; the check reads it again, so only then.
    if out.len() == base {
        empty::check(format, text)?;
    }
    Ok(())
}

#[async_trait]
impl Backend for FileBackend {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        self.load_listed(prefixes, Patience::Wait)
            .await
            .map(|(snap, _)| snap)
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
        watch::run(self, prefixes, from, tx, shutdown).await
    }
}

#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod scalar_tests;
#[cfg(test)]
mod settle_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tree_tests;
#[cfg(test)]
mod yaml_tests;
