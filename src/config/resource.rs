//! Resource files (`conf.d/*.toml`), in confd's format: a `[template]` table saying which
//! template renders which destination from which keys, and how to check and reload it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Dialect, Wait, duration, line_of};
use crate::resource::dest_path::{absolute, identity};
use crate::template::view::key_prefix;
use crate::template::{EngineKind, join_key};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    template: RawResource,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    src: Spanned<String>,
    dest: Spanned<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    prefix: Option<String>,
    mode: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    uid: Option<u32>,
    gid: Option<u32>,
    check_cmd: Option<String>,
    reload_cmd: Option<String>,
    check_timeout: Option<Spanned<duration::Raw>>,
    reload_timeout: Option<Spanned<duration::Raw>>,
    backend: Option<String>,
    wait: Option<Spanned<String>>,
    min_reload_interval: Option<Spanned<duration::Raw>>,
    min_keys: Option<usize>,
    value_pattern: Option<Spanned<String>>,
    key_pattern: Option<Spanned<String>>,
    engine: Option<Spanned<String>>,
    create_dest_dirs: Option<bool>,
    max_render_size: Option<usize>,
    render_timeout: Option<Spanned<duration::Raw>>,
    src_outside_templates: Option<bool>,
    allow_special_mode: Option<bool>,
    splay: Option<Spanned<duration::Raw>>,
    backup: Option<bool>,
    haproxy_socket: Option<Spanned<String>>,
    drain_timeout: Option<Spanned<duration::Raw>>,
}

/// One validated resource: a template, its destination and what to do around the swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The resource file's stem (`haproxy` for `conf.d/haproxy.toml`); used in logs,
    /// metrics and `confsync render --resource`.
    pub name: String,
    /// The resource file, for error messages.
    pub file: PathBuf,
    /// Template name: `src` relative to the templates directory.
    pub src: String,
    /// The template file on disk.
    pub src_path: PathBuf,
    /// Destination, always absolute (commands get absolute paths whatever the working
    /// directory): a relative `dest` is taken relative to the config directory, and a
    /// relative config directory relative to the working directory at load time.
    pub dest: PathBuf,
    /// The `keys` as written (relative to `prefix`).
    pub keys: Vec<String>,
    /// The effective prefix: the global prefix joined with the resource's own.
    pub prefix: String,
    /// File mode to set; `None` keeps an existing destination's mode (0644 for a new one).
    pub mode: Option<u32>,
    /// Owner to set; `None` keeps the destination's (or the process's for a new one).
    pub uid: Option<u32>,
    /// Group to set, as for `uid`.
    pub gid: Option<u32>,
    /// Run on the staged file before the swap; non-zero exit rejects the render.
    pub check_cmd: Option<String>,
    /// Run after the swap.
    pub reload_cmd: Option<String>,
    /// Kill the check command after this long (default 30 s).
    pub check_timeout: Duration,
    /// Kill the reload command after this long (default 60 s).
    pub reload_timeout: Duration,
    /// The backend this resource reads (`default` unless it names a `[backends.NAME]`).
    pub backend: String,
    /// Its own coalescing, overriding the global `wait`.
    pub wait: Option<Wait>,
    /// Least time between two updates of this destination (default none).
    pub min_reload_interval: Duration,
    /// Refuse to render from fewer visible keys than this (keep the old file).
    pub min_keys: usize,
    /// Values that do not match this whole pattern are left out of the render.
    pub value_pattern: Option<ValuePattern>,
    /// Keys whose whole name, relative to the prefix (as templates see it), does not
    /// match this pattern are left out of the render: key names come from the store too.
    pub key_pattern: Option<ValuePattern>,
    /// The template's language, when the resource names it (`engine = "go"|"tera"`);
    /// otherwise the engine's detection rule decides.
    pub engine: Option<EngineKind>,
    /// Create the destination's directory (and its parents, 0755) when it is missing;
    /// otherwise a missing directory is an error naming it.
    pub create_dest_dirs: bool,
    /// Most bytes a render may write (default 64 MiB): one that reaches it is stopped
    /// and counted as a render error, the destination untouched.
    pub max_render_size: usize,
    /// A render still running after this long (default 10 s) is reported as stuck and
    /// abandoned; its result is discarded.
    pub render_timeout: Duration,
    /// `src` may resolve outside `templates/` (`src_outside_templates = true`); otherwise
    /// a template reached through `..`, an absolute path or a symlink is an error.
    pub src_outside_templates: bool,
    /// `mode` may have set-uid, set-gid or sticky bits or be world-writable
    /// (`allow_special_mode = true`); otherwise such a mode is an error.
    pub allow_special_mode: bool,
    /// Most random delay before a reload (`splay`); `None`: the global `splay`.
    pub splay: Option<Duration>,
    /// Keep the file a swap replaces as `DEST.bak` (written atomically beside it).
    pub backup: bool,
    /// HAProxy's stats socket (`level admin`): changes that only touch `server` lines
    /// of backends go through its Runtime API instead of `reload_cmd`.
    pub haproxy_socket: Option<PathBuf>,
    /// How long a server removed through the socket may drain its sessions before it
    /// is put in maintenance and deleted (default 0: at once).
    pub drain_timeout: Duration,
}

/// A `value_pattern` or `key_pattern`, compiled to match whole values or keys.
#[derive(Debug, Clone)]
pub struct ValuePattern {
    /// As written in the resource file.
    pub source: String,
    /// Anchored at both ends.
    pub regex: regex_lite::Regex,
}

impl PartialEq for ValuePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for ValuePattern {}

impl ValuePattern {
    /// Compiles `source` so that it must match a whole value.
    pub fn new(source: &str) -> Result<Self, String> {
        let regex =
            regex_lite::Regex::new(&format!("^(?:{source})$")).map_err(|e| e.to_string())?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }
}

impl Resource {
    /// Full key prefixes this resource reads: `prefix` joined with each of `keys`
    /// (the prefix itself when `keys` is empty).
    pub fn key_prefixes(&self) -> Vec<String> {
        if self.keys.is_empty() {
            return vec![key_prefix(&self.prefix, "")];
        }
        self.keys
            .iter()
            .map(|k| key_prefix(&self.prefix, k))
            .collect()
    }
}

/// Parses and validates one resource file. `global_prefix` is joined in front of the
/// resource's own prefix; every problem found is returned, not just the first.
pub fn load(
    file: &Path,
    confdir: &Path,
    templates_dir: &Path,
    global_prefix: &str,
) -> Result<Resource, Vec<ConfigError>> {
    load_as(
        file,
        confdir,
        templates_dir,
        global_prefix,
        Dialect::Confsync,
    )
    .map(|(r, _)| r)
}

/// [`load`] by `dialect`'s rules (see [`Dialect`]); also returns warnings: the keys
/// confd ignores, which confd mode ignores too.
pub fn load_as(
    file: &Path,
    confdir: &Path,
    templates_dir: &Path,
    global_prefix: &str,
    dialect: Dialect,
) -> Result<(Resource, Vec<ConfigError>), Vec<ConfigError>> {
    let err = |line: Option<usize>, message: String| ConfigError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let bytes = std::fs::read(file).map_err(|e| vec![err(None, e.to_string())])?;
    let text = String::from_utf8(bytes).map_err(|e| {
        vec![err(
            None,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )]
    })?;
    let mut warnings = Vec::new();
    let parsed = match dialect {
        Dialect::Confsync => toml::from_str(&text),
        Dialect::Confd => {
            let fields = crate::confd::resource::struct_fields::<RawResource>();
            crate::confd::resource::from_str(&text, fields).map(|(raw, ignored)| {
                warnings = ignored
                    .into_iter()
                    .map(|i| err(Some(i.line), i.message))
                    .collect();
                raw
            })
        }
    };
    let raw: RawFile = parsed.map_err(|e| {
        let line = e.span().map(|s| line_of(&text, s.start));
        vec![err(line, e.message().trim().to_string())]
    })?;
    let raw = raw.template;
    let mut errors = Vec::new();
    let at = |s: &std::ops::Range<usize>| Some(line_of(&text, s.start));

    let src = raw.src.get_ref().clone();
    // confd joins even an absolute `src` below the templates directory.
    let src_path = match dialect {
        Dialect::Confsync => templates_dir.join(&src),
        Dialect::Confd => templates_dir.join(src.trim_start_matches('/')),
    };
    if src.is_empty() {
        errors.push(err(at(&raw.src.span()), "`src` is empty".into()));
    } else if !src_path.is_file() {
        errors.push(err(
            at(&raw.src.span()),
            format!("template `{src}` not found at {}", src_path.display()),
        ));
    }
    let src_outside_templates = raw.src_outside_templates.unwrap_or(false);
    if !src_outside_templates
        && let Some(e) = super::room::src_outside(&src, &src_path, templates_dir)
    {
        errors.push(err(at(&raw.src.span()), e));
    }
    let dest = PathBuf::from(raw.dest.get_ref());
    if raw.dest.get_ref().is_empty() {
        errors.push(err(at(&raw.dest.span()), "`dest` is empty".into()));
    }
    let dest = match dialect {
        _ if dest.is_absolute() => dest,
        Dialect::Confsync => confdir.join(dest),
        // confd writes a relative `dest` relative to its working directory.
        Dialect::Confd => dest,
    };
    let dest = absolute(&dest);

    let mode = raw.mode.as_ref().and_then(|m| {
        match u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8) {
            Ok(v) if v <= 0o7777 => Some(v),
            _ => {
                errors.push(err(
                    at(&m.span()),
                    format!(
                        "`mode` {:?} is not an octal file mode such as \"0644\"",
                        m.get_ref()
                    ),
                ));
                None
            }
        }
    });
    let allow_special_mode = raw.allow_special_mode.unwrap_or(false);
    if let (Some(m), Some(span), false) = (mode, raw.mode.as_ref(), allow_special_mode)
        && let Some(e) = super::room::special_mode(m)
    {
        errors.push(err(at(&span.span()), e));
    }
    let mut uid = raw.uid;
    if let Some(owner) = &raw.owner {
        match nix::unistd::User::from_name(owner.get_ref()) {
            Ok(Some(u)) => uid = Some(u.uid.as_raw()),
            _ => errors.push(err(
                at(&owner.span()),
                format!("unknown user `{}`", owner.get_ref()),
            )),
        }
    }
    let mut gid = raw.gid;
    if let Some(group) = &raw.group {
        match nix::unistd::Group::from_name(group.get_ref()) {
            Ok(Some(g)) => gid = Some(g.gid.as_raw()),
            _ => errors.push(err(
                at(&group.span()),
                format!("unknown group `{}`", group.get_ref()),
            )),
        }
    }
    let mut timeout = |t: &Option<Spanned<duration::Raw>>, default: u64, name: &str| match t {
        None => Duration::from_secs(default),
        Some(t) => t.get_ref().to_duration().unwrap_or_else(|e| {
            errors.push(err(at(&t.span()), format!("`{name}`: {e}")));
            Duration::from_secs(default)
        }),
    };
    let check_timeout = timeout(&raw.check_timeout, 30, "check_timeout");
    let reload_timeout = timeout(&raw.reload_timeout, 60, "reload_timeout");
    let min_reload_interval = timeout(&raw.min_reload_interval, 0, "min_reload_interval");
    let render_timeout = timeout(&raw.render_timeout, 10, "render_timeout");
    let drain_timeout = timeout(&raw.drain_timeout, 0, "drain_timeout");
    let splay = raw.splay.as_ref().map(|t| {
        duration::optional(t.get_ref())
            .map(Option::unwrap_or_default)
            .unwrap_or_else(|e| {
                errors.push(err(at(&t.span()), format!("`splay`: {e}")));
                Duration::ZERO
            })
    });
    let haproxy_socket = raw.haproxy_socket.as_ref().and_then(|p| {
        let path = PathBuf::from(p.get_ref());
        if path.is_absolute() {
            Some(path)
        } else {
            errors.push(err(
                at(&p.span()),
                format!("`haproxy_socket` {:?} is not an absolute path", p.get_ref()),
            ));
            None
        }
    });
    if let (Some(d), None) = (&raw.drain_timeout, &raw.haproxy_socket) {
        errors.push(err(
            at(&d.span()),
            "`drain_timeout` applies only with `haproxy_socket`".into(),
        ));
    }
    let wait = raw
        .wait
        .as_ref()
        .and_then(|w| match Wait::parse(w.get_ref()) {
            Ok(w) => Some(w),
            Err(e) => {
                errors.push(err(at(&w.span()), format!("`wait`: {e}")));
                None
            }
        });
    let max_render_size = match raw.max_render_size {
        Some(0) => {
            errors.push(err(
                None,
                "`max_render_size` must be at least 1 byte".into(),
            ));
            crate::template::limits::DEFAULT_MAX_RENDER_SIZE
        }
        Some(n) => n,
        None => crate::template::limits::DEFAULT_MAX_RENDER_SIZE,
    };
    let mut pattern = |field: &str, raw: &Option<Spanned<String>>| {
        raw.as_ref()
            .and_then(|p| match ValuePattern::new(p.get_ref()) {
                Ok(v) => Some(v),
                Err(e) => {
                    errors.push(err(
                        at(&p.span()),
                        format!("`{field}` is not a valid regex: {e}"),
                    ));
                    None
                }
            })
    };
    let value_pattern = pattern("value_pattern", &raw.value_pattern);
    let key_pattern = pattern("key_pattern", &raw.key_pattern);

    let engine = raw.engine.as_ref().and_then(|e| {
        EngineKind::parse(e.get_ref()).or_else(|| {
            errors.push(err(
                at(&e.span()),
                format!("`engine` {:?} is neither \"go\" nor \"tera\"", e.get_ref()),
            ));
            None
        })
    });
    // confd's templates are Go templates, whatever they contain.
    let engine = engine.or((dialect == Dialect::Confd).then_some(EngineKind::Go));

    if !errors.is_empty() {
        return Err(errors);
    }
    let own = raw.prefix.as_deref().unwrap_or("");
    let prefix = match dialect {
        Dialect::Confsync => join_key(global_prefix, own),
        // confd: a global prefix replaces the resource's own.
        Dialect::Confd if !global_prefix.is_empty() => join_key("/", global_prefix),
        Dialect::Confd => join_key("/", own),
    };
    let resource = Resource {
        name: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file: file.to_path_buf(),
        src,
        src_path: absolute(&src_path),
        dest,
        keys: raw.keys,
        prefix,
        mode,
        uid,
        gid,
        check_cmd: raw.check_cmd.filter(|c| !c.trim().is_empty()),
        reload_cmd: raw.reload_cmd.filter(|c| !c.trim().is_empty()),
        check_timeout,
        reload_timeout,
        backend: raw
            .backend
            .unwrap_or_else(|| super::DEFAULT_BACKEND.to_string()),
        wait,
        min_reload_interval,
        min_keys: raw.min_keys.unwrap_or(0),
        value_pattern,
        key_pattern,
        engine,
        create_dest_dirs: raw.create_dest_dirs.unwrap_or(false),
        max_render_size,
        render_timeout,
        src_outside_templates,
        allow_special_mode,
        splay,
        backup: raw.backup.unwrap_or(false),
        haproxy_socket,
        drain_timeout,
    };
    Ok((resource, warnings))
}

/// A resource with every field at its default, for tests elsewhere in the crate.
#[cfg(test)]
pub fn test_resource() -> Resource {
    Resource {
        name: "test".into(),
        file: PathBuf::from("conf.d/test.toml"),
        src: "test.tmpl".into(),
        src_path: PathBuf::from("templates/test.tmpl"),
        dest: PathBuf::from("out/test"),
        keys: Vec::new(),
        prefix: String::new(),
        mode: None,
        uid: None,
        gid: None,
        check_cmd: None,
        reload_cmd: None,
        check_timeout: Duration::from_secs(30),
        reload_timeout: Duration::from_secs(60),
        backend: crate::config::DEFAULT_BACKEND.into(),
        wait: None,
        min_reload_interval: Duration::ZERO,
        min_keys: 0,
        value_pattern: None,
        key_pattern: None,
        engine: None,
        create_dest_dirs: false,
        max_render_size: crate::template::limits::DEFAULT_MAX_RENDER_SIZE,
        render_timeout: Duration::from_secs(10),
        src_outside_templates: false,
        allow_special_mode: false,
        splay: None,
        backup: false,
        haproxy_socket: None,
        drain_timeout: Duration::ZERO,
    }
}

/// An error for every resource whose destination is another's: both write the same file
/// (compared after symlinks where the path exists, else as cleaned absolute paths), so
/// each would undo the other's every update.
pub fn duplicate_dests(resources: &[Resource]) -> Vec<ConfigError> {
    let mut first: std::collections::HashMap<PathBuf, &Resource> = Default::default();
    let mut errors = Vec::new();
    for r in resources {
        match first.entry(identity(&r.dest)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(r);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let same = o.key();
                let also = if same == &r.dest {
                    String::new()
                } else {
                    format!(" (which is {})", same.display())
                };
                errors.push(ConfigError {
                    file: r.file.clone(),
                    line: None,
                    message: format!(
                        "dest {}{also} is also the dest of {}: two resources cannot write one file",
                        r.dest.display(),
                        o.get().file.display()
                    ),
                });
            }
        }
    }
    errors
}
