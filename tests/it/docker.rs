//! The Docker engine: the client and model against a real dockerd (the harness in
//! `support/docker.rs`).

use std::time::Duration;

use confsync::docker::{ConnectOptions, DockerClient, LabelFilter, list_running};

use crate::daemon::http_get;
use crate::support::docker::{RunSpec, WEB_PORT, shared, unique_name};
use crate::support::wait_for;

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
