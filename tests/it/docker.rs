//! The Docker engine: the client and model against a real dockerd (the harness in
//! `support/docker.rs`), and the docker backend end to end: S3 (HAProxy follows
//! containers), health, label filters, renames and an engine restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use confsync::docker::{ConnectOptions, DockerClient, LabelFilter, list_running};

use crate::daemon::http_get;
use crate::support::docker::{Dockerd, RunSpec, WEB_PORT, shared, unique_name};
use crate::support::{
    Proc, confsync, free_port, require_program, wait_file, wait_for, wait_port, write,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn listing_sees_a_running_container_with_its_published_port() {
    let d = shared();
    let name = unique_name("web");
    let team = unique_name("team");
    d.run(&RunSpec::web(&name).label("team", &team));
    let port = d.port(&name, WEB_PORT);
    let page = wait_for(Duration::from_secs(10), || {
        http_get(port, "/").filter(|(code, _)| *code == 200)
    });
    assert_eq!(page.map(|p| p.1.trim().to_string()), Some(name.clone()));

    let client = DockerClient::connect(&ConnectOptions::new(Some(&d.node()))).expect("client");
    let filter: LabelFilter = format!("team={team}").parse().unwrap();
    let found = rt().block_on(async {
        let engine = client.engine().await.expect("engine");
        list_running(&client, &engine, &[filter], "127.0.0.1".parse().unwrap()).await
    });
    let found = found.expect("listing");
    assert_eq!(found.len(), 1, "{found:?}");
    let c = &found[0];
    assert_eq!(c.name, name);
    assert_eq!(c.service().expect("service").service, "confsync-test");
    assert_eq!(
        c.service().unwrap().addr.to_string(),
        format!("127.0.0.1:{port}")
    );
    d.rm(&name);
}

/// Bound on one expected change reaching a file or the traffic.
const LIMIT: Duration = Duration::from_secs(15);

/// A config dir with a `state` resource listing every container's health and every
/// service entry as `key=value` lines in `state.txt` (and, with [`Conf::haproxy`], the
/// shipped S3 HAProxy resource).
struct Conf {
    dir: tempfile::TempDir,
}

impl Conf {
    fn new() -> Conf {
        let dir = crate::support::tempdir();
        write(
            dir.path(),
            "templates/state.tmpl",
            "{% for s in gets(key=\"/containers/*/health\") %}{{ s.key }}={{ s.value }}\n{% endfor %}\
             {% for s in gets(key=\"/services/*/*\") %}{{ s.key }}={{ s.value }}\n{% endfor %}",
        );
        write(
            dir.path(),
            "conf.d/state.toml",
            &format!(
                "[template]\nsrc = \"state.tmpl\"\ndest = \"{}\"\nprefix = \"/docker\"\n\
                 keys = [\"/containers\", \"/services\"]\n",
                dir.path().join("state.txt").display()
            ),
        );
        Conf { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.path().join("state.txt")
    }

    /// Waits until `state.txt` satisfies `pred`; panics with the log otherwise.
    fn wait_state(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_file(&self.state(), LIMIT, pred).unwrap_or_else(|| {
            panic!(
                "{what} within {LIMIT:?}; state.txt:\n{}\nconfsync log:\n{}",
                std::fs::read_to_string(self.state()).unwrap_or_default(),
                std::fs::read_to_string(self.log()).unwrap_or_default()
            )
        })
    }

    fn log(&self) -> PathBuf {
        self.path().join("confsync.log")
    }

    /// `confsync run --backend docker --watch` on `node`, seeing only label `t=tag`.
    fn run(&self, node: &str, tag: &str) -> Proc {
        let mut cmd = confsync();
        cmd.args(["run", "--confdir"]).arg(self.path()).args([
            "--backend",
            "docker",
            "--node",
            node,
            "--docker-label",
            &format!("t={tag}"),
            "--watch",
            "--wait",
            "20ms:200ms",
            "--log-level",
            "debug",
        ]);
        Proc::spawn("confsync", cmd, &self.log())
    }
}

/// A container of service `web` seen by the confsync of tag `tag`.
fn web(name: &str, tag: &str) -> RunSpec {
    RunSpec::web(name)
        .label("t", tag)
        .label("confsync.service", "web")
}

/// Bodies of `n` GETs through `port` (failed requests left out).
fn bodies(port: u16, n: usize) -> Vec<String> {
    (0..n)
        .filter_map(|_| http_get(port, "/"))
        .filter(|(code, _)| *code == 200)
        .map(|(_, b)| b.trim().to_string())
        .collect()
}

#[test]
fn s3_haproxy_follows_containers() {
    let haproxy = require_program("haproxy", "haproxy");
    let d = shared();
    let tag = unique_name("s3");
    let conf = Conf::new();
    let p = conf.path();
    let http = free_port();
    let cfg = p.join("haproxy.cfg");
    let pidfile = p.join("haproxy.pid");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/s3-docker-haproxy");
    let tpl = std::fs::read_to_string(example.join("haproxy.cfg.tmpl")).unwrap();
    write(
        p,
        "templates/haproxy.cfg.tmpl",
        &tpl.replace("127.0.0.1:8080", &format!("127.0.0.1:{http}")),
    );
    let resource = std::fs::read_to_string(example.join("haproxy.toml")).unwrap();
    let resource = resource
        .replace("/etc/haproxy/haproxy.cfg", &cfg.to_string_lossy())
        .replace("haproxy -c", &format!("{} -c", haproxy.display()))
        .replace("/run/haproxy.pid", &pidfile.to_string_lossy());
    write(p, "conf.d/haproxy.toml", &resource);
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             frontend www\n  bind 127.0.0.1:{http}\n"
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(&haproxy);
    cmd.arg("-W").arg("-f").arg(&cfg).arg("-p").arg(&pidfile);
    let _haproxy = Proc::spawn("haproxy", cmd, &p.join("haproxy.log"));
    assert!(wait_port(http, LIMIT), "haproxy listens on {http}");
    assert!(wait_for(LIMIT, || pidfile.exists().then_some(())).is_some());

    let names: Vec<String> = (0..3).map(|i| unique_name(&format!("w{i}"))).collect();
    for n in &names {
        d.run(&web(n, &tag));
    }
    let _confsync = conf.run(&d.node(), &tag);
    let show = || {
        format!(
            "\nconfsync log:\n{}\nhaproxy.cfg:\n{}",
            std::fs::read_to_string(conf.log()).unwrap_or_default(),
            std::fs::read_to_string(&cfg).unwrap_or_default()
        )
    };
    for n in &names {
        let seen = wait_for(LIMIT, || bodies(http, 6).contains(n).then_some(()));
        assert!(seen.is_some(), "{n} takes traffic{}", show());
    }

    // A container whose healthcheck fails is listed, but never in the service view.
    let sick = unique_name("sick");
    d.run(&web(&sick, &tag).health("false"));
    conf.wait_state("the sick container is unhealthy", |s| {
        s.contains(&format!("/containers/{sick}/health=unhealthy"))
    });
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        !text.contains(&sick),
        "unhealthy container in haproxy.cfg:\n{text}"
    );

    // Stop one: it leaves the config and the traffic.
    let old_port = d.port(&names[0], WEB_PORT);
    d.stop(&names[0]);
    let gone = wait_for(LIMIT, || {
        let s = bodies(http, 6);
        (s.len() == 6 && !s.contains(&names[0])).then_some(())
    });
    assert!(gone.is_some(), "{} leaves the traffic{}", names[0], show());
    // HAProxy redispatches away from a dead server at once; the config follows the event.
    assert!(
        wait_file(&cfg, LIMIT, |s| !s.contains(&names[0])).is_some(),
        "{} leaves haproxy.cfg{}",
        names[0],
        show()
    );

    // Start it again: back, on its new port.
    d.start_container(&names[0]);
    let new_port = d.port(&names[0], WEB_PORT);
    assert!(
        wait_file(&cfg, LIMIT, |s| s
            .contains(&format!("127.0.0.1:{new_port}")))
        .is_some(),
        "{} back on port {new_port} (was {old_port}){}",
        names[0],
        show()
    );
    let back = wait_for(LIMIT, || bodies(http, 6).contains(&names[0]).then_some(()));
    assert!(back.is_some(), "{} takes traffic again{}", names[0], show());
    for n in names.iter().chain([&sick]) {
        d.rm(n);
    }
}

#[test]
fn label_filters_and_renames() {
    let d = shared();
    let tag = unique_name("lf");
    let conf = Conf::new();
    let mine = unique_name("mine");
    let other = unique_name("other");
    d.run(&web(&mine, &tag));
    d.run(&web(&other, "someone-else"));
    let _confsync = conf.run(&d.node(), &tag);
    let port = d.port(&mine, WEB_PORT);
    let text = conf.wait_state("the labelled container is listed", |s| {
        s.contains(&format!("/services/web/{mine}=127.0.0.1:{port}"))
    });
    assert!(
        !text.contains(&other),
        "the filter leaves others out:\n{text}"
    );

    let renamed = unique_name("renamed");
    d.rename(&mine, &renamed);
    let text = conf.wait_state("the rename arrives", |s| {
        s.contains(&format!("/services/web/{renamed}=127.0.0.1:{port}"))
    });
    assert!(!text.contains(&mine), "the old name is gone:\n{text}");

    // A container that starts later with the label arrives; killing it removes it.
    let late = unique_name("late");
    d.run(&web(&late, &tag));
    conf.wait_state("a later container arrives", |s| s.contains(&late));
    d.kill(&late);
    conf.wait_state("a killed container leaves", |s| !s.contains(&late));
    for n in [&renamed, &other, &late] {
        d.rm(n);
    }
}

#[test]
fn engine_restart_while_watching_loses_nothing() {
    let d = Dockerd::start();
    let tag = unique_name("er");
    let conf = Conf::new();
    let keep = unique_name("keep");
    let mut spec = web(&keep, &tag);
    spec.restart = Some("always".into());
    d.run(&spec);
    let _confsync = conf.run(&d.node(), &tag);
    let port = d.port(&keep, WEB_PORT);
    conf.wait_state("the container is listed", |s| {
        s.contains(&format!("/services/web/{keep}=127.0.0.1:{port}"))
    });

    d.stop_daemon();
    let seen = wait_for(LIMIT, || {
        let log = std::fs::read_to_string(conf.log()).unwrap_or_default();
        log.contains("docker engine unreachable").then_some(())
    });
    assert!(
        seen.is_some(),
        "confsync notices the engine is gone:\n{}",
        std::fs::read_to_string(conf.log()).unwrap_or_default()
    );

    d.restart_daemon();
    let new_port = wait_for(LIMIT, || {
        let out = d.cli(&["port", &keep, &format!("{WEB_PORT}/tcp")]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:")?.trim().parse::<u16>().ok())
    })
    .expect("the container restarts with the engine");
    conf.wait_state("the restarted container's new port arrives", |s| {
        s.contains(&format!("/services/web/{keep}=127.0.0.1:{new_port}"))
    });
    let after = unique_name("after");
    d.run(&web(&after, &tag));
    conf.wait_state("a container started after the restart arrives", |s| {
        s.contains(&format!("/services/web/{after}="))
    });
}
