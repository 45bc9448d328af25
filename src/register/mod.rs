//! `confsync register`: an instance puts itself into the store and keeps itself there
//! exactly while it is alive and healthy (what nerve did for HAProxy users).
//!
//! - etcd: a lease of `--ttl` seconds, kept alive; the key is put with the lease. SIGTERM
//!   or SIGINT revokes the lease, so the key goes at once; a crash lets it expire.
//! - Redis: `SET key value EX ttl`, refreshed every third of the TTL. SIGTERM deletes the
//!   key only while it still holds our value (another instance may have taken it over).
//! - With a health check, the key exists only while the check passes: `fall` failures in
//!   a row deregister, `rise` successes in a row register again. The first result
//!   decides the starting state, so a healthy instance registers at once.
//! - ZooKeeper: an ephemeral znode held by a session whose timeout is `--ttl`; SIGTERM
//!   deletes it, a crash lets the session expire, a new session creates it again.
//!   `--nerve` writes nerve's format (ephemeral sequential, JSON) for synapse users.
//! - A store outage is retried with backoff and the key is put again when the store is
//!   back (a new lease in etcd). State changes are logged, retries are not.
//!
//! # Layout
//! - `mod.rs`: validation into [`Registration`]s, [`run`] and exit codes.
//! - `args.rs`: the flags.
//! - `service_file.rs`: several registrations from one TOML file.
//! - `check.rs`: HTTP, TCP and command checks, rise/fall, the checker task.
//! - `keeper.rs`: one registration's loop: register, refresh, deregister, back off.
//! - `etcd.rs`, `redis.rs`, `zookeeper.rs`: the stores.
//! - `tests.rs`: unit tests of flag and service-file validation.
//! - `docker.rs` (`--from-docker`): every running container of a Docker engine
//!   registered; `docker_args` (flags), `docker_template` (key and value templates),
//!   `docker_keepers` (one keeper per container), `docker_owner` (ownership records
//!   and the reconcile at start).

mod args;
mod check;
#[cfg(feature = "docker")]
mod docker;
mod docker_args;
#[cfg(feature = "docker")]
mod docker_keepers;
#[cfg(feature = "docker")]
mod docker_owner;
#[cfg(feature = "docker")]
mod docker_template;
#[cfg(feature = "etcd")]
mod etcd;
mod keeper;
#[cfg(feature = "redis")]
mod redis;
mod service_file;
#[cfg(feature = "zookeeper")]
mod zookeeper;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::{BackendConfig, BackendError, BackendKind};
use crate::config::{ConfigError, duration};
use crate::resource::CommandEnv;
pub use args::RegisterArgs;
pub use check::{CheckSpec, Probe};
pub use keeper::Outcome;
#[cfg(test)]
pub(crate) use service_file::load as load_service_file;

/// Check interval when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Check timeout when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Successes in a row that bring an unhealthy instance back.
pub const DEFAULT_RISE: u32 = 2;
/// Failures in a row that take a healthy instance out.
pub const DEFAULT_FALL: u32 = 2;

/// One key kept in the store while the instance is healthy.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The key as confsync names it (`/app/servers/web1`); with a Redis `--separator`
    /// it is mapped as the Redis backend maps keys.
    pub key: String,
    /// What the key holds while registered.
    pub value: String,
    /// Seconds the key survives a registrar that died without deregistering.
    pub ttl: u64,
    /// The health check; `None` keeps the key for as long as the process runs.
    pub check: Option<CheckSpec>,
}

/// Why registering stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The store refused the configuration (wrong password, bad URL or certificate).
    #[error("key {key}: {source}")]
    Fatal {
        key: String,
        #[source]
        source: BackendError,
    },
}

/// The store settings from the flags, with the password file read.
fn backend_config(args: &RegisterArgs) -> Result<BackendConfig, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let kind = match BackendKind::parse(&args.backend) {
        Some(k @ (BackendKind::Etcd | BackendKind::Redis | BackendKind::Zookeeper)) => k,
        _ => {
            errors.push(cli_error(format!(
                "--backend {}: register works with etcd, redis or zookeeper",
                args.backend
            )));
            BackendKind::Etcd
        }
    };
    let nerve = args.nerve.unwrap_or(false);
    if nerve && kind != BackendKind::Zookeeper {
        errors.push(cli_error(format!(
            "--nerve: nerve's format is for the zookeeper backend, not {}",
            kind.name()
        )));
    }
    if kind == BackendKind::Zookeeper && args.docker.from_docker {
        errors.push(cli_error(
            "--from-docker works with etcd or redis (ownership records need a lease or a hash)"
                .into(),
        ));
    }
    let password = crate::config::password(args.password.clone(), args.password_file.as_deref())
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        });
    if args.nodes.is_empty() {
        errors.push(cli_error(format!(
            "the {} backend needs at least one --node",
            kind.name()
        )));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(BackendConfig {
        kind,
        nodes: args.nodes.clone(),
        username: args.username.clone(),
        password,
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        client_ca_keys: args.client_ca_keys.clone(),
        separator: args.separator.clone(),
        sentinel_master: args.sentinel_master.clone(),
        nerve,
        ..Default::default()
    })
}

fn cli_error(message: String) -> ConfigError {
    ConfigError {
        file: PathBuf::from("<command line>"),
        line: None,
        message,
    }
}

/// The registrations the flags (or the service file) describe; every error at once.
pub fn registrations(args: &RegisterArgs) -> Result<Vec<Registration>, Vec<ConfigError>> {
    // `--command-env ""` (or an empty variable) is an empty list, as for `run`.
    let env = CommandEnv::new(
        args.command_env
            .clone()
            .map(|v| v.into_iter().filter(|n| !n.is_empty()).collect()),
    )
    .map_err(|m| vec![cli_error(m.replacen("command_env", "--command-env", 1))])?;
    let env = Arc::new(env);
    let mut regs = match &args.service_file {
        Some(file) => service_file::load(file)?,
        None => flag_registration(args)?,
    };
    if args.nerve == Some(true) {
        let name = nerve_name(args).map_err(|m| vec![cli_error(m)])?;
        regs = regs
            .into_iter()
            .map(|r| as_nerve(r, &name))
            .collect::<Result<_, _>>()
            .map_err(|m| vec![cli_error(m)])?;
    }
    for reg in &mut regs {
        if let Some(check) = reg.check.take() {
            reg.check = Some(CheckSpec {
                probe: check.probe.with_env(&env),
                ..check
            });
        }
    }
    Ok(regs)
}

/// The instance name `--nerve` registers under: `--nerve-name`, else the hostname.
fn nerve_name(args: &RegisterArgs) -> Result<String, String> {
    let name = match &args.nerve_name {
        Some(n) => n.clone(),
        None => nix::unistd::gethostname()
            .map_err(|e| format!("--nerve: the hostname (for --nerve-name): {e}"))?
            .to_string_lossy()
            .into_owned(),
    };
    if name.is_empty()
        || name.len() > 255
        || name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "--nerve-name {name:?}: must be 1-255 characters without '/', spaces or controls"
        ));
    }
    Ok(name)
}

/// `reg` as nerve registers it: the node `<key>/<name>_` (ZooKeeper adds the sequence)
/// holding nerve's JSON for the `host:port` value.
fn as_nerve(reg: Registration, name: &str) -> Result<Registration, String> {
    let bad = || {
        format!(
            "key {}: with --nerve the value must be host:port, not {:?}",
            reg.key, reg.value
        )
    };
    let addr = crate::template::safe::addr(&reg.value).map_err(|_| bad())?;
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let dir = reg.key.trim_end_matches('/');
    Ok(Registration {
        key: format!("{dir}/{name}_"),
        value: crate::backend::nerve::encode(host, port, name),
        ..reg
    })
}

/// The one registration `--key`, `--value`, `--ttl` and the check flags describe.
fn flag_registration(args: &RegisterArgs) -> Result<Vec<Registration>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |m: String| errors.push(cli_error(m));
    let key = args.key.clone().unwrap_or_default();
    if let Err(m) = check_key(&key) {
        err(format!("--key: {m}"));
    }
    let value = args.value.clone().unwrap_or_default();
    let ttl = args.ttl.unwrap_or(0);
    if let Err(m) = check_ttl(ttl) {
        err(format!("--ttl: {m}"));
    }
    let probe = match (&args.check_http, &args.check_tcp, &args.check_cmd) {
        (Some(u), _, _) => Probe::http(u).map(Some),
        (_, Some(a), _) => Probe::tcp(a).map(Some),
        (_, _, Some(c)) => Probe::cmd(c).map(Some),
        _ => Ok(None),
    };
    let probe = probe.unwrap_or_else(|m| {
        err(m);
        None
    });
    let mut dur = |flag: &str, v: &Option<String>, default| match v.as_deref().map(duration::parse)
    {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            err(format!("--{flag} must be more than zero"));
            default
        }
        Some(Err(e)) => {
            err(format!("--{flag}: {e}"));
            default
        }
    };
    let interval = dur("check-interval", &args.check_interval, DEFAULT_INTERVAL);
    let timeout = dur("check-timeout", &args.check_timeout, DEFAULT_TIMEOUT);
    let (rise, fall) = (
        args.rise.unwrap_or(DEFAULT_RISE),
        args.fall.unwrap_or(DEFAULT_FALL),
    );
    if rise == 0 || fall == 0 {
        err("--rise and --fall must be at least 1".into());
    }
    let check = probe.map(|probe| CheckSpec {
        probe,
        interval,
        timeout,
        rise,
        fall,
    });
    let no_check =
        args.check_http.is_none() && args.check_tcp.is_none() && args.check_cmd.is_none();
    if no_check
        && (args.check_interval.is_some()
            || args.check_timeout.is_some()
            || args.rise.is_some()
            || args.fall.is_some())
    {
        err("--check-interval, --check-timeout, --rise and --fall need a check (--check-http, --check-tcp or --check-cmd)".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(vec![Registration {
        key,
        value,
        ttl,
        check,
    }])
}

/// A key must be non-empty and free of control characters.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.chars().any(char::is_control) {
        return Err(format!("{key:?} holds a control character"));
    }
    Ok(())
}

/// A TTL must be at least one second (etcd and Redis count in whole seconds).
fn check_ttl(ttl: u64) -> Result<(), String> {
    if ttl == 0 {
        return Err("the TTL must be at least 1 second".into());
    }
    if ttl > i64::MAX as u64 / 1000 {
        return Err(format!("TTL {ttl} is too large"));
    }
    Ok(())
}

fn init_logging(level: Option<&str>, json: bool) {
    let filter = crate::logging::filter(level.unwrap_or("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `confsync register`: validates, then keeps every registration until SIGTERM/SIGINT.
/// Exit codes: 0 after a clean shutdown, 1 when a key could not be deregistered at the
/// end (it then expires with its TTL), 2 for bad configuration (including a store that
/// rejects the credentials).
pub async fn run(args: RegisterArgs) -> ExitCode {
    let mut errors = Vec::new();
    let json = match args.log_format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(f) => {
            errors.push(cli_error(format!(
                "unknown log format `{f}` (use text or json)"
            )));
            false
        }
    };
    let cfg = backend_config(&args).map_err(|e| errors.extend(e)).ok();
    if args.docker.from_docker {
        return run_from_docker(&args, cfg, errors, json).await;
    }
    let regs = registrations(&args)
        .map_err(|e| errors.extend(e))
        .unwrap_or_default();
    let Some(cfg) = cfg.filter(|_| errors.is_empty()) else {
        return refuse(&errors);
    };
    let shutdown = begin(args.log_level.as_deref(), json);
    exit_code(run_all(&cfg, regs, shutdown).await)
}

/// Prints every configuration error; exit code 2.
fn refuse(errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("confsync register: {} configuration error(s)", errors.len());
    ExitCode::from(2)
}

/// Logging set up, and SIGTERM/SIGINT wired to the shutdown token returned.
fn begin(level: Option<&str>, json: bool) -> CancellationToken {
    init_logging(level, json);
    let shutdown = CancellationToken::new();
    crate::signals::spawn(shutdown.clone());
    shutdown
}

/// `confsync register --from-docker`, with `run`'s exit codes.
async fn run_from_docker(
    args: &RegisterArgs,
    cfg: Option<BackendConfig>,
    mut errors: Vec<ConfigError>,
    json: bool,
) -> ExitCode {
    #[cfg(feature = "docker")]
    let settings = docker_args::settings(args)
        .map_err(|e| errors.extend(e.into_iter().map(cli_error)))
        .ok();
    #[cfg(not(feature = "docker"))]
    let settings: Option<()> = {
        errors.push(cli_error(
            "--from-docker: this confsync was built without the docker feature".into(),
        ));
        None
    };
    let (Some(cfg), Some(settings)) = (cfg, settings.filter(|_| errors.is_empty())) else {
        return refuse(&errors);
    };
    let shutdown = begin(args.log_level.as_deref(), json);
    #[cfg(feature = "docker")]
    let result = docker::run(&cfg, settings, shutdown).await;
    #[cfg(not(feature = "docker"))]
    let result: Result<Outcome, RegisterError> = {
        let _ = (cfg, settings, shutdown);
        Ok(Outcome::Clean)
    };
    exit_code(result)
}

/// The exit code for how registering ended.
fn exit_code(result: Result<Outcome, RegisterError>) -> ExitCode {
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::LeftBehind) => ExitCode::from(1),
        Err(e) => {
            eprintln!("confsync register: {e}");
            ExitCode::from(2)
        }
    }
}

/// Keeps every registration until `shutdown`; a fatal store error in any of them stops
/// all (each deregisters first).
pub async fn run_all(
    cfg: &BackendConfig,
    regs: Vec<Registration>,
    shutdown: CancellationToken,
) -> Result<Outcome, RegisterError> {
    let mut tasks = tokio::task::JoinSet::new();
    for reg in regs {
        let store = match store_for(cfg, &reg).await {
            Ok(s) => s,
            Err(source) => {
                // Those already started deregister before the error is returned.
                shutdown.cancel();
                while tasks.join_next().await.is_some() {}
                return Err(RegisterError::Fatal {
                    key: reg.key,
                    source,
                });
            }
        };
        let shutdown = shutdown.clone();
        tasks.spawn(async move { keeper::keep(reg, store, shutdown).await });
    }
    let mut outcome = Outcome::Clean;
    let mut fatal = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(Outcome::Clean)) => {}
            Ok(Ok(Outcome::LeftBehind)) => outcome = Outcome::LeftBehind,
            Ok(Err(e)) => {
                shutdown.cancel();
                fatal.get_or_insert(e);
            }
            Err(e) => {
                tracing::error!(error = %e, "a registration task failed");
                outcome = Outcome::LeftBehind;
            }
        }
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// The store client for one registration.
#[cfg_attr(
    not(any(feature = "etcd", feature = "redis", feature = "zookeeper")),
    allow(unused_variables)
)]
async fn store_for(
    cfg: &BackendConfig,
    reg: &Registration,
) -> Result<Box<dyn keeper::Store>, BackendError> {
    match cfg.kind {
        #[cfg(feature = "etcd")]
        BackendKind::Etcd => Ok(Box::new(etcd::EtcdStore::new(cfg, reg).await?)),
        #[cfg(feature = "redis")]
        BackendKind::Redis => Ok(Box::new(redis::RedisStore::new(cfg, reg)?)),
        #[cfg(feature = "zookeeper")]
        BackendKind::Zookeeper => Ok(Box::new(zookeeper::ZkStore::new(cfg, reg)?)),
        #[allow(unreachable_patterns)]
        BackendKind::Etcd | BackendKind::Redis | BackendKind::Zookeeper => {
            Err(crate::backend::not_built(cfg.kind))
        }
        other => Err(BackendError::fatal(
            other.name(),
            "-",
            "register works with etcd, redis or zookeeper",
        )),
    }
}

#[cfg(test)]
mod tests;
