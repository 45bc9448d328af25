use super::*;

/// Checks `text` line by line against the text exposition format: `# HELP`, `# TYPE`,
/// `# UNIT` comments, samples `name{label="value",...} value`, and a final `# EOF`.
fn check_exposition(text: &str) -> Result<(), String> {
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.pop() != Some("# EOF") {
        return Err("does not end in # EOF".into());
    }
    for (n, line) in lines.iter().enumerate() {
        check_line(line).map_err(|e| format!("line {}: {e}: {line:?}", n + 1))?;
    }
    Ok(())
}

fn check_line(line: &str) -> Result<(), String> {
    if let Some(rest) = line.strip_prefix("# ") {
        let mut parts = rest.splitn(3, ' ');
        let kind = parts.next().unwrap_or_default();
        let name = parts.next().unwrap_or_default();
        if !matches!(kind, "HELP" | "TYPE" | "UNIT") {
            return Err(format!("unknown comment {kind}"));
        }
        if !is_name(name) {
            return Err("bad metric name in comment".into());
        }
        if kind == "TYPE"
            && !matches!(
                parts.next(),
                Some("counter" | "gauge" | "histogram" | "summary" | "unknown")
            )
        {
            return Err("bad type".into());
        }
        return Ok(());
    }
    if line.starts_with('#') {
        return Err("stray comment".into());
    }
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    if !is_name(&line[..name_end]) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        rest = check_labels(labels)?;
    }
    let value = rest.strip_prefix(' ').ok_or("no space before value")?;
    let ok = matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok();
    if !ok {
        return Err(format!("bad value {value:?}"));
    }
    Ok(())
}

/// Parses `a="x",b="y"}` and returns what follows the `}`.
fn check_labels(mut s: &str) -> Result<&str, String> {
    loop {
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let eq = s.find('=').ok_or("label without =")?;
        if !is_name(&s[..eq]) || s[..eq].contains(':') {
            return Err("bad label name".into());
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("unquoted label value")?;
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\' | '"' | 'n')) => {}
                    _ => return Err("bad escape".into()),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("raw newline".into()),
                Some(_) => {}
                None => return Err("unterminated label value".into()),
            }
        };
        s = &s[close + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

#[test]
fn counters_move_and_output_parses() {
    let m = Metrics::new();
    let empty = m.encode();
    check_exposition(&empty).unwrap();
    // A family with no series yet is left out entirely.
    assert!(!empty.contains("confsync_renders"), "{empty}");

    m.rendered("haproxy");
    m.rendered("haproxy");
    m.rendered("nginx");
    m.render_failed("nginx");
    m.check_failed("nginx");
    m.reloaded("haproxy");
    m.reload_failed("nginx");
    m.guard_refused("haproxy", "min_keys");
    m.guard_refused("haproxy", "value_pattern");
    m.guard_refused("haproxy", "value_pattern");
    m.guard_refused("haproxy", "key_pattern");
    m.backend_error("etcd");
    let text = m.encode();
    check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("# TYPE confsync_renders counter"), "{text}");

    let cases = [
        (r#"confsync_renders_total{resource="haproxy"}"#, 2.0),
        (r#"confsync_renders_total{resource="nginx"}"#, 1.0),
        (r#"confsync_render_errors_total{resource="nginx"}"#, 1.0),
        (r#"confsync_check_failures_total{resource="nginx"}"#, 1.0),
        (r#"confsync_reloads_total{resource="haproxy"}"#, 1.0),
        (r#"confsync_reload_failures_total{resource="nginx"}"#, 1.0),
        (
            r#"confsync_guard_refusals_total{resource="haproxy",guard="min_keys"}"#,
            1.0,
        ),
        (
            r#"confsync_guard_refusals_total{resource="haproxy",guard="value_pattern"}"#,
            2.0,
        ),
        (
            r#"confsync_guard_refusals_total{resource="haproxy",guard="key_pattern"}"#,
            1.0,
        ),
        (r#"confsync_backend_errors_total{backend="etcd"}"#, 1.0),
    ];
    for (series, want) in cases {
        assert_eq!(sample(&text, series), Some(want), "{series} in\n{text}");
    }
}

#[test]
fn init_creates_zero_series() {
    let m = Metrics::new();
    m.init_resource("haproxy");
    m.init_backend("etcd");
    let text = m.encode();
    check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for series in [
        r#"confsync_renders_total{resource="haproxy"}"#,
        r#"confsync_render_errors_total{resource="haproxy"}"#,
        r#"confsync_check_failures_total{resource="haproxy"}"#,
        r#"confsync_reloads_total{resource="haproxy"}"#,
        r#"confsync_reload_failures_total{resource="haproxy"}"#,
        r#"confsync_guard_refusals_total{resource="haproxy",guard="min_keys"}"#,
        r#"confsync_guard_refusals_total{resource="haproxy",guard="value_pattern"}"#,
        r#"confsync_guard_refusals_total{resource="haproxy",guard="key_pattern"}"#,
        r#"confsync_backend_errors_total{backend="etcd"}"#,
        r#"confsync_backend_up{backend="etcd"}"#,
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
    }
    m.reloaded("haproxy");
    let text = m.encode();
    assert_eq!(
        sample(&text, r#"confsync_reloads_total{resource="haproxy"}"#),
        Some(1.0)
    );
}

#[test]
fn backend_gauges() {
    let m = Metrics::new();
    m.set_backend_up("etcd", true);
    m.set_backend_up("redis", true);
    m.set_backend_up("redis", false);
    m.set_keys_held("etcd", 100);
    m.set_keys_held("etcd", 42);
    m.synced("etcd");
    let text = m.encode();
    check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        sample(&text, r#"confsync_backend_up{backend="etcd"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"confsync_backend_up{backend="redis"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"confsync_backend_keys{backend="etcd"}"#),
        Some(42.0)
    );
    let ts = sample(
        &text,
        r#"confsync_backend_last_sync_timestamp_seconds{backend="etcd"}"#,
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - ts).abs() < 60.0, "timestamp {ts} vs now {now}");
}

#[test]
fn latency_histogram() {
    let m = Metrics::new();
    m.observe_change_latency(0.0003);
    m.observe_change_latency(0.003);
    m.observe_change_latency(20.0);
    let text = m.encode();
    check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("# TYPE confsync_change_to_file_seconds histogram"));
    assert_eq!(
        sample(&text, "confsync_change_to_file_seconds_count"),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"confsync_change_to_file_seconds_bucket{le="0.0005"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"confsync_change_to_file_seconds_bucket{le="0.004"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"confsync_change_to_file_seconds_bucket{le="8.192"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"confsync_change_to_file_seconds_bucket{le="+Inf"}"#
        ),
        Some(3.0)
    );
}

#[test]
fn odd_label_values_are_escaped() {
    let m = Metrics::new();
    m.rendered("we\"ird\\name\nx");
    let text = m.encode();
    check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains(r#"confsync_renders_total{resource="we\"ird\\name\nx"} 1"#));
}

#[test]
fn checker_rejects_garbage() {
    assert!(check_exposition("foo 1\n# EOF\n").is_ok());
    assert!(check_exposition("foo 1\n").is_err());
    assert!(check_exposition("foo\n# EOF\n").is_err());
    assert!(check_exposition("foo{a=\"b} 1\n# EOF\n").is_err());
    assert!(check_exposition("foo{a=b} 1\n# EOF\n").is_err());
    assert!(check_exposition("1foo 1\n# EOF\n").is_err());
    assert!(check_exposition("# random\n# EOF\n").is_err());
    assert!(check_exposition("foo{a=\"b\",c=\"d\"} 1.5\n# EOF\n").is_ok());
}
