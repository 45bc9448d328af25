//! YAML, JSON and TOML files as a store. Maps become `/a/b`, lists `/a/0`, scalars become
//! strings; later files override earlier ones; a directory stands for every data file
//! below it, in name order. With `--watch`, changes arrive through `notify`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
/// (YAML, which also reads JSON, for anything but `.toml` and `.json`).
pub fn flatten_str(path: &Path, text: &str, out: &mut Entries) -> Result<(), String> {
    let seed = Flatten {
        out,
        path: String::new(),
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
            seed.deserialize(de).map_err(|e| e.to_string())
        }
        Some("json") => {
            let mut de = serde_json::Deserializer::from_str(text);
            seed.deserialize(&mut de).map_err(|e| e.to_string())?;
            de.end().map_err(|e| e.to_string())
        }
        _ => {
            if text.trim().is_empty() {
                return Ok(());
            }
            let de = serde_yaml_ng::Deserializer::from_str(text);
            seed.deserialize(de).map_err(|e| e.to_string())
        }
    }
}

/// Deserializes any document straight into `/path` -> string entries, with no
/// intermediate tree (100,000 keys stay cheap).
struct Flatten<'a> {
    out: &'a mut Entries,
    path: String,
}

impl Flatten<'_> {
    fn leaf(self, v: String) {
        let key = if self.path.is_empty() {
            "/".to_string()
        } else {
            self.path
        };
        self.out.push((key, v));
    }
}

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map, a list or a scalar")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(v.to_string());
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(v.to_string());
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(v.to_string());
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(v.to_string());
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(v.to_string());
        Ok(())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.leaf(v);
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf(String::new());
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let path = format!("{}/{i}", self.path);
            if seq
                .next_element_seed(Flatten {
                    out: &mut *self.out,
                    path,
                })?
                .is_none()
            {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key::<MapKey>()? {
            let mut path = String::with_capacity(self.path.len() + 1 + k.0.len());
            path.push_str(&self.path);
            path.push('/');
            path.push_str(k.0.trim_matches('/'));
            map.next_value_seed(Flatten {
                out: &mut *self.out,
                path,
            })?;
        }
        Ok(())
    }
}

/// A map key of any scalar type, as a string.
struct MapKey(String);

impl<'de> de::Deserialize<'de> for MapKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MapKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MapKey, E> {
                Ok(MapKey(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
        }
        d.deserialize_any(V)
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
mod tests {
    use super::*;

    fn flat(name: &str, text: &str) -> KvMap {
        let mut m = Entries::new();
        flatten_str(Path::new(name), text, &mut m).unwrap();
        into_map(m)
    }

    #[test]
    fn yaml_maps_lists_and_scalars() {
        let m = flat(
            "d.yaml",
            "app:\n  servers:\n    web1: 10.0.0.1:80\n  ports: [80, 443]\n  on: true\n  ratio: 1.5\n  none: ~\n",
        );
        assert_eq!(m["/app/servers/web1"], "10.0.0.1:80");
        assert_eq!(m["/app/ports/0"], "80");
        assert_eq!(m["/app/ports/1"], "443");
        assert_eq!(m["/app/on"], "true");
        assert_eq!(m["/app/ratio"], "1.5");
        assert_eq!(m["/app/none"], "");
    }

    #[test]
    fn json_and_toml() {
        let m = flat("d.json", r#"{"a": {"b": "c", "n": 3}}"#);
        assert_eq!(m["/a/b"], "c");
        assert_eq!(m["/a/n"], "3");
        let m = flat("d.toml", "[a]\nb = \"c\"\nlist = [1, 2]\n");
        assert_eq!(m["/a/b"], "c");
        assert_eq!(m["/a/list/1"], "2");
    }

    #[test]
    fn errors_name_the_line() {
        let mut m = Entries::new();
        let e = flatten_str(Path::new("x.yaml"), "a:\n  b: [1, 2\n", &mut m).unwrap_err();
        assert!(e.contains("line"), "{e}");
        let e = flatten_str(Path::new("x.toml"), "a = \n", &mut m).unwrap_err();
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn later_files_override() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.yaml"), "a: one\nb: keep\n").unwrap();
        std::fs::write(dir.path().join("2.json"), r#"{"a": "two"}"#).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let m = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(m["/a"], "two");
        assert_eq!(m["/b"], "keep");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn last_of_equal_keys_wins_within_a_file() {
        let m = flat("d.json", r#"{"a": "one", "b": "x", "a": "two"}"#);
        assert_eq!(m["/a"], "two");
        let m = flat("d.yaml", "a/: one\n/a: two\nb: [x]\n");
        assert_eq!(m["/a"], "two");
        assert_eq!(m["/b/0"], "x");
    }
}
