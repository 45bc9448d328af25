//! `examples/grafana/confsync.json` is a Grafana dashboard on a Prometheus data source
//! variable, and every metric its queries name is one a running daemon serves on
//! `/metrics` (a histogram through its `_bucket`, `_sum` and `_count` series).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::daemon::http_get;
use crate::support::{Proc, confsync, free_port, tempdir, wait_for, write};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/grafana/confsync.json"
);

/// Every string under a key `expr`, `query` or `definition` anywhere in `v`: the panels'
/// PromQL and the template variables' queries.
fn queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s)
                        if matches!(k.as_str(), "expr" | "query" | "definition") =>
                    {
                        out.push(s.clone())
                    }
                    _ => queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| queries(i, out)),
        _ => {}
    }
}

/// The `confsync_*` metric names in a PromQL query.
fn metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find("confsync_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The sample names (`name{labels} value` lines) of a `/metrics` text.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect()
}

#[test]
fn the_dashboard_queries_only_metrics_confsync_serves() {
    let text = std::fs::read_to_string(DASHBOARD).expect("examples/grafana/confsync.json");
    let dash: serde_json::Value =
        serde_json::from_str(&text).expect("examples/grafana/confsync.json is JSON");
    let vars = dash["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "no Prometheus data source variable in {DASHBOARD}"
    );
    let panels = dash["panels"].as_array().expect("panels");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {} does not use the data source variable",
            p["title"]
        );
    }
    let mut all = Vec::new();
    queries(&dash, &mut all);
    let queried: BTreeSet<String> = all.iter().flat_map(|q| metric_names(q)).collect();
    for must in [
        "confsync_change_to_file_seconds_bucket",
        "confsync_reloads_total",
        "confsync_reload_failures_total",
        "confsync_guard_refusals_total",
        "confsync_backend_up",
        "confsync_backend_last_sync_timestamp_seconds",
    ] {
        assert!(
            queried.contains(must),
            "the dashboard does not chart {must}"
        );
    }

    // A daemon that rendered once has a series of every metric the dashboard charts.
    let dir = tempdir();
    let port = free_port();
    let data = write(dir.path(), "data.yaml", "app:\n  x: \"1\"\n");
    write(
        dir.path(),
        "confsync.toml",
        &format!("backend = \"file\"\nfile = [\"{}\"]\n", data.display()),
    );
    write(
        dir.path(),
        "templates/app.tmpl",
        "x={{ getv(key=\"/app/x\") }}\n",
    );
    let dest = dir.path().join("out/app.cfg");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    write(
        dir.path(),
        "conf.d/app.toml",
        &format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n",
            dest.display()
        ),
    );
    let mut cmd = confsync();
    cmd.args(["run", "--watch", "--confdir"])
        .arg(dir.path())
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")]);
    let _daemon = Proc::spawn("confsync", cmd, &dir.path().join("confsync.log"));
    let served = wait_for(Duration::from_secs(30), || {
        let (_, body) = http_get(port, "/metrics")?;
        body.contains("confsync_change_to_file_seconds_count 1")
            .then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "no render counted on /metrics:\n{}",
            std::fs::read_to_string(dir.path().join("confsync.log")).unwrap_or_default()
        )
    });
    let names = sample_names(&served);
    let missing: Vec<&String> = queried.iter().filter(|n| !names.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "{DASHBOARD} queries metrics /metrics does not serve: {missing:?}\n{served}"
    );
}
