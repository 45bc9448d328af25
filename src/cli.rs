//! The command line: `run`, `check`, `render`, `convert`, `register`, `status`, and
//! `completions` and `man` (generated from these definitions by [`crate::manual`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Settings;

/// Keeps HAProxy and nginx configuration in step with etcd, Redis, ZooKeeper, Docker, env
/// vars or files.
#[derive(Debug, Parser)]
#[command(name = "confsync", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration lives.
#[derive(Debug, Clone, Args)]
pub struct ConfArgs {
    /// Directory holding confsync.toml, conf.d/ and templates/
    #[arg(long, env = "CONFSYNC_CONFDIR", default_value = "/etc/confsync")]
    pub confdir: PathBuf,
    /// Daemon settings file [default: CONFDIR/confsync.toml when it exists]
    #[arg(long, env = "CONFSYNC_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keep every resource's destination in step with the backend
    Run {
        #[command(flatten)]
        conf: ConfArgs,
        #[command(flatten)]
        settings: Settings,
    },
    /// Validate confsync.toml, every resource and every template; touch nothing
    Check {
        #[command(flatten)]
        conf: ConfArgs,
        #[command(flatten)]
        settings: Settings,
    },
    /// Print one resource's rendered output
    Render {
        #[command(flatten)]
        conf: ConfArgs,
        /// The resource (its file name in conf.d/ without .toml)
        #[arg(long)]
        resource: String,
        /// Render from this YAML/JSON/TOML file instead of the backend
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Convert the resources' Go templates to Tera (NAME.tera); touch nothing without --write
    Convert {
        #[command(flatten)]
        conf: ConfArgs,
        /// Write NAME.tera next to each template and point its resources at it
        #[arg(long)]
        write: bool,
        /// Read conf.d as confd does (the confdir of a confd, run through confd's command
        /// line): every *toml below it, keys in any case, unknown keys ignored
        #[arg(long)]
        confd: bool,
        #[command(flatten)]
        settings: Settings,
    },
    /// Keep this instance's key (with --from-docker, every running container's) in etcd,
    /// Redis or ZooKeeper while it is alive and healthy
    Register {
        #[command(flatten)]
        args: crate::register::RegisterArgs,
    },
    /// Print the completion script for a shell
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page confsync.1; with --dir, write it and one page per subcommand
    Man {
        /// Write confsync.1, confsync-run.1, ... into this directory (created if missing)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print a running daemon's status page (its /status.json) as tables
    Status {
        /// The daemon's --metrics-addr (0.0.0.0:PORT is asked on 127.0.0.1:PORT)
        #[arg(long, env = "CONFSYNC_METRICS_ADDR", default_value = "127.0.0.1:9117")]
        metrics_addr: String,
        /// Print the JSON as the daemon served it
        #[arg(long)]
        json: bool,
    },
}
