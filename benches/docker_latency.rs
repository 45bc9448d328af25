//! Whole-process latency benchmark for the docker backend (issue 13): a private dockerd
//! (the integration tests' harness), `confsync run --backend docker --watch` rendering
//! the service view into a file, with a reload command that counts its runs. Run as
//! root with `cargo bench --bench docker_latency` (needs `docker.io` and
//! `busybox-static`).
//!
//! The resource uses the `wait` the README recommends for Docker hosts ([`WAIT`]):
//! this engine starts a burst of containers one after another over tens of seconds,
//! with pauses of over a second, which the default 100ms:1s splits into ~60 reloads.
//!
//! 1. Start to file: 30 created containers are started one at a time, each more than
//!    `wait.min` after the last sync (a resource that reloads syncs at most once per
//!    `wait.min`); the time from the engine's `start` event (seen on the bench's own
//!    event stream) to the rendered file holding the container's address. Target: p50
//!    <= 50 ms (the leading edge: an isolated start is not delayed by a wider `wait`).
//! 2. Burst: 100 created containers started at once; the reloads it took until the file
//!    held all 100, plus any that follow within `wait.min` + 1.5 s. Target: <= 5.

mod common;
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::{EventsOptions, StartContainerOptions};
use futures_util::StreamExt;

use common::{Percentiles, ms};
use support::docker::{Dockerd, IMAGE};
use support::{Proc, confsync, wait_file, write};

const STARTS: usize = 30;
const BURST: usize = 100;
/// Bound on one start reaching the file.
const LIMIT: Duration = Duration::from_secs(20);
/// Bound on the whole burst reaching the file.
const BURST_LIMIT: Duration = Duration::from_secs(180);
/// The resource's `wait`: the README's recommendation for Docker hosts.
const WAIT: &str = "2s:20s";
/// `wait.min` of [`WAIT`].
const WAIT_MIN: Duration = Duration::from_secs(2);
/// Pause before each isolated start: past `wait.min` after the last sync.
const PAUSE: Duration = Duration::from_millis(2300);

/// `docker create` of a web container of service `web` named `name`; returns its id.
fn create(d: &Dockerd, name: &str) -> String {
    d.cli_ok(&[
        "create",
        "--init",
        "--name",
        name,
        "-p",
        "127.0.0.1::8000",
        "--label",
        "confsync.service=web",
        IMAGE,
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "8000",
        "-h",
        "/www",
    ])
}

fn reloads(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn main() {
    let d = Dockerd::start();
    let conf = support::tempdir();
    let p = conf.path();
    let dest = p.join("out.txt");
    let counter = p.join("reloads.txt");
    write(
        p,
        "templates/web.tmpl",
        "{% for s in gets(key=\"/services/web/*\") %}{{ s.key | base }} {{ s.value }}\n{% endfor %}",
    );
    write(
        p,
        "conf.d/web.toml",
        &format!(
            "[template]\nsrc = \"web.tmpl\"\ndest = \"{}\"\nprefix = \"/docker\"\n\
             keys = [\"/services/web\"]\nreload_cmd = \"echo r >> {}\"\nwait = \"{WAIT}\"\n",
            dest.display(),
            counter.display()
        ),
    );
    let mut cmd = confsync();
    cmd.args(["run", "--confdir"]).arg(p).args([
        "--backend",
        "docker",
        "--node",
        &d.node(),
        "--watch",
    ]);
    let _daemon = Proc::spawn("confsync", cmd, &p.join("confsync.log"));
    assert!(
        wait_file(&dest, LIMIT, |_| true).is_some(),
        "first render; log:\n{}",
        std::fs::read_to_string(p.join("confsync.log")).unwrap_or_default()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let engine = bollard::Docker::connect_with_unix(
        &d.sock().to_string_lossy(),
        30,
        &bollard::ClientVersion {
            major_version: 1,
            minor_version: 41,
        },
    )
    .expect("bench client");
    // The bench's own view of `start` events: container id -> when it arrived.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sink = seen.clone();
    let events = engine.clone();
    rt.spawn(async move {
        let opts = EventsOptions {
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("event".to_string(), vec!["start".to_string()]),
            ])),
            ..Default::default()
        };
        let mut s = events.events(Some(opts));
        while let Some(Ok(ev)) = s.next().await {
            if let Some(id) = ev.actor.and_then(|a| a.id) {
                sink.lock().unwrap().insert(id, Instant::now());
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));

    // 1. One start at a time.
    let mut lat = Vec::new();
    for i in 0..STARTS {
        let name = format!("lat{i}");
        let id = create(&d, &name);
        std::thread::sleep(PAUSE);
        rt.block_on(engine.start_container(&id, None::<StartContainerOptions>))
            .expect("start");
        let port = d.port(&name, 8000);
        let line = format!("{name} 127.0.0.1:{port}");
        let done = common::wait_file(&dest, LIMIT, |s| s.lines().any(|l| l == line))
            .unwrap_or_else(|| panic!("{name} never reached the file"));
        let started = *seen
            .lock()
            .unwrap()
            .get(&id)
            .expect("the bench saw the start event");
        lat.push(done.saturating_duration_since(started));
    }
    let pc = Percentiles::of(&mut lat);
    println!(
        "docker start event -> rendered file: n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms",
        pc.n,
        ms(pc.p50),
        ms(pc.p90),
        ms(pc.p99),
        ms(pc.max)
    );

    // 2. A burst of starts.
    let ids: Vec<String> = (0..BURST)
        .map(|i| create(&d, &format!("burst{i}")))
        .collect();
    let before = reloads(&counter);
    let t = Instant::now();
    rt.block_on(async {
        let starts = ids
            .iter()
            .map(|id| engine.start_container(id, None::<StartContainerOptions>));
        for r in futures_util::future::join_all(starts).await {
            r.expect("start");
        }
    });
    let started = t.elapsed();
    let all = common::wait_file(&dest, BURST_LIMIT, |s| {
        s.lines().filter(|l| l.starts_with("burst")).count() == BURST
    })
    .expect("all 100 reach the file");
    std::thread::sleep(WAIT_MIN + Duration::from_millis(1500));
    println!(
        "docker burst (wait {WAIT}): {BURST} containers started in {:.1} s, all in the file \
         {:.1} s after the first start call, {} reloads",
        started.as_secs_f64(),
        all.duration_since(t).as_secs_f64(),
        reloads(&counter) - before
    );
}
