//! confd's settings: each flag with its confd.toml key, type, default and help
//! ([`SPECS`]), and the values confd holds for them with where each came from
//! ([`Config`]), as the flags, confd.toml and the environment set them in turn.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-f` or `-f=true|false`.
    Bool,
    /// Go `int`, parsed with base prefixes (`0x10`, `010`, `1_000`).
    Int,
    /// Any string.
    Str,
    /// Repeatable (`-node`, `-file`): every use appends.
    List,
}

/// One of confd's settings: its flag, its confd.toml key, type, default and help.
#[derive(Debug)]
pub struct Spec {
    /// Flag name without the dash; also the setting's name in [`Config`].
    pub name: &'static str,
    /// The key confd.toml sets it with (`""`: none).
    pub key: &'static str,
    /// Type.
    pub kind: Kind,
    /// Default as Go prints it.
    pub default: &'static str,
    /// confd's help text, with what confsync does where that differs.
    pub help: &'static str,
}

const fn spec(
    name: &'static str,
    key: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        name,
        key,
        kind,
        default,
        help,
    }
}

use Kind::{Bool, Int, List, Str};

/// confd 0.16's flags (and `-client-insecure` from its last commits), in the order
/// `confd -h` prints them.
#[rustfmt::skip]
pub const SPECS: &[Spec] = &[
    spec("app-id", "app_id", Str, "", "Vault app-id (confsync: not supported, exits 2)"),
    spec("auth-token", "auth_token", Str, "", "Auth bearer token to use (confsync: not supported, exits 2)"),
    spec("auth-type", "auth_type", Str, "", "Vault auth backend type (confsync: not supported, exits 2)"),
    spec("backend", "backend", Str, "etcd", "backend to use: etcd, etcdv3, redis, env or file"),
    spec("basic-auth", "basic_auth", Bool, "", "Use Basic Auth to authenticate (only used with -backend=etcd)"),
    spec("client-ca-keys", "client_cakeys", Str, "", "client ca keys"),
    spec("client-cert", "client_cert", Str, "", "the client cert"),
    spec("client-insecure", "client_insecure", Bool, "", "Allow connections to SSL sites without certs (confsync: not supported, exits 2)"),
    spec("client-key", "client_key", Str, "", "the client key (with -backend=redis: the Redis password)"),
    spec("confdir", "confdir", Str, "/etc/confd", "confd conf directory"),
    spec("config-file", "", Str, "/etc/confd/confd.toml", "the confd config file"),
    spec("file", "file", List, "", "the YAML file to watch for changes (only used with -backend=file)"),
    spec("filter", "filter", Str, "*", "files filter (only used with -backend=file; confsync: only \"*\" with directories)"),
    spec("interval", "interval", Int, "600", "backend polling interval"),
    spec("keep-stage-file", "keepstagefile", Bool, "", "keep staged files"),
    spec("log-level", "log-level", Str, "", "level which confd should log messages"),
    spec("node", "nodes", List, "", "list of backend nodes"),
    spec("noop", "noop", Bool, "", "only show pending changes"),
    spec("onetime", "onetime", Bool, "", "run once and exit"),
    spec("password", "password", Str, "", "the password to authenticate with (only used with -backend=etcd and -basic-auth)"),
    spec("path", "path", Str, "", "Vault mount path of the auth method (confsync: not supported, exits 2)"),
    spec("prefix", "prefix", Str, "", "key path prefix (replaces every resource's own prefix)"),
    spec("role-id", "role_id", Str, "", "Vault role-id (confsync: not supported, exits 2)"),
    spec("scheme", "scheme", Str, "http", "the backend URI scheme for nodes retrieved from DNS SRV records (confsync: only http)"),
    spec("secret-id", "secret_id", Str, "", "Vault secret-id (confsync: not supported, exits 2)"),
    spec("secret-keyring", "secret_keyring", Str, "", "path to armored PGP secret keyring (confsync: not supported, exits 2)"),
    spec("separator", "separator", Str, "", "the separator to replace '/' with when looking up keys in the backend (only used with -backend=redis)"),
    spec("srv-domain", "srv_domain", Str, "", "the name of the resource record (confsync: not supported, exits 2)"),
    spec("srv-record", "srv_record", Str, "", "the SRV record to search for backends nodes (confsync: not supported, exits 2)"),
    spec("sync-only", "sync-only", Bool, "", "sync without check_cmd and reload_cmd"),
    spec("table", "table", Str, "", "the name of the DynamoDB table (confsync: not supported, exits 2)"),
    spec("user-id", "user_id", Str, "", "Vault user-id (confsync: not supported, exits 2)"),
    spec("username", "username", Str, "", "the username to authenticate as (only used with -backend=etcd and -basic-auth)"),
    spec("version", "", Bool, "", "print version and exit"),
    spec("watch", "watch", Bool, "", "enable watch support"),
];

/// The spec of the setting called `name`.
pub fn spec_of(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Backend names a fork-style `confd [flags] BACKEND [flags]` may give.
pub const BACKEND_WORDS: &[&str] = &[
    "etcd",
    "etcdv3",
    "redis",
    "env",
    "file",
    "consul",
    "zookeeper",
    "vault",
    "dynamodb",
    "ssm",
    "rancher",
    "acm",
    "secretsmanager",
    "imds",
];

/// A setting's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A list of strings.
    List(Vec<String>),
}

/// Where a setting's value came from, so a message can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// confd's default.
    Default,
    /// The command line.
    Flag,
    /// A line of confd.toml.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// An environment variable.
    Env(&'static str),
}

/// confd's settings as confd holds them after each step: flags, then confd.toml, then
/// the `CONFD_CLIENT_*` variables.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    values: BTreeMap<&'static str, (Value, Origin)>,
}

/// Settings whose values are secrets: `password`, and `client-key`, which confd hands to
/// Redis as its password.
const SECRETS: &[&str] = &["password", "client-key"];

impl std::fmt::Debug for Config {
    /// Every setting; a secret's value shows only as `"***"` when it is set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = Value::Str("***".into());
        let mut m = f.debug_map();
        for (name, (value, origin)) in &self.values {
            let secret = SECRETS.contains(name) && *value != Value::Str(String::new());
            m.entry(name, &(if secret { &hidden } else { value }, origin));
        }
        m.finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        let values = SPECS
            .iter()
            .map(|s| {
                let v = match s.kind {
                    Bool => Value::Bool(false),
                    Int => Value::Int(s.default.parse().unwrap_or(0)),
                    Str => Value::Str(s.default.to_string()),
                    List => Value::List(Vec::new()),
                };
                (s.name, (v, Origin::Default))
            })
            .collect();
        Self { values }
    }
}

impl Config {
    /// The value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name).map(|(v, _)| v)
    }

    /// A string setting (`""` if `name` is not one).
    pub fn str(&self, name: &str) -> &str {
        match self.get(name) {
            Some(Value::Str(s)) => s,
            _ => "",
        }
    }

    /// A boolean setting.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// An integer setting.
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(Value::Int(i)) => *i,
            _ => 0,
        }
    }

    /// A list setting.
    pub fn list(&self, name: &str) -> &[String] {
        match self.get(name) {
            Some(Value::List(l)) => l,
            _ => &[],
        }
    }

    /// Where `name`'s value came from.
    pub fn origin(&self, name: &str) -> &Origin {
        self.values.get(name).map_or(&Origin::Default, |(_, o)| o)
    }

    /// Sets `name` (a [`SPECS`] name; others are ignored).
    pub fn set(&mut self, name: &str, value: Value, origin: Origin) {
        if let Some(s) = spec_of(name) {
            self.values.insert(s.name, (value, origin));
        }
    }
}
