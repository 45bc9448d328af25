//! The flags of `confsync register --from-docker` (flattened into
//! [`RegisterArgs`](super::RegisterArgs)).

/// Flags of the Docker registrar. `--docker-node` is the engine; `--node` stays the store.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DockerArgs {
    /// Register every running (filtered) container of a Docker engine instead of one --key
    #[arg(long, conflicts_with_all = ["key", "value", "service_file", "check"])]
    pub from_docker: bool,
    /// The Docker engine: unix:///path/to/docker.sock or tcp://HOST:PORT
    /// [default: unix:///var/run/docker.sock]
    #[arg(long, env = "CONFSYNC_DOCKER_NODE", requires = "from_docker")]
    pub docker_node: Option<String>,
    /// Only containers with this label (key or key=value); repeat to require several
    #[arg(long, requires = "from_docker")]
    pub docker_label: Vec<String>,
    /// Each container's key; placeholders {service} {name} {id} {port} {host}
    /// [default: /app/servers/{name}]
    #[arg(long, requires = "from_docker")]
    pub key_template: Option<String>,
    /// Each container's value, same placeholders [default: {host}:{port}]
    #[arg(long, requires = "from_docker")]
    pub value_template: Option<String>,
    /// The address other hosts reach this host's published ports on (replaces 0.0.0.0
    /// and :: bindings) [default: 127.0.0.1]
    #[arg(long, requires = "from_docker")]
    pub docker_host_ip: Option<String>,
    /// This registrar's name in its ownership records (unique per Docker host)
    /// [default: the hostname]
    #[arg(long, env = "CONFSYNC_REGISTRAR_ID", requires = "from_docker")]
    pub registrar_id: Option<String>,
}

/// The Docker registrar's settings, checked.
#[cfg(feature = "docker")]
#[derive(Debug)]
pub struct DockerSettings {
    pub client: crate::docker::DockerClient,
    pub filters: Vec<crate::docker::LabelFilter>,
    pub key: super::docker_template::Template,
    pub value: super::docker_template::Template,
    pub host_ip: std::net::IpAddr,
    pub ttl: u64,
    pub owner: super::docker_owner::Owner,
}

/// The default `--key-template`.
#[cfg(feature = "docker")]
pub const DEFAULT_KEY_TEMPLATE: &str = "/app/servers/{name}";
/// The default `--value-template`.
#[cfg(feature = "docker")]
pub const DEFAULT_VALUE_TEMPLATE: &str = "{host}:{port}";

/// Checks the Docker registrar's flags; every error at once.
#[cfg(feature = "docker")]
pub fn settings(args: &super::RegisterArgs) -> Result<DockerSettings, Vec<String>> {
    use super::docker_owner::Owner;
    use super::docker_template::{Template, Values};
    let d = &args.docker;
    let mut errors = Vec::new();
    let opts = crate::docker::ConnectOptions::new(d.docker_node.as_deref());
    let client = crate::docker::DockerClient::connect(&opts)
        .map_err(|e| errors.push(format!("--docker-node: {e}")))
        .ok();
    let mut filters = Vec::new();
    for f in &d.docker_label {
        match f.parse() {
            Ok(f) => filters.push(f),
            Err(e) => errors.push(e),
        }
    }
    let mut template = |flag, given: &Option<String>, default| {
        Template::parse(flag, given.as_deref().unwrap_or(default))
            .map_err(|e| errors.push(e))
            .ok()
    };
    let key = template("--key-template", &d.key_template, DEFAULT_KEY_TEMPLATE);
    let value = template(
        "--value-template",
        &d.value_template,
        DEFAULT_VALUE_TEMPLATE,
    );
    if let Some(k) = &key {
        // Plain values show what the literal text does to the key's shape.
        let plain = Values {
            service: Some("s".into()),
            name: "n".into(),
            id: "i".into(),
            port: Some("1".into()),
            host: Some("h".into()),
        };
        let sample = k.expand(&plain).unwrap_or_default();
        let bad_segment = sample
            .split('/')
            .skip(1)
            .any(|s| s.is_empty() || s == "." || s == "..");
        if !k.has_placeholder() {
            errors.push(
                "--key-template has no placeholder: every container would get the same key".into(),
            );
        } else if !sample.starts_with('/') || bad_segment {
            errors.push(format!(
                "--key-template {:?}: must start with `/` and have no empty, `.` or `..` segment",
                d.key_template.as_deref().unwrap_or(DEFAULT_KEY_TEMPLATE)
            ));
        } else if let Err(m) = super::check_key(&sample) {
            errors.push(format!("--key-template: {m}"));
        }
    }
    let host_ip = match d.docker_host_ip.as_deref().unwrap_or("127.0.0.1").parse() {
        Ok(ip) => ip,
        Err(_) => {
            errors.push(format!(
                "--docker-host-ip {:?} is not an IP address",
                d.docker_host_ip.as_deref().unwrap_or_default()
            ));
            std::net::Ipv4Addr::LOCALHOST.into()
        }
    };
    let ttl = args.ttl.unwrap_or(0);
    if let Err(m) = super::check_ttl(ttl) {
        errors.push(format!("--ttl: {m}"));
    }
    let owner = match &d.registrar_id {
        Some(id) => Owner::new(id),
        None => Owner::hostname(),
    }
    .map_err(|e| errors.push(e))
    .ok();
    match (client, key, value, owner) {
        (Some(client), Some(key), Some(value), Some(owner)) if errors.is_empty() => {
            Ok(DockerSettings {
                client,
                filters,
                key,
                value,
                host_ip,
                ttl,
                owner,
            })
        }
        _ => Err(errors),
    }
}
