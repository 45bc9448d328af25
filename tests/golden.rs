//! The confd golden corpus (tests/golden/cases): every template rendered by confsync's Go
//! engine must give byte for byte what real confd wrote for it, and a case where confd
//! failed must fail here too, leaving nothing rendered.
//!
//! Every template is also converted to Tera (`confsync convert`); a converted template,
//! rendered by the Tera engine from the same keys, must give the same bytes (or fail
//! where confd failed). At the end the run prints how many converted and why the
//! others did not.
//!
//! A plain `main` (no test harness) so the cases' environment variables are set before
//! any thread starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use confsync::template::go::GoTemplate;
use confsync::template::{Engine, View, convert};

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

/// Cases whose conversion renders differently for reasons of confsync's Tera functions,
/// not of the converter: they see keys as the resource's view names them, where confd's
/// memkv renamed keys (a prefix cut off as a plain string).
const TERA_DIFFERENT: &[(&str, &str)] = &[(
    "prefix_string_trim",
    "confd cuts the prefix /app off /application/b as a string (/lication/b); confsync's Tera functions keep the whole key",
)];

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

/// The case's keys as its resource sees them.
fn view(case: &Case) -> Result<View, String> {
    let kvs = confsync::backend::file::load(&[case.dir.join("data.yaml")])?;
    let prefix = confsync::template::join_key("", &case.prefix);
    Ok(View::new(Arc::new(kvs), &prefix, &case.keys))
}

fn parse(case: &Case) -> Result<GoTemplate, String> {
    let bytes = std::fs::read(case.dir.join("template.tmpl")).map_err(|e| e.to_string())?;
    GoTemplate::parse_bytes("template.tmpl", &bytes).map_err(|e| format!("parse: {e}"))
}

/// Renders one case; `Err` is the error text (data, parse or render).
fn render(case: &Case) -> Result<Vec<u8>, String> {
    let t = parse(case)?;
    let view = view(case)?;
    t.render(&view).map_err(|e| format!("render: {e}"))
}

/// The Tera template converted from the case's, rendered.
fn render_tera(case: &Case, tera: &str) -> Result<Vec<u8>, String> {
    let mut engine = Engine::new();
    engine
        .add_raw("template.tmpl.tera", tera)
        .map_err(|e| format!("the converted template does not load: {e}"))?;
    let view = view(case)?;
    engine
        .render("template.tmpl.tera", view)
        .map_err(|e| format!("render: {e}"))
}

/// What became of converting one case.
enum Conversion {
    /// The Go template does not parse: nothing to convert.
    NoParse,
    /// Converted; how many notes.
    Converted(usize),
    /// Not convertible, and why.
    Not(String),
}

/// Converts one case and checks the Tera render against confd's; failures go to
/// `failed`.
fn check_conversion(c: &Case, expected: Option<&[u8]>, failed: &mut Vec<String>) -> Conversion {
    let Ok(t) = parse(c) else {
        return Conversion::NoParse;
    };
    let converted = match convert::convert(&t) {
        Ok(conv) => conv,
        Err(e) => return Conversion::Not(e.to_string()),
    };
    if std::env::var_os("CONFSYNC_GOLDEN_SHOW").is_some() {
        println!("=== {} converted:\n{}", c.name, converted.text);
        for n in &converted.notes {
            println!("    {n}");
        }
    }
    if let Some((_, why)) = TERA_DIFFERENT.iter().find(|(n, _)| *n == c.name) {
        println!("golden {} (Tera): differs from confd: {why}", c.name);
        return Conversion::Converted(converted.notes.len());
    }
    let got = render_tera(c, &converted.text);
    let show = || {
        let notes: Vec<String> = converted.notes.iter().map(|n| format!("    {n}")).collect();
        format!(
            "--- converted\n{}\n--- notes\n{}",
            converted.text,
            notes.join("\n")
        )
    };
    match (expected, got) {
        (Some(e), Ok(g)) if e == g.as_slice() => {}
        (Some(e), Ok(g)) => failed.push(format!(
            "{} (Tera): output differs\n--- confd\n{}\n--- tera\n{}\n{}",
            c.name,
            String::from_utf8_lossy(e),
            String::from_utf8_lossy(&g),
            show()
        )),
        (Some(_), Err(err)) => failed.push(format!(
            "{} (Tera): confd rendered it, the converted template failed: {err}\n{}",
            c.name,
            show()
        )),
        (None, Err(_)) => {}
        (None, Ok(g)) => failed.push(format!(
            "{} (Tera): confd failed, the converted template rendered:\n{}\n{}",
            c.name,
            String::from_utf8_lossy(&g),
            show()
        )),
    }
    Conversion::Converted(converted.notes.len())
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
    let (mut converted, mut with_notes, mut no_parse) = (0, 0, 0);
    let mut not_convertible = Vec::new();
    for c in cases
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| c.name.contains(o.as_str())))
    {
        if let Some((_, why)) = DIFFERENT.iter().find(|(n, _)| *n == c.name) {
            println!("golden {}: differs from confd on purpose: {why}", c.name);
            continue;
        }
        let expected = std::fs::read(c.dir.join("expected")).ok();
        match check_conversion(c, expected.as_deref(), &mut failed) {
            Conversion::NoParse => no_parse += 1,
            Conversion::Converted(notes) => {
                converted += 1;
                with_notes += usize::from(notes > 0);
            }
            Conversion::Not(why) => not_convertible.push((c.name.clone(), why)),
        }
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
    println!(
        "convert: {converted} converted ({with_notes} with notes), {} not convertible, {no_parse} do not parse as Go templates",
        not_convertible.len()
    );
    // A template confd itself fails on is reported, not converted: those are listed by
    // name, the others with their reason.
    let (rejected, limits): (Vec<&(String, String)>, Vec<_>) = not_convertible
        .iter()
        .partition(|(_, why)| why.contains("confd fails here"));
    let names: Vec<&str> = rejected.iter().map(|(n, _)| n.as_str()).collect();
    println!(
        "  {} not convertible because confd fails on them too: {}",
        names.len(),
        names.join(", ")
    );
    for (name, why) in limits {
        println!("  not convertible: {name}: {why}");
    }
    println!("golden: {passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
