//! `confsync register --from-docker` against a real dockerd and real etcd and Redis:
//! running containers appear under `--key-template`, a stopped one goes at once and a
//! restarted one comes back with its new port, a failing HEALTHCHECK or a hostile label
//! keeps a container out, SIGKILL of the registrar lets its keys expire with the TTL,
//! and a restarted registrar removes its own key of a container that went away while it
//! was down, never a foreign key under the same prefix.

use std::path::Path;
use std::time::{Duration, Instant};

use ::redis::Commands;
use nix::sys::signal::Signal;

use crate::register::{EtcdReader, log, redis_get, registrar, wait_state};
use crate::support::docker::{Dockerd, RunSpec, WEB_PORT, shared, unique_name};
use crate::support::{Proc, etcd, random_prefix, tempdir, wait_for};

/// Bound on a fresh registrar's first registrations (containers start in ~0.3 s).
const START_LIMIT: Duration = Duration::from_secs(15);

/// The label that scopes each test's containers.
const TEAM: &str = "confsync.test.team";

/// Starts a registrar for containers labelled `team`, keys under `prefix`.
fn docker_registrar(
    dir: &Path,
    name: &str,
    store: &[&str],
    team: &str,
    prefix: &str,
    extra: &[&str],
) -> Proc {
    let node = shared().node();
    let label = format!("{TEAM}={team}");
    let template = format!("{prefix}/app/{{service}}/{{name}}");
    let mut args: Vec<&str> = store.to_vec();
    args.extend([
        "--from-docker",
        "--docker-node",
        &node,
        "--docker-label",
        &label,
        "--key-template",
        &template,
        "--registrar-id",
        team,
    ]);
    args.extend(extra);
    registrar(dir, name, &args)
}

/// A temp dir for logs, a team (label value and registrar id) and a key prefix of the
/// test's own.
fn scope() -> (tempfile::TempDir, String, String) {
    (tempdir(), unique_name("team"), random_prefix())
}

/// A labelled web container; returns the key it is registered under.
fn web(d: &Dockerd, team: &str, prefix: &str, stem: &str) -> (String, String) {
    let name = unique_name(stem);
    d.run(&RunSpec::web(&name).label(TEAM, team));
    (name.clone(), format!("{prefix}/app/confsync-test/{name}"))
}

fn addr(d: &Dockerd, name: &str) -> String {
    format!("127.0.0.1:{}", d.port(name, WEB_PORT))
}

fn health(d: &Dockerd, name: &str) -> String {
    d.cli_ok(&["inspect", "-f", "{{.State.Health.Status}}", name])
}

#[test]
fn etcd_registers_running_containers_follows_stop_and_restart_and_keeps_out_the_unhealthy() {
    let d = shared();
    let etcd = etcd::shared();
    let (dir, team, prefix) = scope();
    let mut r = EtcdReader::new(&etcd.url());
    let [(w1, k1), (w2, k2)] = [0, 1].map(|_| web(d, &team, &prefix, "web"));
    // Failing HEALTHCHECK, a hostile service label, and a container of another team.
    let sick = unique_name("sick");
    d.run(&RunSpec::web(&sick).label(TEAM, &team).health("false"));
    let evil = unique_name("evil");
    d.run(
        &RunSpec::web(&evil)
            .label(TEAM, &team)
            .label("confsync.service", "x/../../etc"),
    );
    let (other, other_key) = web(d, &unique_name("otherteam"), &prefix, "other");
    let store = ["--backend", "etcd", "--node", &etcd.url(), "--ttl", "2"];
    let reg = docker_registrar(dir.path(), "etcd", &store, &team, &prefix, &[]);
    let logs = || log(dir.path(), "etcd");

    for (name, key) in [(&w1, &k1), (&w2, &k2)] {
        let (value, lease) = wait_for(START_LIMIT, || r.get(key))
            .unwrap_or_else(|| panic!("{name} never registered; log:\n{}", logs()));
        assert_eq!(value, addr(d, name));
        assert_ne!(lease, 0, "put with a lease");
    }
    // Positive signals first: the sick container is unhealthy, the evil one was refused.
    wait_for(Duration::from_secs(10), || {
        (health(d, &sick) == "unhealthy").then_some(())
    })
    .expect("the failing healthcheck makes the container unhealthy");
    wait_for(Duration::from_secs(5), || {
        logs().contains(&evil).then_some(())
    })
    .unwrap_or_else(|| panic!("the hostile label is not logged:\n{}", logs()));
    let text = logs();
    assert!(
        text.contains("not registered") && text.contains("holds"),
        "{text}"
    );
    assert_eq!(r.get(&format!("{prefix}/app/confsync-test/{sick}")), None);
    assert_eq!(r.get(&other_key), None, "another team's container");
    assert_eq!(r.get(&format!("{prefix}/etc/{evil}")), None);

    // Stop: the key goes at once. Start again: back, with the new published port.
    let t = Instant::now();
    d.stop(&w1);
    let stopped = t.elapsed();
    let gone = wait_state(Duration::from_secs(5), || r.get(&k1).is_some(), false)
        .expect("a stopped container's key goes");
    eprintln!("etcd: key gone {gone:?} after `docker stop` returned (stop took {stopped:?})");
    assert!(gone <= Duration::from_secs(1), "gone after {gone:?}");
    d.start_container(&w1);
    let t = Instant::now();
    let new_addr = addr(d, &w1);
    let back = wait_for(START_LIMIT, || r.get(&k1).filter(|(v, _)| *v == new_addr));
    eprintln!(
        "etcd: key back {:?} after `docker start` returned",
        t.elapsed()
    );
    assert!(
        back.is_some(),
        "restarted container not back at {new_addr}; log:\n{}",
        logs()
    );

    // SIGKILL: the keys expire with the TTL.
    reg.signal(Signal::SIGKILL);
    let t = Instant::now();
    let expired = wait_state(
        Duration::from_secs(6),
        || r.get(&k1).is_some() || r.get(&k2).is_some(),
        false,
    )
    .expect("keys expire after a SIGKILL");
    eprintln!("etcd: keys gone {:?} after SIGKILL (TTL 2 s)", t.elapsed());
    assert!(expired <= Duration::from_secs(3), "{expired:?}");
    for c in [&w1, &w2, &sick, &evil, &other] {
        d.rm(c);
    }
}

#[test]
fn etcd_restarted_registrar_removes_its_own_gone_keys_and_keeps_foreign_ones() {
    let d = shared();
    let etcd = etcd::shared();
    let (dir, team, prefix) = scope();
    let mut r = EtcdReader::new(&etcd.url());
    let [(w1, k1), (w2, k2)] = [0, 1].map(|_| web(d, &team, &prefix, "web"));
    let foreign = format!("{prefix}/app/confsync-test/foreign");
    etcd.ctl_ok(&["put", &foreign, "10.0.0.9:80"]);
    // A long TTL: whatever goes before it runs out went by the reconcile.
    let store = ["--backend", "etcd", "--node", &etcd.url(), "--ttl", "30"];
    let first = docker_registrar(dir.path(), "first", &store, &team, &prefix, &[]);
    for key in [&k1, &k2] {
        wait_for(START_LIMIT, || r.get(key))
            .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "first")));
    }
    first.signal(Signal::SIGKILL);
    d.rm(&w2);
    assert!(r.get(&k2).is_some(), "the lease outlives the crash");

    let mut second = docker_registrar(dir.path(), "second", &store, &team, &prefix, &[]);
    let gone = wait_state(START_LIMIT, || r.get(&k2).is_some(), false).unwrap_or_else(|| {
        panic!(
            "gone container's key kept; log:\n{}",
            log(dir.path(), "second")
        )
    });
    eprintln!("etcd: reconcile removed the gone container's key {gone:?} after the restart");
    // The key goes a moment before the line saying so is written.
    wait_for(Duration::from_secs(5), || {
        log(dir.path(), "second")
            .contains("reconciled")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no reconcile logged:\n{}", log(dir.path(), "second")));
    assert_eq!(r.get(&k1).map(|(v, _)| v), Some(addr(d, &w1)));
    assert_eq!(r.get(&foreign), Some(("10.0.0.9:80".into(), 0)));

    // SIGTERM: every key of ours goes, the foreign one stays, exit 0.
    second.signal(Signal::SIGTERM);
    let st = second
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert_eq!(st.code(), Some(0), "log:\n{}", log(dir.path(), "second"));
    assert_eq!(r.get(&k1), None);
    assert!(r.get(&foreign).is_some());
    d.rm(&w1);
}

#[test]
fn redis_registers_containers_and_a_restart_reconciles_only_its_own_keys() {
    let d = shared();
    let srv = crate::support::redis::shared();
    let (dir, team, prefix) = scope();
    let [(w1, k1), (w2, k2)] = [0, 1].map(|_| web(d, &team, &prefix, "web"));
    let foreign = format!("{prefix}/app/confsync-test/foreign");
    let _: () = srv.conn().set(&foreign, "10.0.0.9:80").unwrap();
    let node = srv.node();
    let store = ["--backend", "redis", "--node", &node, "--ttl", "30"];
    let first = docker_registrar(dir.path(), "first", &store, &team, &prefix, &[]);
    for (name, key) in [(&w1, &k1), (&w2, &k2)] {
        let v = wait_for(START_LIMIT, || redis_get(srv, key))
            .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "first")));
        assert_eq!(v, addr(d, name));
    }
    let hash = format!("/confsync/registrars/{team}");
    let owned: Vec<String> = srv.conn().hkeys(&hash).unwrap();
    assert_eq!(owned.len(), 2, "{owned:?}");
    let ttl: i64 = srv.conn().ttl(&k1).unwrap();
    assert!((1..=30).contains(&ttl), "SET with EX: {ttl}");

    first.signal(Signal::SIGKILL);
    d.rm(&w2);
    let mut second = docker_registrar(dir.path(), "second", &store, &team, &prefix, &[]);
    let gone =
        wait_state(START_LIMIT, || redis_get(srv, &k2).is_some(), false).unwrap_or_else(|| {
            panic!(
                "gone container's key kept; log:\n{}",
                log(dir.path(), "second")
            )
        });
    eprintln!("redis: reconcile removed the gone container's key {gone:?} after the restart");
    assert_eq!(redis_get(srv, &k1), Some(addr(d, &w1)));
    assert_eq!(redis_get(srv, &foreign).as_deref(), Some("10.0.0.9:80"));
    let owned: Vec<String> = srv.conn().hkeys(&hash).unwrap();
    assert_eq!(owned, vec![k1.clone()]);

    // A stop removes the key and its ownership field at once.
    d.stop(&w1);
    let gone = wait_state(
        Duration::from_secs(5),
        || redis_get(srv, &k1).is_some(),
        false,
    )
    .expect("a stopped container's key goes");
    eprintln!("redis: key gone {gone:?} after `docker stop` returned");
    assert!(gone <= Duration::from_secs(1), "{gone:?}");
    let left: i64 = srv.conn().exists(&hash).unwrap();
    assert_eq!(left, 0, "the empty ownership hash is gone");
    second.signal(Signal::SIGTERM);
    let st = second
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert_eq!(st.code(), Some(0), "log:\n{}", log(dir.path(), "second"));
    assert!(redis_get(srv, &foreign).is_some());
    d.rm(&w1);
}

#[test]
fn bad_docker_flags_exit_2_naming_the_flag() {
    let dir = tempdir();
    for (extra, want) in [
        (vec!["--key-template", "/app/servers"], "no placeholder"),
        (vec!["--key-template", "/app/{nme}"], "{nme}"),
        (vec!["--key-template", "/app/../{name}"], ".."),
        (vec!["--docker-host-ip", "host.example"], "--docker-host-ip"),
        (vec!["--docker-node", "docker"], "--docker-node"),
        (vec!["--registrar-id", "a/b"], "--registrar-id"),
    ] {
        let mut args = vec![
            "--backend",
            "redis",
            "--node",
            "127.0.0.1:1",
            "--ttl",
            "2",
            "--from-docker",
        ];
        args.extend(extra.iter().copied());
        let mut p = registrar(dir.path(), "bad", &args);
        let st = p.wait_exit(Duration::from_secs(10)).expect("exits");
        let text = log(dir.path(), "bad");
        assert_eq!(st.code(), Some(2), "{extra:?}: {text}");
        assert!(text.contains(want), "{extra:?}: {text}");
        let _ = std::fs::remove_file(dir.path().join("bad.log"));
    }
}

#[test]
fn engine_restart_is_reconnected_and_its_listing_followed() {
    // A dedicated engine: this test stops and starts it.
    let d = Dockerd::start();
    let srv = crate::support::redis::shared();
    let (dir, team, prefix) = scope();
    let (w1, k1) = web(&d, &team, &prefix, "web");
    let node = srv.node();
    let label = format!("{TEAM}={team}");
    let template = format!("{prefix}/app/{{service}}/{{name}}");
    let docker_node = d.node();
    let _reg = registrar(
        dir.path(),
        "engine",
        &[
            "--backend",
            "redis",
            "--node",
            &node,
            "--ttl",
            "2",
            "--from-docker",
            "--docker-node",
            &docker_node,
            "--docker-label",
            &label,
            "--key-template",
            &template,
            "--registrar-id",
            &team,
        ],
    );
    let logs = || log(dir.path(), "engine");
    wait_for(START_LIMIT, || redis_get(srv, &k1))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", logs()));

    // The engine goes (its containers with it): what is registered stays, refreshed.
    d.stop_daemon();
    wait_for(Duration::from_secs(10), || {
        logs().contains("Docker engine unreachable").then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the outage is not logged:
{}",
            logs()
        )
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        redis_get(srv, &k1).is_some(),
        "kept past its 2 s TTL while the engine is down:
{}",
        logs()
    );
    // Back: its listing has no running container, so the key goes.
    d.restart_daemon();
    wait_state(START_LIMIT, || redis_get(srv, &k1).is_some(), false).unwrap_or_else(|| {
        panic!(
            "the listing after the reconnect is not followed:
{}",
            logs()
        )
    });
    assert!(logs().contains("reachable again"), "{}", logs());
    d.start_container(&w1);
    let new_addr = addr(&d, &w1);
    let back = wait_for(START_LIMIT, || {
        redis_get(srv, &k1).filter(|v| *v == new_addr)
    });
    assert!(back.is_some(), "not back at {new_addr}; log:\n{}", logs());
}

#[test]
fn a_healthcheck_decides_registration_both_ways() {
    let d = shared();
    let srv = crate::support::redis::shared();
    let (dir, team, prefix) = scope();
    let name = unique_name("checked");
    let key = format!("{prefix}/app/confsync-test/{name}");
    d.run(
        &RunSpec::web(&name)
            .label(TEAM, &team)
            .health("test -s /tmp/ok"),
    );
    let node = srv.node();
    let store = ["--backend", "redis", "--node", &node, "--ttl", "2"];
    let _reg = docker_registrar(dir.path(), "health", &store, &team, &prefix, &[]);
    let logs = || log(dir.path(), "health");
    wait_for(Duration::from_secs(10), || {
        (health(d, &name) == "unhealthy").then_some(())
    })
    .expect("unhealthy without /tmp/ok");
    wait_for(Duration::from_secs(5), || {
        logs().contains("reconciled").then_some(())
    })
    .unwrap_or_else(|| panic!("registrar not started:\n{}", logs()));
    assert_eq!(redis_get(srv, &key), None, "registered while unhealthy");

    d.cli_ok(&["exec", &name, "sh", "-c", "echo ok > /tmp/ok"]);
    let v = wait_for(Duration::from_secs(10), || redis_get(srv, &key))
        .unwrap_or_else(|| panic!("not registered once healthy:\n{}", logs()));
    assert_eq!(v, addr(d, &name));
    d.cli_ok(&["exec", &name, "sh", "-c", ": > /tmp/ok"]);
    wait_state(
        Duration::from_secs(10),
        || redis_get(srv, &key).is_some(),
        false,
    )
    .unwrap_or_else(|| panic!("still registered while unhealthy:\n{}", logs()));
    d.rm(&name);
}
