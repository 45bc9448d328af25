//! Cargo.toml's `rust-version` is honest: no older than what the code needs (let-chains,
//! stable in 1.88) and no older than any dependency's own `rust-version`. Only one
//! toolchain is at hand, so the claim is checked against the dependencies' declarations
//! (`cargo metadata`) instead of by building with that toolchain.

use std::process::Command;

/// What the code itself needs: let-chains (`if let ... && let ...`), stable in 1.88.
const CODE_NEEDS: (u64, u64, u64) = (1, 88, 0);

/// `1.88` or `1.88.0` as a comparable triple.
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| {
        p.parse::<u64>()
            .unwrap_or_else(|_| panic!("rust-version {text:?} is not N.N[.N]"))
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor, parts.next().unwrap_or(0))
}

fn host_triple() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("no host line in rustc -vV:\n{text}"))
        .to_string()
}

#[test]
fn rust_version_is_at_least_what_every_dependency_declares() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Every feature's dependencies, for this platform (others' crates are not downloaded).
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--all-features",
        ])
        .args(["--filter-platform", &host_triple()])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("metadata has packages");
    let ours = packages
        .iter()
        .find(|p| p["name"] == env!("CARGO_PKG_NAME"))
        .expect("confsync in its own metadata");
    let declared_text = ours["rust_version"]
        .as_str()
        .expect("Cargo.toml declares rust-version");
    let declared = version(declared_text);
    assert!(
        declared >= CODE_NEEDS,
        "Cargo.toml's rust-version {declared_text} is older than the 1.88 the code needs (let-chains)"
    );
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let theirs = p["rust_version"].as_str()?;
            (version(theirs) > declared)
                .then(|| format!("{} {} needs {theirs}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "Cargo.toml's rust-version {declared_text} is older than dependencies need: {}",
        too_new.join("; ")
    );
}
