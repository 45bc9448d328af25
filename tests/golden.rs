//! The confd golden corpus (tests/golden/cases): every template rendered by confsync's Go
//! engine must give byte for byte what real confd wrote for it, and a case where confd
//! failed must fail here too, leaving nothing rendered.
//!
//! A plain `main` (no test harness) so the cases' environment variables are set before
//! any thread starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use confsync::template::View;
use confsync::template::go::GoTemplate;

/// A case as `tests/golden/README.md` describes it.
struct Case {
    name: String,
    dir: PathBuf,
    keys: Vec<String>,
    prefix: String,
    env: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
struct CaseToml {
    #[serde(default)]
    keys: Option<Vec<String>>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    #[allow(dead_code)]
    note: Option<String>,
}

/// Cases where confsync differs from confd on purpose, with the reason.
const DIFFERENT: &[(&str, &str)] = &[
    (
        "err_else_with",
        "Go 1.23 (and the maintained fork) accept {{else with}}; confsync does too",
    ),
    (
        "err_range_int",
        "Go 1.22 (and the maintained fork) range over an int; confsync does too",
    ),
    (
        "slice_mid_rune",
        "Go strings are bytes, so slicing inside a UTF-8 sequence writes half a character; \
         confsync's strings are UTF-8 and write U+FFFD for the cut bytes",
    ),
];

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cases");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("tests/golden/cases")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let dir = root.join(&name);
            let text = std::fs::read_to_string(dir.join("case.toml")).expect("case.toml");
            let t: CaseToml =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{name}/case.toml: {e}"));
            Case {
                name,
                dir,
                keys: t.keys.unwrap_or_else(|| vec!["/".into()]),
                prefix: t.prefix.unwrap_or_default(),
                env: t.env.into_iter().collect(),
            }
        })
        .collect()
}

/// Renders one case; `Err` is the error text (data, parse or render).
fn render(case: &Case) -> Result<Vec<u8>, String> {
    let kvs = confsync::backend::file::load(&[case.dir.join("data.yaml")])?;
    let bytes = std::fs::read(case.dir.join("template.tmpl")).map_err(|e| e.to_string())?;
    let prefix = confsync::template::join_key("", &case.prefix);
    let view = View::new(Arc::new(kvs), &prefix, &case.keys);
    let t = GoTemplate::parse_bytes("template.tmpl", &bytes).map_err(|e| format!("parse: {e}"))?;
    t.render(&view).map_err(|e| format!("render: {e}"))
}

fn main() {
    let cases = cases();
    // SAFETY: no other thread runs yet. The corpus was written with TZ=UTC.
    unsafe { std::env::set_var("TZ", "UTC") };
    for c in &cases {
        for (k, v) in &c.env {
            // SAFETY: no other thread runs yet.
            unsafe { std::env::set_var(k, v) };
        }
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut passed = 0;
    for c in cases
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| c.name.contains(o.as_str())))
    {
        if let Some((_, why)) = DIFFERENT.iter().find(|(n, _)| *n == c.name) {
            println!("golden {}: differs from confd on purpose: {why}", c.name);
            continue;
        }
        let expected = std::fs::read(c.dir.join("expected")).ok();
        let got = render(c);
        match (expected, got) {
            (Some(e), Ok(g)) if e == g => passed += 1,
            (Some(e), Ok(g)) => failed.push(format!(
                "{}: output differs\n--- confd\n{}\n--- confsync\n{}",
                c.name,
                String::from_utf8_lossy(&e),
                String::from_utf8_lossy(&g)
            )),
            (Some(_), Err(err)) => failed.push(format!(
                "{}: confd rendered it, confsync failed: {err}",
                c.name
            )),
            (None, Err(_)) => passed += 1,
            (None, Ok(g)) => {
                let why = std::fs::read_to_string(c.dir.join("expected.err")).unwrap_or_default();
                failed.push(format!(
                    "{}: confd failed ({}), confsync rendered:\n{}",
                    c.name,
                    why.trim(),
                    String::from_utf8_lossy(&g)
                ))
            }
        }
    }
    for f in &failed {
        println!("FAIL {f}\n");
    }
    println!("golden: {passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
