//! One reload per round (issue 15): resources that share a `reload_cmd` and change
//! together run it once, after all their files are in place; a resource with a
//! command of its own still runs its own.

use std::path::Path;
use std::time::Duration;

use crate::support::{Proc, confsync, tempdir, wait_for, write};

const LIMIT: Duration = Duration::from_secs(15);

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn data(generation: u32) -> String {
    format!(
        "app:\n  a: a{generation}\n  b: b{generation}\n  c: c{generation}\n  d: d{generation}\n"
    )
}

#[test]
fn three_resources_sharing_a_reload_command_reload_once_per_round() {
    let dir = tempdir();
    let d = dir.path();
    let data_file = write(d, "data.yaml", &data(1));
    write(
        d,
        "confsync.toml",
        &format!(
            "backend = \"file\"\nfile = [\"{}\"]\nwatch = true\n",
            data_file.display()
        ),
    );
    let reloads = d.join("reloads");
    let own = d.join("own-reloads");
    // The command sees every file of the round in place: it records them all.
    let shared = format!(
        "echo $(cat {dir}/out/a {dir}/out/b {dir}/out/c) >> {log}",
        dir = d.display(),
        log = reloads.display()
    );
    for name in ["a", "b", "c", "d"] {
        write(
            d,
            &format!("templates/{name}.tmpl"),
            &format!("{{{{ getv(key=\"/app/{name}\") }}}}\n"),
        );
        let cmd = if name == "d" {
            format!("echo d >> {}", own.display())
        } else {
            shared.clone()
        };
        write(
            d,
            &format!("conf.d/{name}.toml"),
            &format!(
                "[template]\nsrc = \"{name}.tmpl\"\ndest = \"{}/out/{name}\"\nkeys = [\"/app\"]\nreload_cmd = '''{cmd}'''\ncheck_cmd = \"sleep 0.0{}\"\n",
                d.display(),
                // Checks of different lengths: the files land at different times.
                ["a", "b", "c", "d"]
                    .iter()
                    .position(|n| *n == name)
                    .unwrap()
                    * 3,
            ),
        );
    }
    std::fs::create_dir_all(d.join("out")).unwrap();
    let mut c = confsync();
    c.args(["run", "--confdir"])
        .arg(d)
        .args(["--log-level", "debug"]);
    let _daemon = Proc::spawn("confsync", c, &d.join("confsync.log"));
    let log = || std::fs::read_to_string(d.join("confsync.log")).unwrap_or_default();

    // The first render: one shared reload, seeing all three files.
    let first = wait_for(LIMIT, || lines(&reloads).first().cloned())
        .unwrap_or_else(|| panic!("no reload at start; log:\n{}", log()));
    assert_eq!(first.trim(), "a1 b1 c1", "log:\n{}", log());
    wait_for(LIMIT, || (lines(&own).len() == 1).then_some(()))
        .unwrap_or_else(|| panic!("d's own reload did not run; log:\n{}", log()));

    let tmp = d.join("data.tmp");
    std::fs::write(&tmp, data(2)).unwrap();
    std::fs::rename(&tmp, &data_file).unwrap();
    let second = wait_for(LIMIT, || lines(&reloads).get(1).cloned())
        .unwrap_or_else(|| panic!("no reload after the change; log:\n{}", log()));
    assert_eq!(second.trim(), "a2 b2 c2", "log:\n{}", log());
    wait_for(LIMIT, || (lines(&own).len() == 2).then_some(()))
        .unwrap_or_else(|| panic!("d's own reload did not run again; log:\n{}", log()));
    // No third shared reload follows.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lines(&reloads).len(),
        2,
        "{:?}\nlog:\n{}",
        lines(&reloads),
        log()
    );
}
