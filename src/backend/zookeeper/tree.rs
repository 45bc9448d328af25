//! Reading znodes as keys: the listing of whole subtrees and the re-read of the nodes
//! that watch events name.
//!
//! A znode is a key (its path) with its data as the value when its data is non-empty
//! or it has no children: a leaf with empty data is a key with an empty value (as in
//! confd), a node with children and data yields both its own key and its children's,
//! and a node with children and empty data (the usual directory) yields only the
//! children's. Each multi-read batch reads a node's data and children in one request,
//! so a node's data and child count always agree.

use std::collections::BTreeSet;

use zookeeper_client as zk;

use super::conn::{KIND, Target};
use crate::backend::nerve;
use crate::backend::text::Strict;
use crate::backend::{BackendError, Change, KvMap};

/// Nodes per multi-read request (each costs two reads in a listing): big enough to
/// amortise round trips, small enough that one reply stays well under ZooKeeper's usual
/// 1 MiB packet size with small values.
const BATCH: usize = 200;

/// One node as a listing reads it: its data, its children's names, and whether it is
/// ephemeral.
type Node = (Vec<u8>, Vec<String>, bool);

/// How nodes turn into keys and values.
pub(super) struct Reader<'a> {
    pub target: &'a Target,
    /// Read nerve's JSON registrations as `host:port`.
    pub nerve: bool,
}

/// The subtrees to list and watch for `prefixes`: each prefix names a znode (a trailing
/// `/` and confd's `/*` are dropped; `""` is `/`), and a prefix inside another is
/// covered by it.
pub(super) fn roots_of(prefixes: &[String]) -> Vec<String> {
    let mut roots: Vec<String> = prefixes
        .iter()
        .map(|p| {
            let p = p.replace("/*", "");
            let t = p.trim_end_matches('/');
            if t.is_empty() {
                "/".to_string()
            } else if t.starts_with('/') {
                t.to_string()
            } else {
                format!("/{t}")
            }
        })
        .collect();
    roots.sort();
    roots.dedup();
    let all = roots.clone();
    roots.retain(|r| !all.iter().any(|o| o != r && inside(r, o)));
    roots
}

/// True when `path` is `root` or below it.
pub(super) fn inside(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

/// `/zookeeper` (the server's own quota and config nodes) is never a key, even when
/// `/` is watched.
pub(super) fn is_system(path: &str) -> bool {
    inside(path, "/zookeeper") && path != "/"
}

/// The parent of a node (`None` for `/`).
pub(super) fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

fn child(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Reader<'_> {
    /// Every key under `roots`, reading level by level with pipelined multi-reads.
    pub async fn list(&self, client: &zk::Client, roots: &[String]) -> Result<KvMap, BackendError> {
        let mut strict = Strict::new(KIND, self.target.shown());
        let mut kvs = KvMap::new();
        let mut level: Vec<String> = roots.to_vec();
        while !level.is_empty() {
            let mut next = Vec::new();
            let sent: Vec<_> = level
                .chunks(BATCH)
                .map(|chunk| (chunk, send_batch(client, chunk, true)))
                .collect();
            for (chunk, reply) in sent {
                let results = match reply {
                    Ok(fut) => fut.await,
                    Err(e) => Err(e),
                };
                let results =
                    results.map_err(|e| self.target.error(&format!("list {}", chunk[0]), &e))?;
                for (path, pair) in chunk.iter().zip(results.chunks(2)) {
                    let Some((data, children, ephemeral)) = self.pair(path, pair, roots)? else {
                        continue;
                    };
                    if let Some(v) =
                        self.value_of(&mut strict, path, data, children.len(), ephemeral)
                    {
                        kvs.insert(path.clone(), v);
                    }
                    next.extend(
                        children
                            .iter()
                            .map(|c| child(path, c))
                            .filter(|p| !is_system(p)),
                    );
                }
            }
            level = next;
        }
        Ok(kvs)
    }

    /// A node's data and children from its two results; `None` when it is gone (or,
    /// below a root, unreadable: left out with a warning, so one node an instance locked
    /// with its own ACL cannot stop every listing).
    fn pair(
        &self,
        path: &str,
        pair: &[zk::MultiReadResult],
        roots: &[String],
    ) -> Result<Option<Node>, BackendError> {
        use zk::MultiReadResult as R;
        match pair {
            [R::Data { data, stat }, R::Children { children }] => Ok(Some((
                data.clone(),
                children.clone(),
                stat.ephemeral_owner != 0,
            ))),
            [R::Error { err }, ..] | [_, R::Error { err }] => match err {
                zk::Error::NoNode => Ok(None),
                zk::Error::NoAuth if !roots.iter().any(|r| r == path) => {
                    tracing::warn!(
                        backend = KIND,
                        endpoint = self.target.shown(),
                        key = %crate::backend::text::shown(path.as_bytes()),
                        "not authorized to read this znode: it and its children are left out"
                    );
                    Ok(None)
                }
                e => Err(self.target.error(&format!("read {path}"), e)),
            },
            _ => Err(BackendError::transient(
                KIND,
                self.target.shown(),
                format!("read {path}: unexpected reply"),
            )),
        }
    }

    /// The current keys of `paths` (each re-read once): `(path, Some(value))` for a key,
    /// `(path, None)` for a node that is gone or is a directory now.
    pub async fn reread(
        &self,
        client: &zk::Client,
        paths: &BTreeSet<String>,
    ) -> Result<Vec<Change>, BackendError> {
        let mut strict = Strict::new(KIND, self.target.shown());
        let paths: Vec<String> = paths.iter().filter(|p| !is_system(p)).cloned().collect();
        let mut changes = Vec::with_capacity(paths.len());
        let sent: Vec<_> = paths
            .chunks(BATCH)
            .map(|chunk| (chunk, send_batch(client, chunk, false)))
            .collect();
        for (chunk, reply) in sent {
            let results = match reply {
                Ok(fut) => fut.await,
                Err(e) => Err(e),
            }
            .map_err(|e| self.target.error(&format!("read {}", chunk[0]), &e))?;
            for (path, result) in chunk.iter().zip(results) {
                let value = match result {
                    zk::MultiReadResult::Data { data, stat } => {
                        let n = usize::try_from(stat.num_children).unwrap_or(0);
                        self.value_of(&mut strict, path, data, n, stat.ephemeral_owner != 0)
                    }
                    zk::MultiReadResult::Error {
                        err: zk::Error::NoNode | zk::Error::NoAuth,
                    } => None,
                    zk::MultiReadResult::Error { err } => {
                        return Err(self.target.error(&format!("read {path}"), &err));
                    }
                    _ => None,
                };
                changes.push((path.clone(), value));
            }
        }
        Ok(changes)
    }

    /// The value `path` contributes, or `None` when it is not a key (a directory with
    /// empty data, data that is not UTF-8, or with `--nerve` an ephemeral leaf or one
    /// holding a JSON object that is not a valid registration).
    fn value_of(
        &self,
        strict: &mut Strict<'_>,
        path: &str,
        data: Vec<u8>,
        children: usize,
        ephemeral: bool,
    ) -> Option<String> {
        if data.is_empty() && children > 0 {
            return None;
        }
        let text = strict.value(path, data)?;
        // nerve writes registrations as ephemeral leaves holding a JSON object: those must
        // be valid registrations; persistent values (a listen address beside them) and
        // directories read as usual.
        let registration = ephemeral || text.trim_start().starts_with('{');
        if !self.nerve || children > 0 || !registration {
            return Some(text);
        }
        match nerve::decode(&text) {
            Ok(addr) => Some(addr),
            Err(why) => {
                tracing::warn!(
                    backend = KIND,
                    key = %crate::backend::text::shown(path.as_bytes()),
                    "{why}: the key is left out (--nerve)"
                );
                None
            }
        }
    }
}

/// Sends one multi-read for `chunk` (data, and children when `children`); the request
/// leaves at once, so several batches are in flight together.
fn send_batch<'a>(
    client: &'a zk::Client,
    chunk: &[String],
    children: bool,
) -> Result<
    impl std::future::Future<Output = Result<Vec<zk::MultiReadResult>, zk::Error>> + Send + 'a,
    zk::Error,
> {
    let mut reader = client.new_multi_reader();
    for p in chunk {
        reader.add_get_data(p)?;
        if children {
            reader.add_get_children(p)?;
        }
    }
    Ok(reader.commit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_subtree_roots() {
        let p = |v: &[&str]| roots_of(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["/app/servers/"]), vec!["/app/servers"]);
        assert_eq!(p(&["/app/*"]), vec!["/app"]);
        assert_eq!(p(&["/app", "/app/servers", "/apps"]), vec!["/app", "/apps"]);
        assert_eq!(p(&["", "/x"]), vec!["/"]);
        assert_eq!(p(&["app"]), vec!["/app"]);
    }

    #[test]
    fn paths_relate_as_a_tree() {
        assert!(inside("/app/x", "/app"));
        assert!(inside("/app", "/app"));
        assert!(!inside("/apps", "/app"));
        assert!(inside("/anything", "/"));
        assert_eq!(parent("/app/x"), Some("/app"));
        assert_eq!(parent("/app"), Some("/"));
        assert_eq!(parent("/"), None);
        assert!(is_system("/zookeeper/quota"));
        assert!(!is_system("/zookeeper2"));
    }
}
