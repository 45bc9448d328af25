//! The flags of `confsync register` (their `Debug` output never shows the password: it
//! is a [`crate::config::settings::Secret`]).

use std::path::PathBuf;

/// Flags of `confsync register`. The store flags have the same names and `CONFSYNC_*`
/// variables as `run`'s (`run`'s other settings mean nothing here, so they are not taken).
#[derive(Debug, Clone, clap::Args)]
pub struct RegisterArgs {
    /// Store: etcd, redis or zookeeper
    #[arg(long, env = "CONFSYNC_BACKEND")]
    pub backend: String,
    /// Store endpoint; repeat for every member (etcd URL, Redis host:port[/db], Sentinels,
    /// ZooKeeper host:port or a connect string host1:2181,host2:2181/chroot)
    #[arg(long = "node", env = "CONFSYNC_NODE", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Store user (etcd user, Redis ACL user)
    #[arg(long, env = "CONFSYNC_USERNAME")]
    pub username: Option<String>,
    /// Store password (prefer CONFSYNC_PASSWORD or --password-file; never logged)
    #[arg(long, env = "CONFSYNC_PASSWORD", hide_env_values = true)]
    pub password: Option<crate::config::settings::Secret>,
    /// File holding the store password
    #[arg(long, env = "CONFSYNC_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// TLS client certificate (PEM)
    #[arg(long, env = "CONFSYNC_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// TLS client key (PEM)
    #[arg(long, env = "CONFSYNC_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// TLS CA certificates (PEM) that sign the server's certificate
    #[arg(long, env = "CONFSYNC_CLIENT_CA_KEYS")]
    pub client_ca_keys: Option<PathBuf>,
    /// Redis: the separator that stands for `/` in stored keys [default: /]
    #[arg(long, env = "CONFSYNC_SEPARATOR")]
    pub separator: Option<String>,
    /// Redis: the nodes are Sentinels; register on the master with this name
    #[arg(long, env = "CONFSYNC_SENTINEL_MASTER")]
    pub sentinel_master: Option<String>,
    /// The key to register (e.g. /app/servers/web1)
    #[arg(
        long,
        required_unless_present_any = ["service_file", "from_docker"],
        conflicts_with = "service_file"
    )]
    pub key: Option<String>,
    /// The value to register under the key (e.g. 127.0.0.1:8001)
    #[arg(long, required_unless_present_any = ["service_file", "from_docker"])]
    pub value: Option<String>,
    /// Seconds the key outlives this process if it dies without deregistering (ZooKeeper:
    /// the session timeout, which the ensemble bounds to 2-20 ticks)
    #[arg(long, required_unless_present = "service_file")]
    pub ttl: Option<u64>,
    /// Health check: GET this http:// URL; 2xx and 3xx pass (plain HTTP only)
    #[arg(long, group = "check")]
    pub check_http: Option<String>,
    /// Health check: a TCP connect to HOST:PORT
    #[arg(long, group = "check")]
    pub check_tcp: Option<String>,
    /// Health check: a shell command (`/bin/sh -c`); exit 0 passes
    #[arg(long, group = "check")]
    pub check_cmd: Option<String>,
    /// Time between two checks, e.g. "500ms", "2s" [default: 2s]
    #[arg(long)]
    pub check_interval: Option<String>,
    /// A check still running after this long fails [default: 2s]
    #[arg(long)]
    pub check_timeout: Option<String>,
    /// Passing checks in a row that register an unhealthy instance again [default: 2]
    #[arg(long)]
    pub rise: Option<u32>,
    /// Failing checks in a row that deregister a healthy instance [default: 2]
    #[arg(long)]
    pub fall: Option<u32>,
    /// ZooKeeper: register as nerve does, for synapse: an ephemeral sequential node
    /// `<key>/<name>_<seq>` holding {"host":..,"port":..,"name":..}; --key is the
    /// service directory and the value must be host:port
    #[arg(long, env = "CONFSYNC_NERVE", num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub nerve: Option<bool>,
    /// With --nerve: the instance's name (nerve's instance_id) [default: the hostname]
    #[arg(long, env = "CONFSYNC_NERVE_NAME")]
    pub nerve_name: Option<String>,
    /// TOML file with several registrations (`[[service]]` tables) instead of --key
    #[arg(long, conflicts_with_all = ["check", "check_interval", "check_timeout", "rise", "fall"])]
    pub service_file: Option<PathBuf>,
    /// Variables a --check-cmd (or a service file's `cmd`) sees, by NAME or PREFIX*
    /// (comma-separated); CONFSYNC_* and CONFD_* never reach it [default: the whole
    /// environment but those]
    #[arg(long, env = "CONFSYNC_COMMAND_ENV", value_delimiter = ',')]
    pub command_env: Option<Vec<String>>,
    /// Log level: error, warn, info, debug, trace [default: info]
    #[arg(long, env = "CONFSYNC_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "CONFSYNC_LOG_FORMAT")]
    pub log_format: Option<String>,
    #[command(flatten)]
    pub docker: super::docker_args::DockerArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: RegisterArgs,
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let cli = Cli::try_parse_from([
            "register",
            "--backend",
            "etcd",
            "--password",
            "hunter2-reg",
            "--key",
            "/k",
            "--value",
            "v",
            "--ttl",
            "5",
        ])
        .unwrap();
        let text = format!("{:?} {:#?}", cli.args, cli.args);
        assert!(!text.contains("hunter2") && text.contains("***"), "{text}");
    }
}
