//! Incremental rendering against plain Tera: the same bytes (or both an error) for random
//! templates over random keyspaces through random changes, and the work a change costs.

use std::sync::Arc;

use proptest::prelude::*;

use super::incremental::take_counts;
use super::*;
use crate::backend::KvMap;

fn view(kvs: &KvMap) -> View {
    View::new(Arc::new(kvs.clone()), "", &["/app".to_string()])
}

fn engine(tpl: &str) -> Engine {
    let mut e = Engine::new();
    e.add_raw("t.tmpl", tpl).expect("the template loads");
    e
}

/// Renders `tpl` with `e` and `cache`, and with a fresh engine and no cache: the cached
/// render's bytes must be the plain one's.
fn same(tpl: &str, e: &Engine, cache: &Arc<EntryCache>, kvs: &KvMap, limits: &RenderLimits) {
    let cached = e.render_with("t.tmpl", view(kvs).with_cache(cache.clone()), limits);
    let plain = engine(tpl).render_with("t.tmpl", view(kvs), limits);
    match (cached, plain) {
        (Ok(a), Ok(b)) => assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "cached vs plain"
        ),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("cached {a:?} but plain {b:?}"),
    }
}

const SERVER_LINES: &str = "backend app\n{% for s in gets(key=\"/app/servers/*\") %}    server {{ s.key | base }} {{ s.value }} check\n{% endfor %}";

fn servers(n: usize) -> KvMap {
    (0..n)
        .map(|i| {
            (
                format!("/app/servers/web{i:05}"),
                format!("10.0.{}.{}:8080", i / 256, i % 256),
            )
        })
        .collect()
}

#[test]
fn one_changed_key_of_10000_renders_one_body() {
    let e = engine(SERVER_LINES);
    let cache = Arc::new(EntryCache::default());
    let mut kvs = servers(10_000);
    let first = e
        .render("t.tmpl", view(&kvs).with_cache(cache.clone()))
        .unwrap();
    assert_eq!(take_counts(), (0, 10_000));
    assert_eq!(first, e.render("t.tmpl", view(&kvs)).unwrap());
    kvs.insert("/app/servers/web04321".into(), "10.9.9.9:80".into());
    let second = e
        .render("t.tmpl", view(&kvs).with_cache(cache.clone()))
        .unwrap();
    assert_eq!(take_counts(), (9_999, 1));
    assert_eq!(second, e.render("t.tmpl", view(&kvs)).unwrap());
    assert!(
        String::from_utf8(second)
            .unwrap()
            .contains("server web04321 10.9.9.9:80 check\n")
    );
}

#[test]
fn loops_that_read_more_than_their_element_are_not_cached() {
    for tpl in [
        "{% for s in gets(key=\"/app/*\") %}{{ loop.index }}{{ s.key }}{% endfor %}",
        "{% set o = 1 %}{% for s in gets(key=\"/app/*\") %}{{ o }}{{ s.key }}{% endfor %}",
        "{% for s in gets(key=\"/app/*\") %}{{ getv(key=\"/app/a\") }}{% endfor %}",
        "{% for s in gets(key=\"/app/*\") %}{% if s.value == \"x\" %}{% break %}{% endif %}{% endfor %}",
        "{% for s in gets(key=\"/app/*\") %}{{ s.key }}{% else %}none{% endfor %}",
        "{% for s in gets(key=\"/app/*\") %}{% set_global n = s.key %}{% endfor %}{{ n }}",
        "{% for s in gets(key=\"/app/*\") %}{% include \"other.tmpl\" %}{% endfor %}",
        "{% for s in gets(key=\"/app/*\") -%}{# c #}  {{ s.key }}{% endfor %}",
    ] {
        let mut e = Engine::new();
        e.add_raw("other.tmpl", "o").unwrap();
        e.add_raw("t.tmpl", tpl)
            .unwrap_or_else(|err| panic!("{tpl}: {err}"));
        assert!(!e.incremental.in_use(), "{tpl}");
    }
    for tpl in [
        SERVER_LINES,
        "{% for v in getvs(key=\"/app/*\") %}{% set u = v | upper %}{{ u }}{% endfor %}",
        "{% if true %}{%- for n in ls(key='/app') -%} {{ n }} {%- endfor -%}{% endif %}",
        "{% for i in range(end=2) %}{{ i }}{% endfor %}{% for n in lsdir(key=\"/app\") %}{% for i in range(end=2) %}{{ n }}{{ i }}{% endfor %}{% endfor %}",
    ] {
        assert!(engine(tpl).incremental.in_use(), "{tpl}");
    }
}

#[test]
fn a_failing_body_names_the_template_and_its_line() {
    let e =
        engine("a\nb\n{% for s in gets(key=\"/app/*\") %}\n  {{ s.value | addr }}\n{% endfor %}");
    let mut kvs = KvMap::new();
    kvs.insert("/app/a".into(), "bad value".into());
    let cache = Arc::new(EntryCache::default());
    let err = e
        .render("t.tmpl", view(&kvs).with_cache(cache))
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.tmpl"), "{err}");
    assert!(err.contains(":4:"), "the body's line in the file: {err}");
}

#[test]
fn the_size_limit_and_cancel_stop_a_cached_loop() {
    let e = engine(SERVER_LINES);
    let kvs = servers(1_000);
    let cache = Arc::new(EntryCache::default());
    let err = e
        .render_with(
            "t.tmpl",
            view(&kvs).with_cache(cache.clone()),
            &RenderLimits::sized(4096),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_render_size (4 KiB)"), "{err}");
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let limits = RenderLimits {
        max_size: 1 << 30,
        cancel: Some(flag),
    };
    let err = e
        .render_with("t.tmpl", view(&kvs).with_cache(cache), &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("render_timeout"), "{err}");
}

/// Bodies of a loop over `gets` (its variable `s`); the last ones are not cacheable.
const GETS_BODIES: &[&str] = &[
    "    server {{ s.key | base }} {{ s.value }} check\n",
    "{% if s.value is containing(pat=\"9\") %}nine {{ s.key }}\n{% else %}{{ s.value | upper }}\n{% endif %}",
    "  {{ s.value | replace(from=\".\", to=\"-\") }} {{ s.key | split(pat=\"/\") | last }}\n",
    "{% set n = s.key | base %}{{ n }}={{ s.value }};",
    "\n  {{- s.value -}}  \n",
    "{{ s.value | addr }}\n",
    "{% for i in range(end=2) %}{{ s.key }}{{ i }} {% endfor %}\n",
    "{{ loop.index }} {{ s.key }}\n",
    "{{ s.key }} {{ getv(key=\"/app/x\", default=\"d\") }}\n",
    "{{ outer }} {{ s.value }}\n",
    "{{ s.value }}{% if s.value == \"stop\" %}{% break %}{% endif %}\n",
];

/// How many of the first `GETS_BODIES` and `STRING_BODIES` read only their element
/// (the rest read `loop`, another variable or the store, or `break`).
const PURE_GETS_BODIES: usize = 7;
const PURE_STRING_BODIES: usize = 3;

/// Bodies of a loop over strings (`getvs`, `ls`, `lsdir`; its variable `v`).
const STRING_BODIES: &[&str] = &[
    "{{ v }}\n",
    " {{- v | upper }},",
    "{{ v | addr }} ",
    "{{ loop.index }}{{ v }}\n",
    "{{ v }}{% if loop.last %}.{% endif %}",
];

const HEADS: &[(&str, &str)] = &[
    ("s", "gets(key=\"/app/s/*\")"),
    ("s", "gets(key=\"/app/*/1*\")"),
    ("v", "getvs(key=\"/app/t/*\")"),
    ("v", "ls(key=\"/app\")"),
    ("v", "lsdir(key=\"/app/s\")"),
];

const TEXTS: &[&str] = &["", "x", "\n", "  \n  ", "a {{ outer }} b\n", "\t"];

const VALUES: &[&str] = &[
    "10.0.0.1:80",
    "10.0.0.9:80",
    "9",
    "bad value",
    "stop",
    "",
    "a.b",
];

fn loop_source(head: usize, body: usize, dashes: u8) -> String {
    let (var, call) = HEADS[head];
    let bodies = if var == "s" {
        GETS_BODIES
    } else {
        STRING_BODIES
    };
    let d = |bit: u8| if dashes & bit != 0 { "-" } else { "" };
    format!(
        "{{%{} for {var} in {call} {}%}}{}{{%{} endfor {}%}}",
        d(1),
        d(2),
        bodies[body % bodies.len()],
        d(4),
        d(8)
    )
}

fn template(parts: &[(usize, usize, usize, u8)]) -> String {
    let mut t = String::from("{% set outer = \"o\" %}");
    for &(text, head, body, dashes) in parts {
        t.push_str(TEXTS[text % TEXTS.len()]);
        t.push_str(&loop_source(head % HEADS.len(), body, dashes));
    }
    t.push_str(" end\n");
    t
}

fn key(k: usize) -> String {
    let dir = ["s", "t", "s/sub"][k % 3];
    format!("/app/{dir}/{:02}", k / 3 % 20)
}

#[derive(Debug, Clone)]
enum Change {
    Set(usize, usize),
    Delete(usize),
    DeleteRange(usize, usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (0..60usize, 0..VALUES.len()).prop_map(|(k, v)| Change::Set(k, v)),
        2 => (0..60usize).prop_map(Change::Delete),
        1 => (0..60usize, 0..20usize).prop_map(|(a, n)| Change::DeleteRange(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn cached_renders_equal_plain_ones(
        parts in prop::collection::vec((0..TEXTS.len(), 0..HEADS.len(), 0..GETS_BODIES.len(), 0..16u8), 1..4),
        initial in prop::collection::vec((0..60usize, 0..4usize), 0..40),
        changes in prop::collection::vec(change(), 1..12),
    ) {
        let tpl = template(&parts);
        let e = engine(&tpl);
        // A template with a loop whose body reads only its element goes the cached way.
        let pure = parts.iter().any(|&(_, head, body, _)| {
            if HEADS[head % HEADS.len()].0 == "s" {
                body % GETS_BODIES.len() < PURE_GETS_BODIES
            } else {
                body % STRING_BODIES.len() < PURE_STRING_BODIES
            }
        });
        prop_assert_eq!(e.incremental.in_use(), pure, "{}", tpl);
        let cache = Arc::new(EntryCache::default());
        let limits = RenderLimits::default();
        let mut kvs: KvMap = initial.iter().map(|&(k, v)| (key(k), VALUES[v].to_string())).collect();
        same(&tpl, &e, &cache, &kvs, &limits);
        for c in changes {
            match c {
                Change::Set(k, v) => {
                    kvs.insert(key(k), VALUES[v].to_string());
                }
                Change::Delete(k) => {
                    kvs.remove(&key(k));
                }
                Change::DeleteRange(a, n) => {
                    for k in a..a + n {
                        kvs.remove(&key(k));
                    }
                }
            }
            same(&tpl, &e, &cache, &kvs, &limits);
        }
    }
}
