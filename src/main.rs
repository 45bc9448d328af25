//! `confsync` entry point: parse, set up logging, run; errors become exit codes
//! (0 success, 1 a render, check, reload or backend read failed, 2 bad configuration).
//! Invoked as `confd` (or with a single-dash long flag first), it takes confd's command
//! line instead and runs the same way (see `confsync::confd`).

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use confsync::cli::{Cli, Command, ConfArgs};
use confsync::confd;
use confsync::config::{self, ConfigError, LogFormat, ResourceSet, RunConfig, Settings};
use confsync::daemon::{self, DaemonError};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    limit_malloc_arenas();
    // As a container's PID 1: an init that reaps orphans stays behind; the daemon goes on.
    if let Some(code) = confsync::exec::reap::init_if_pid1() {
        return ExitCode::from(code);
    }
    let argv: Vec<OsString> = std::env::args_os().collect();
    if confd::detect(&argv) {
        return confd_main(&argv[1..]);
    }
    let matches = <Cli as clap::CommandFactory>::command().get_matches_from(argv);
    warn_password_on_command_line(&matches);
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        match cli.command {
            Command::Run { conf, settings } => {
                run(Arc::new(move || {
                    load(&conf, settings.clone()).map(|(r, s)| (r, s, Vec::new()))
                }))
                .await
            }
            Command::Check { conf, settings } => check(conf, settings),
            Command::Render {
                conf,
                resource,
                data,
                settings,
            } => render(conf, resource, data, settings).await,
            Command::Convert {
                conf,
                write,
                confd,
                settings,
            } => convert(conf, write, confd, settings),
            Command::Register { args } => confsync::register::run(args).await,
            Command::Completions { shell } => completions(shell),
            Command::Man { dir } => man(dir),
            Command::Status { metrics_addr, json } => status(&metrics_addr, json).await,
        }
    })
}

/// Warns (once, at start) when `--password` was given on the command line, where every
/// user of the host can read it (`ps`, `/proc/PID/cmdline`). `CONFSYNC_PASSWORD` and
/// `--password-file` fill the same setting and stay quiet.
fn warn_password_on_command_line(matches: &clap::ArgMatches) {
    let Some((name, sub)) = matches.subcommand() else {
        return;
    };
    let on_command_line = sub.ids().any(|id| id.as_str() == "password")
        && sub.value_source("password") == Some(clap::parser::ValueSource::CommandLine);
    if on_command_line {
        eprintln!(
            "confsync {name}: warning: --password is visible to every user of this host in the process list; use CONFSYNC_PASSWORD or --password-file instead"
        );
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("confsync: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

/// confd's command line: usage errors exit 2 with confd's usage text, as Go's `flag`
/// package does; a run goes through the same [`run`] as `confsync run`.
fn confd_main(args: &[OsString]) -> ExitCode {
    let Some(args) = args
        .iter()
        .map(|a| a.to_str().map(String::from))
        .collect::<Option<Vec<String>>>()
    else {
        eprintln!("confd: an argument is not valid UTF-8");
        return ExitCode::from(2);
    };
    match confd::parse(&args) {
        Err(e) => {
            eprintln!("{e}");
            eprint!("{}", confd::usage());
            ExitCode::from(2)
        }
        Ok(confd::Parsed::Help) => {
            eprint!("{}", confd::usage());
            ExitCode::SUCCESS
        }
        Ok(confd::Parsed::Version) => {
            println!("{}", confd::version());
            ExitCode::SUCCESS
        }
        Ok(confd::Parsed::Run(flags)) => {
            if *flags.origin("password") == confd::spec::Origin::Flag {
                eprintln!(
                    "confd: warning: -password is visible to every user of this host in the process list; put it in confd.toml instead"
                );
            }
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let c = confd::Confd::new(flags);
            rt.block_on(run(Arc::new(move || {
                c.load().map(|l| (l.run, l.resources, l.warnings))
            })))
        }
    }
}

/// Loads a run's settings and resources, with warnings to log once logging is up; called
/// at start and again on SIGHUP.
type Loader = Arc<
    dyn Fn() -> Result<(RunConfig, ResourceSet, Vec<ConfigError>), Vec<ConfigError>> + Send + Sync,
>;

fn log_warnings(warnings: &[ConfigError]) {
    for w in warnings {
        tracing::warn!("{w}");
    }
}

/// One malloc arena: memory freed by one thread (a listing parsed on a blocking thread)
/// is reused by the others (the render), so peak RSS stays near the live heap and a
/// daemon that runs for months does not grow per-thread arenas.
///
/// A fixed mmap threshold of 1 MiB: glibc otherwise raises it to the size of the largest
/// block freed so far (a data file read whole, a rendered 100,000-line config), after
/// which such blocks come from the heap, where each growth step of the next output buffer
/// leaves a hole behind. Above 1 MiB a block is mapped, grows in place, and goes back to
/// the system when freed.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only adjusts glibc's allocator settings; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn report(errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("confsync: {} configuration error(s)", errors.len());
    ExitCode::from(2)
}

/// The run settings and the resources, with every error of both reported together.
fn load(conf: &ConfArgs, settings: Settings) -> Result<(RunConfig, ResourceSet), Vec<ConfigError>> {
    load_checking(conf, settings, true)
}

/// [`load`]; with `backends` false the backends the resources use need not be usable
/// (`convert` and `render --data` read none).
fn load_checking(
    conf: &ConfArgs,
    settings: Settings,
    backends: bool,
) -> Result<(RunConfig, ResourceSet), Vec<ConfigError>> {
    let run = config::run_config(&conf.confdir, conf.config_file.as_deref(), settings);
    let prefix = run.as_ref().map(|r| r.prefix.clone()).unwrap_or_default();
    let (dir, file) = (&conf.confdir, conf.config_file.as_deref());
    let set = config::load_resources_with(dir, &prefix, config::Dialect::Confsync, file);
    let (r, s) = config::both(run, set.map(|(set, _warnings)| set))?;
    if !backends {
        return Ok((r, s));
    }
    let errors = r.check_backends(&s.resources);
    if errors.is_empty() {
        Ok((r, s))
    } else {
        Err(errors)
    }
}

fn init_logging(cfg: &RunConfig) {
    let filter = confsync::logging::filter(&cfg.log_level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cfg.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(loader: Loader) -> ExitCode {
    let (cfg, set, warnings) = match loader() {
        Ok(v) => v,
        Err(errors) => return report(&errors),
    };
    init_logging(&cfg);
    log_warnings(&warnings);
    let onetime = cfg.onetime;
    let shutdown = CancellationToken::new();
    confsync::signals::spawn(shutdown.clone());
    let services = daemon::Services {
        metrics: confsync::metrics::Metrics::new(),
        health: confsync::http::Health::new(),
        status: confsync::status::Status::new(),
        notifier: Arc::new(confsync::systemd::Notifier::from_env()),
    };
    // SIGHUP reads everything again: the same flags and env, the files as they are now.
    let reload: daemon::Reload = Arc::new(move || {
        loader().map(|(r, s, w)| {
            log_warnings(&w);
            (r, s)
        })
    });
    match daemon::run(cfg, set, services, reload, shutdown).await {
        Ok(s) if onetime && s.failed > 0 => {
            eprintln!("confsync: {} resource(s) failed", s.failed);
            ExitCode::from(1)
        }
        Ok(daemon::RunSummary {
            exec_status: Some(code),
            ..
        }) => ExitCode::from(code),
        Ok(_) => ExitCode::SUCCESS,
        Err(e @ (DaemonError::Fatal(..) | DaemonError::Bind(_))) => {
            eprintln!("confsync: {e}");
            ExitCode::from(2)
        }
        Err(e @ DaemonError::Unreachable(..)) => {
            eprintln!("confsync: {e}");
            ExitCode::from(1)
        }
    }
}

/// `confsync completions SHELL`: the script on stdout.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use std::io::Write as _;
    let script = confsync::manual::completions(shell);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confsync completions {shell}: writing to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// `confsync man`: the page on stdout, or every page written into `dir`.
fn man(dir: Option<std::path::PathBuf>) -> ExitCode {
    let done = match dir {
        None => confsync::manual::print_man(&mut std::io::stdout().lock())
            .map_err(|e| format!("writing the man page to stdout: {e}")),
        Some(dir) => confsync::manual::write_man_pages(&dir).map(|_| ()),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confsync man: {e}");
            ExitCode::from(1)
        }
    }
}

fn check(conf: ConfArgs, settings: Settings) -> ExitCode {
    match load(&conf, settings) {
        Ok((_, set)) => {
            println!(
                "ok: {} resource(s) and their templates in {}",
                set.resources.len(),
                conf.confdir.display()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => report(&errors),
    }
}

/// `confsync status`: the daemon's report as tables (or its JSON); 1 when nothing answers.
async fn status(addr: &str, json: bool) -> ExitCode {
    match confsync::status::fetch::fetch(addr).await {
        Ok(report) if json => match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("confsync status: {e}");
                ExitCode::from(1)
            }
        },
        Ok(report) => {
            print!("{}", confsync::status::table::render(&report));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("confsync status: {e}");
            ExitCode::from(1)
        }
    }
}

/// `confsync convert`: 0 when every Go template converted, 1 when one did not (or a
/// file could not be written), 2 for bad configuration.
fn convert(conf: ConfArgs, write: bool, confd: bool, settings: Settings) -> ExitCode {
    let loaded = if confd {
        // Only the templates matter here: no prefix, and no warnings about keys confd ignores.
        config::load_resources_as(&conf.confdir, "", config::Dialect::Confd).map(|(s, _)| s)
    } else {
        load_checking(&conf, settings, false).map(|(_, s)| s)
    };
    let set = match loaded {
        Ok(set) => set,
        Err(errors) => return report(&errors),
    };
    let run = confsync::template::convert::command::run(
        &conf.confdir,
        &set,
        write,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    match run {
        Ok(summary) => ExitCode::from(summary.exit_code()),
        Err(e) => {
            eprintln!("error: writing the report: {e}");
            ExitCode::from(1)
        }
    }
}

async fn render(
    conf: ConfArgs,
    name: String,
    data: Option<std::path::PathBuf>,
    settings: Settings,
) -> ExitCode {
    let (cfg, set) = match load_checking(&conf, settings, data.is_none()) {
        Ok(v) => v,
        Err(errors) => return report(&errors),
    };
    let Some(res) = set.resources.iter().find(|r| r.name == name) else {
        let names: Vec<&str> = set.resources.iter().map(|r| r.name.as_str()).collect();
        eprintln!(
            "error: no resource `{name}` in {} (have: {})",
            conf.confdir.join("conf.d").display(),
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let kvs = match data {
        Some(path) => match confsync::backend::file::load(&[path]) {
            Ok(kvs) => kvs,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            let Some(bcfg) = cfg.backends.get(&res.backend) else {
                eprintln!(
                    "error: resource `{name}` uses backend `{}`, which is not configured",
                    res.backend
                );
                return ExitCode::from(2);
            };
            let listed = match confsync::backend::build(bcfg).await {
                Ok(b) => b.list(&res.key_prefixes()).await,
                Err(e) => Err(e),
            };
            match listed {
                Ok(s) => s.kvs,
                Err(e) => {
                    eprintln!("error: backend: {e}");
                    return ExitCode::from(if e.is_transient() { 1 } else { 2 });
                }
            }
        }
    };
    match confsync::resource::render(res, &set.engine, Arc::new(kvs), None, None) {
        Ok(r) => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(&r.text).and_then(|()| out.flush()) {
                eprintln!("error: writing the output: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
