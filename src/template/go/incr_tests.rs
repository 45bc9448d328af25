//! Incremental rendering of Go templates: which loops are cacheable, that a change of
//! one key renders one body, and that a daemon's renders (one entry cache kept across
//! changes) write exactly what fresh renders write.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::exec::{last_run, last_spliced};
use super::*;
use crate::backend::KvMap;
use crate::template::{EntryCache, RenderLimits};

fn parse(src: &str) -> GoTemplate {
    GoTemplate::parse("t.tmpl", src.to_string()).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

fn plain_view(kvs: &Arc<KvMap>) -> View {
    View::new(kvs.clone(), "", &["/".to_string()])
}

/// A render as the daemon makes it (as `Engine::render_with` does): the resource's entry
/// cache, then the end of the render.
fn daemon_render(
    t: &GoTemplate,
    kvs: &Arc<KvMap>,
    cache: &Arc<EntryCache>,
    limits: &RenderLimits,
) -> Result<Vec<u8>, GoError> {
    let view = plain_view(kvs).with_cache(cache.clone());
    let out = t.render_with(&view, limits);
    if out.is_ok() {
        view.commit();
    }
    cache.finish_render();
    out
}

/// The keys that differ between `before` and `after`, each with whether `before` held
/// it: what a daemon's worker notes between two renders.
fn changes_between(before: &KvMap, after: &KvMap) -> HashMap<String, bool> {
    crate::store::diff_keys(before, after)
        .into_iter()
        .map(|k| {
            let held = before.contains_key(&k);
            (k, held)
        })
        .collect()
}

/// Cacheable loops: every form the module's doc allows.
const CACHEABLE: &[&str] = &[
    "{{range gets \"/s/*\"}}server {{base .Key}} {{.Value}}\n{{end}}",
    "{{range $s := getvs \"/s/*\"}}{{$s}},{{end}}",
    "{{range ls \"/s\"}}{{.}} {{end}}",
    "{{range lsdir \"/d\"}}{{.}}/{{end}}",
    "{{range $i, $e := gets \"/s/*\"}}{{$e.Key}}{{end}}",
    "{{range gets \"/s/*\"}}{{if eq .Value \"x\"}}X{{else}}{{printf \"%q\" .Value}}{{end}};{{end}}",
    "{{range gets \"/s/*\"}}{{range $p := split .Value \":\"}}[{{$p}}]{{if eq $p \"b\"}}{{break}}{{end}}{{end}}\n{{end}}",
    "{{range gets \"/s/*\"}}{{atoi .Value}}+{{end}}",
    "{{range gets \"/d/*/*\"}}{{$v := toUpper .Value}}{{$v}}|{{len $v}} {{end}}",
    "{{range $x := gets \"/e/*\"}}{{$x.Value}}{{else}}none {{$x}}{{end}}",
    "{{range gets \"/s/*\"}}{{with $a := .Value}}{{$a}}{{else}}-{{end}}{{end}}",
    "{{range $x := ls \"/s\"}}{{$x = printf \"<%s>\" $x}}{{$x}}{{end}}",
    "{{range gets \"/s/*\"}}{{(index (split .Value \":\") 0)}}{{end}}",
];

/// Loops that must render plainly.
const NOT_CACHEABLE: &[&str] = &[
    "{{range gets \"/s/*\"}}{{getv \"/s/a\" \"none\"}}{{.Value}}{{end}}",
    "{{range $i, $e := gets \"/s/*\"}}{{$i}}={{$e.Value}} {{end}}",
    "{{$o := \"o\"}}{{range gets \"/s/*\"}}{{$o}}{{.Value}}{{end}}",
    "{{range gets \"/s/*\"}}{{if eq .Value \"1\"}}{{break}}{{end}}{{.Value}}{{end}}",
    "{{range gets \"/s/*\"}}{{if eq .Value \"1\"}}{{continue}}{{end}}{{.Value}}{{end}}",
    "{{range gets \"/s/*\"}}{{$}}{{end}}",
    "{{$n := 0}}{{range gets \"/s/*\"}}{{$n = 1}}{{end}}{{$n}}",
    "{{range gets \"/s/*\"}}{{getenv \"HOME\" | len}}{{end}}",
    "{{range gets \"/s/*\"}}{{range gets \"/d/*/*\"}}{{.Value}}{{end}}{{end}}",
    "{{range gets \"/s/*\"}}{{exists .Key}}{{end}}",
    "{{define \"x\"}}<{{.Value}}>{{end}}{{range gets \"/s/*\"}}{{template \"x\" .}}{{end}}",
    "{{range gets (printf \"/s/%s\" \"*\")}}{{.Value}}{{end}}",
    "{{range $x = gets \"/s/*\"}}{{.Value}}{{end}}",
];

/// The cacheable loops of `src` (their starts).
fn cacheable(src: &str) -> Vec<usize> {
    let mut v: Vec<usize> = parse(src).trees.cacheable.iter().copied().collect();
    v.sort_unstable();
    v
}

#[test]
fn cacheable_loops_are_found_and_the_rest_left_alone() {
    for src in CACHEABLE {
        assert_eq!(cacheable(src), vec![0], "{src:?} should be cacheable");
    }
    for src in NOT_CACHEABLE {
        let found = cacheable(src);
        // A cacheable loop nested inside a plain one is fine, the outer one is not.
        assert!(!found.contains(&0), "{src:?} should not be cacheable");
    }
    let nested = "{{range $i, $e := gets \"/s/*\"}}{{$i}}{{range ls \"/s\"}}{{.}}{{end}}{{end}}";
    assert_eq!(
        cacheable(nested),
        vec![nested.find("{{range ls").unwrap()],
        "the inner loop"
    );
}

fn servers(n: usize) -> KvMap {
    (0..n)
        .map(|i| {
            (
                format!("/app/servers/web{i:06}"),
                format!("10.0.{}.{}:8080", i / 256, i % 256),
            )
        })
        .collect()
}

const S1_LOOP: &str = "backend app\n{{range gets \"/app/servers/*\"}}    server {{base .Key}} {{.Value}} check\n{{end}}";

#[test]
fn one_changed_key_of_ten_thousand_renders_one_body() {
    let t = parse(S1_LOOP);
    let cache = Arc::new(EntryCache::default());
    let limits = RenderLimits::default();
    let mut kvs = servers(10_000);
    let first = daemon_render(&t, &Arc::new(kvs.clone()), &cache, &limits).unwrap();
    assert_eq!(last_run(), (0, 10_000));
    kvs.insert("/app/servers/web004321".into(), "10.9.9.9:80".into());
    let kvs = Arc::new(kvs);
    let second = daemon_render(&t, &kvs, &cache, &limits).unwrap();
    assert_eq!(last_run(), (9_999, 1), "one body rendered, the rest copied");
    assert_eq!(second, t.render(&plain_view(&kvs)).unwrap());
    assert_ne!(first, second);
    daemon_render(&t, &kvs, &cache, &limits).unwrap();
    assert_eq!(last_run(), (10_000, 0));
}

#[test]
fn a_noted_change_of_ten_thousand_keys_looks_at_that_key_alone() {
    let t = parse(S1_LOOP);
    let cache = Arc::new(EntryCache::default());
    let limits = RenderLimits::default();
    let mut kvs = servers(10_000);
    cache.basis().note(None);
    daemon_render(&t, &Arc::new(kvs.clone()), &cache, &limits).unwrap();
    assert_eq!(last_run(), (0, 10_000));
    assert!(!last_spliced(), "the first render walks");
    let changes: [(&str, Option<&str>); 3] = [
        ("/app/servers/web004321", Some("10.9.9.9:80")),
        ("/app/servers/web000000", None),
        ("/app/servers/web999999", Some("10.8.8.8:80")),
    ];
    let mut noted = HashMap::new();
    for (k, v) in changes {
        noted.insert(k.to_string(), kvs.contains_key(k));
        match v {
            Some(v) => kvs.insert(k.into(), v.into()),
            None => kvs.remove(k),
        };
    }
    cache.basis().note(Some(noted));
    let kvs = Arc::new(kvs);
    let out = daemon_render(&t, &kvs, &cache, &limits).unwrap();
    assert_eq!(
        last_run(),
        (9_998, 2),
        "two bodies rendered, the rest copied in runs"
    );
    assert!(last_spliced());
    assert_eq!(out, t.render(&plain_view(&kvs)).unwrap());
    let view = plain_view(&kvs).with_cache(cache.clone());
    assert_eq!(
        view.counts(),
        plain_view(&kvs).counts(),
        "counted from the changes"
    );
    cache.basis().note(Some(HashMap::new()));
    assert_eq!(daemon_render(&t, &kvs, &cache, &limits).unwrap(), out);
    assert_eq!(last_run(), (10_000, 0));
}

#[test]
fn fragments_of_a_render_that_failed_after_them_are_walked_not_spliced() {
    let t = parse("{{range gets \"/app/servers/*\"}}{{.Value}};{{end}}{{getv \"/flag\"}}");
    let cache = Arc::new(EntryCache::default());
    let limits = RenderLimits::default();
    let mut kvs = servers(100);
    kvs.insert("/flag".into(), "!".into());
    let note = |before: &KvMap, after: &KvMap| {
        cache.basis().note(Some(changes_between(before, after)));
    };
    cache.basis().note(None);
    daemon_render(&t, &Arc::new(kvs.clone()), &cache, &limits).unwrap();
    // The loop finishes, then the render fails: its fragments are newer than the basis.
    let mut failing = kvs.clone();
    failing.remove("/flag");
    failing.insert("/app/servers/web000007".into(), "changed".into());
    note(&kvs, &failing);
    daemon_render(&t, &Arc::new(failing.clone()), &cache, &limits).unwrap_err();
    let mut good = failing.clone();
    good.insert("/flag".into(), "!".into());
    good.insert("/app/servers/web000007".into(), "again".into());
    note(&failing, &good);
    let out = daemon_render(&t, &Arc::new(good.clone()), &cache, &limits).unwrap();
    assert!(!last_spliced(), "walked: the fragments are not the basis's");
    assert_eq!(out, t.render(&plain_view(&Arc::new(good.clone()))).unwrap());
    let mut next = good.clone();
    next.insert("/app/servers/web000008".into(), "x".into());
    note(&good, &next);
    let out = daemon_render(&t, &Arc::new(next.clone()), &cache, &limits).unwrap();
    assert!(last_spliced());
    assert_eq!(out, t.render(&plain_view(&Arc::new(next))).unwrap());
}

#[test]
fn copied_fragments_keep_to_the_output_limit_and_a_failed_loop_keeps_nothing() {
    let t = parse(S1_LOOP);
    let cache = Arc::new(EntryCache::default());
    let kvs = Arc::new(servers(100));
    let full = daemon_render(&t, &kvs, &cache, &RenderLimits::default()).unwrap();
    let small = RenderLimits::sized(full.len() / 2);
    let plain = t.render_with(&plain_view(&kvs), &small).unwrap_err();
    let cached = daemon_render(&t, &kvs, &cache, &small).unwrap_err();
    assert_eq!(cached.message, plain.message);
    // The failed loop left nothing: every body runs again.
    daemon_render(&t, &kvs, &cache, &RenderLimits::default()).unwrap();
    assert_eq!(last_run(), (0, 100));
}

/// Names and values the random keyspaces are made of; some make bodies fail (`atoi` of
/// a non-number, `base` of a name with a space).
/// `x//y` is a name memkv cleans (`x/y`): with it, loops are walked, never spliced.
const NAMES: &[&str] = &[
    "a", "b", "c", "web1", "web2", "x y", "z", "a/sub", "b/sub", "x//y",
];
const VALUES: &[&str] = &[
    "1",
    "22",
    "x",
    "10.0.0.1:80",
    "a:b:c",
    "",
    "bad value",
    "-3",
];
const DIRS: &[&str] = &["/s/", "/d/p/", "/d/q/", "/e/"];

#[derive(Debug, Clone)]
enum Change {
    Set(usize, usize, usize),
    Delete(usize, usize),
    /// Every key under one directory.
    DeleteAll(usize),
    /// Every key of one directory set to one value.
    SetAll(usize, usize),
}

fn change() -> impl Strategy<Value = Change> {
    let (d, n, v) = (0..DIRS.len(), 0..NAMES.len(), 0..VALUES.len());
    prop_oneof![
        4 => (d.clone(), n.clone(), v.clone()).prop_map(|(d, n, v)| Change::Set(d, n, v)),
        2 => (d.clone(), n).prop_map(|(d, n)| Change::Delete(d, n)),
        1 => d.clone().prop_map(Change::DeleteAll),
        1 => (d, v).prop_map(|(d, v)| Change::SetAll(d, v)),
    ]
}

fn apply(kvs: &mut KvMap, c: &Change) {
    match *c {
        Change::Set(d, n, v) => {
            kvs.insert(format!("{}{}", DIRS[d], NAMES[n]), VALUES[v].to_string());
        }
        Change::Delete(d, n) => {
            kvs.remove(&format!("{}{}", DIRS[d], NAMES[n]));
        }
        Change::DeleteAll(d) => kvs.retain(|k, _| !k.starts_with(DIRS[d])),
        Change::SetAll(d, v) => {
            for (_, val) in kvs.iter_mut().filter(|(k, _)| k.starts_with(DIRS[d])) {
                *val = VALUES[v].to_string();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn daemon_renders_match_fresh_renders(
        bodies in prop::collection::vec(0..CACHEABLE.len() + NOT_CACHEABLE.len(), 1..5),
        start in prop::collection::vec(change(), 0..12),
        changes in prop::collection::vec(change(), 1..16),
        limit in prop::sample::select(vec![usize::MAX, 300, 60]),
        noting in any::<bool>(),
        extra in prop::collection::vec((0..DIRS.len(), 0..NAMES.len()), 0..3),
    ) {
        // A body that defines a template is used once (Go refuses a second definition of a
        // name in one parse).
        let mut defined = std::collections::HashSet::new();
        let src: String = bodies
            .iter()
            .map(|&b| CACHEABLE.get(b).copied().unwrap_or_else(|| NOT_CACHEABLE[b - CACHEABLE.len()]))
            .filter(|body| !body.contains("{{define") || defined.insert(*body))
            .map(|body| format!("{body}\n--\n"))
            .collect();
        let t = parse(&src);
        let limits = RenderLimits::sized(limit.min(RenderLimits::default().max_size));
        let cache = Arc::new(EntryCache::default());
        let mut kvs = KvMap::new();
        for c in &start {
            apply(&mut kvs, c);
        }
        // Each step renders twice with the cache (the second copies everything). When
        // `noting`, the cache is told the keys changed, as a daemon's worker tells it (and
        // a few more that did not change: a superset must do too), and its `gets` loops
        // splice.
        if noting {
            cache.basis().note(None);
        }
        let mut before = kvs.clone();
        for c in std::iter::once(None).chain(changes.iter().map(Some)) {
            if let Some(c) = c {
                apply(&mut kvs, c);
            }
            let snapshot = Arc::new(kvs.clone());
            let fresh = t.render_with(&plain_view(&snapshot), &limits);
            for again in [false, true] {
                if noting {
                    let mut changed = changes_between(&before, &kvs);
                    if !again {
                        for &(d, n) in &extra {
                            let k = format!("{}{}", DIRS[d], NAMES[n]);
                            let held = before.contains_key(&k);
                            changed.entry(k).or_insert(held);
                        }
                    }
                    cache.basis().note(Some(changed));
                    before = kvs.clone();
                }
                prop_assert_eq!(
                    plain_view(&snapshot).with_cache(cache.clone()).counts(),
                    plain_view(&snapshot).counts()
                );
                let cached = daemon_render(&t, &snapshot, &cache, &limits);
                match (&fresh, &cached) {
                    (Ok(a), Ok(b)) => prop_assert_eq!(
                        String::from_utf8_lossy(a), String::from_utf8_lossy(b), "{:?} after {:?}", src, c
                    ),
                    (Err(a), Err(b)) => prop_assert_eq!(&a.message, &b.message),
                    _ => prop_assert!(false, "{:?} after {:?}: fresh {:?}, cached {:?}", src, c, fresh, cached),
                }
            }
        }
    }
}
