use super::*;

fn lo() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn inspect(json: serde_json::Value) -> ContainerInspectResponse {
    serde_json::from_value(json).expect("inspect JSON")
}

fn web(ports: serde_json::Value, labels: serde_json::Value) -> Container {
    let r = inspect(serde_json::json!({
        "Id": "abc123",
        "Name": "/web1",
        "Image": "sha256:ffff",
        "Config": {"Image": "registry:5000/team/app:1.2", "Labels": labels},
        "State": {"Status": "running", "Running": true},
        "NetworkSettings": {
            "Networks": {"bridge": {"IPAddress": "172.17.0.2"}},
            "Ports": ports,
        },
    }));
    Container::from_inspect(&r, lo()).expect("container")
}

#[test]
fn image_repository_drops_registry_namespace_tag_and_digest() {
    assert_eq!(
        image_repository("registry:5000/team/app:1.2@sha256:0123abcd"),
        Some("app")
    );
    assert_eq!(image_repository("nginx"), Some("nginx"));
    assert_eq!(image_repository("library/nginx:1.25"), Some("nginx"));
    assert_eq!(image_repository("localhost:5000/app"), Some("app"));
    assert_eq!(
        image_repository("confsync-test:busybox"),
        Some("confsync-test")
    );
    assert_eq!(image_repository("sha256:0123456789abcdef"), None);
    assert_eq!(image_repository("0123456789ab"), None, "an image id");
    assert_eq!(image_repository(""), None);
}

#[test]
fn inspect_becomes_a_container() {
    let c = web(
        serde_json::json!({"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]}),
        serde_json::json!({"team": "blue"}),
    );
    assert_eq!(c.name, "web1", "leading slash dropped");
    assert_eq!(c.id, "abc123");
    assert_eq!(c.image, "registry:5000/team/app:1.2");
    assert_eq!(c.state, "running");
    assert_eq!(c.health, Health::None);
    assert_eq!(c.ip, Some("172.17.0.2".parse().unwrap()));
    assert_eq!(c.labels.get("team").map(String::as_str), Some("blue"));
    let s = c.service().expect("service");
    assert_eq!(s.service, "app");
    assert_eq!(s.addr.to_string(), "127.0.0.1:49153");
}

#[test]
fn unspecified_host_ips_become_the_configured_one() {
    let c = web(
        serde_json::json!({"8000/tcp": [
            {"HostIp": "0.0.0.0", "HostPort": "49200"},
            {"HostIp": "::", "HostPort": "49200"}
        ]}),
        serde_json::json!({}),
    );
    assert_eq!(c.ports.len(), 1);
    assert_eq!(c.service().unwrap().addr.to_string(), "127.0.0.1:49200");
    let other: IpAddr = "10.1.2.3".parse().unwrap();
    assert_eq!(map_host_ip(Some("::"), other), Some(other));
    assert_eq!(map_host_ip(Some(""), other), Some(other));
    assert_eq!(map_host_ip(None, other), Some(other));
    assert_eq!(
        map_host_ip(Some("::1"), other),
        Some("::1".parse().unwrap())
    );
    assert_eq!(map_host_ip(Some("not-an-ip"), other), None);
    let v6 = HostAddr {
        ip: "::1".parse().unwrap(),
        port: 80,
    };
    assert_eq!(v6.to_string(), "[::1]:80");
}

#[test]
fn port_choice_follows_the_label_or_the_only_published_port() {
    let two = serde_json::json!({
        "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}],
        "9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40002"}],
        "9001/tcp": null
    });
    let c = web(two.clone(), serde_json::json!({}));
    assert!(c.service().unwrap_err().contains("2 published ports"));
    let c = web(two.clone(), serde_json::json!({"confsync.port": "9000"}));
    assert_eq!(c.service().unwrap().addr.port, 40002);
    let c = web(two.clone(), serde_json::json!({"confsync.port": "9001"}));
    assert!(c.service().unwrap_err().contains("not published"));
    let c = web(two, serde_json::json!({"confsync.port": "http"}));
    assert!(c.service().unwrap_err().contains("not a port number"));
    let c = web(serde_json::json!({}), serde_json::json!({}));
    assert_eq!(c.service().unwrap_err(), "no published port");
    let c = web(
        serde_json::json!({"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}]}),
        serde_json::json!({"confsync.service": "api"}),
    );
    assert_eq!(c.service().unwrap().service, "api");
}

#[test]
fn health_and_state_decide_serving() {
    let r = inspect(serde_json::json!({
        "Id": "x", "Name": "/h",
        "Config": {"Image": "app"},
        "State": {"Status": "running", "Health": {"Status": "unhealthy"}},
    }));
    let c = Container::from_inspect(&r, lo()).unwrap();
    assert_eq!(c.health, Health::Unhealthy);
    assert!(c.is_running() && !c.is_serving());
    let r = inspect(serde_json::json!({
        "Id": "x", "Name": "/p", "Config": {"Image": "app"}, "State": {"Status": "paused"},
    }));
    let c = Container::from_inspect(&r, lo()).unwrap();
    assert!(!c.is_running() && !c.is_serving());
    let r = inspect(serde_json::json!({"Name": "/noid"}));
    let err = Container::from_inspect(&r, lo()).unwrap_err();
    assert!(err.to_string().contains("/noid"), "{err}");
}

#[test]
fn label_filters_parse_and_match() {
    let f: LabelFilter = "team=blue".parse().unwrap();
    assert_eq!(f.key, "team");
    assert_eq!(f.value.as_deref(), Some("blue"));
    assert_eq!(f.engine_form(), "team=blue");
    let any: LabelFilter = "confsync.enable".parse().unwrap();
    assert_eq!(any.value, None);
    let empty_value: LabelFilter = "team=".parse().unwrap();
    assert_eq!(empty_value.value.as_deref(), Some(""));
    assert!(
        "=blue"
            .parse::<LabelFilter>()
            .unwrap_err()
            .contains("empty")
    );
    let labels: BTreeMap<String, String> = [("team".to_string(), "blue".to_string())].into();
    assert!(f.matches(&labels));
    assert!(!"team=red".parse::<LabelFilter>().unwrap().matches(&labels));
    assert!(!any.matches(&labels));
    assert!(matches_all(&[], &labels));
    assert!(!matches_all(&[f, any], &labels));
}
