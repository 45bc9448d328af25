//! A resource's render: its guards (`value_pattern`, `key_pattern`, `min_keys`) over a
//! view of the store, the template under the size limit, and, in a daemon, on a thread
//! of its own abandoned at `render_timeout`.

use std::sync::Arc;

use tracing::warn;

use super::SyncError;
use crate::backend::KvMap;
use crate::config::Resource;
use crate::template::{Engine, EntryCache, View};

/// A render's text and the keys its `value_pattern` and `key_pattern` left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The output (bytes: a Go template need not produce UTF-8).
    pub text: Vec<u8>,
    /// Keys the template could see (after `value_pattern` and `key_pattern`).
    pub keys: usize,
    /// Keys whose values failed `value_pattern` or whose names failed `key_pattern`.
    pub excluded: Vec<Excluded>,
}

/// A key a guard left out of a render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The full key.
    pub key: String,
    /// The guard that left it out, `"value_pattern"` or `"key_pattern"`: the `guard`
    /// label of `confsync_guard_refusals_total`.
    pub guard: &'static str,
}

/// Renders `res` from `kvs` without writing anything, applying its guards. A daemon
/// passes the resource's `cache`, so entries its last render built are reused.
pub fn render(
    res: &Resource,
    engine: &Engine,
    kvs: Arc<KvMap>,
    cache: Option<&Arc<EntryCache>>,
    cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Rendered, SyncError> {
    let mut view = View::new(kvs, &res.prefix, &res.keys_or_root());
    if let Some(c) = cache {
        view = view.with_cache(c.clone());
    }
    let mut excluded = Vec::new();
    if let Some(p) = &res.value_pattern {
        for key in view.exclude_values(|v| p.regex.is_match(v)) {
            warn!(resource = %res.name, key = %key, pattern = %p.source, "value does not match value_pattern; key left out of the render");
            excluded.push(Excluded {
                key,
                guard: "value_pattern",
            });
        }
    }
    if let Some(p) = &res.key_pattern {
        for key in view.exclude_keys(|k| p.regex.is_match(k)) {
            warn!(resource = %res.name, key = ?key, pattern = %p.source, "key does not match key_pattern; key left out of the render");
            excluded.push(Excluded {
                key,
                guard: "key_pattern",
            });
        }
    }
    let found = view.len();
    if res.min_keys > 0 && found < res.min_keys {
        return Err(SyncError::Guard {
            resource: res.name.clone(),
            dest: res.dest.display().to_string(),
            found,
            min_keys: res.min_keys,
        });
    }
    let limits = crate::template::RenderLimits {
        max_size: res.max_render_size,
        cancel,
    };
    let text = engine
        .render_with(&res.src, view, &limits)
        .map_err(|source| SyncError::Render {
            resource: res.name.clone(),
            dest: res.dest.display().to_string(),
            source,
        })?;
    Ok(Rendered {
        text,
        keys: found,
        excluded,
    })
}

impl Resource {
    /// The `keys` the view shows; no keys means everything under the prefix.
    fn keys_or_root(&self) -> Vec<String> {
        if self.keys.is_empty() {
            vec!["/".to_string()]
        } else {
            self.keys.clone()
        }
    }
}

/// Renders `res` on a thread of its own and waits at most its `render_timeout`. A render
/// still running then (or when this future is dropped, at shutdown) has its cancel flag
/// set, which the engines check as they go, and its result is discarded whenever it
/// ends: a stuck render never holds up other resources or the process's exit. A Tera
/// loop that writes nothing and calls nothing is not interrupted until it writes.
pub(super) async fn render_bounded(
    res: &Resource,
    engine: &Arc<Engine>,
    kvs: Arc<KvMap>,
    cache: Option<&Arc<EntryCache>>,
) -> Result<Rendered, SyncError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Sets the flag when the wait ends, however it ends.
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let guard = CancelOnDrop(cancel.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (owned, engine, cache) = (res.clone(), engine.clone(), cache.cloned());
    let spawned = std::thread::Builder::new()
        .name("render".into())
        .spawn(move || {
            let _ = tx.send(render(&owned, &engine, kvs, cache.as_ref(), Some(cancel)));
        });
    let render_error = |source| SyncError::Render {
        resource: res.name.clone(),
        dest: res.dest.display().to_string(),
        source,
    };
    if let Err(e) = spawned {
        return Err(render_error(crate::template::TemplateError::Render {
            name: res.src.clone(),
            message: format!("cannot start a thread to render on: {e}"),
        }));
    }
    let out = match tokio::time::timeout(res.render_timeout, rx).await {
        Ok(Ok(rendered)) => rendered,
        Ok(Err(_)) => Err(render_error(crate::template::TemplateError::Render {
            name: res.src.clone(),
            message: "the render thread ended without a result".into(),
        })),
        Err(_) => Err(render_error(crate::template::TemplateError::TimedOut {
            name: res.src.clone(),
            timeout: res.render_timeout,
        })),
    };
    drop(guard);
    out
}
