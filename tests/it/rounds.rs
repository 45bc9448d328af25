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

/// `splay`: resources changed together reload at random moments spread over the window,
/// not at once.
#[test]
fn splay_spreads_reloads_over_the_window() {
    let dir = tempdir();
    let d = dir.path();
    let data_file = write(d, "data.yaml", "app:\n  v: one\n");
    write(
        d,
        "confsync.toml",
        &format!(
            "backend = \"file\"\nfile = [\"{}\"]\nwatch = true\nsplay = \"1s\"\n",
            data_file.display()
        ),
    );
    write(d, "templates/t.tmpl", "{{ getv(key=\"/app/v\") }}\n");
    let reloads = d.join("reloads");
    const N: usize = 8;
    for i in 0..N {
        // Commands of their own: no round joins them.
        write(
            d,
            &format!("conf.d/r{i}.toml"),
            &format!(
                "[template]\nsrc = \"t.tmpl\"\ndest = \"{}/out/r{i}\"\nkeys = [\"/app\"]\nreload_cmd = \"echo {i} $(date +%s%N) >> {}\"\n",
                d.display(),
                reloads.display()
            ),
        );
    }
    std::fs::create_dir_all(d.join("out")).unwrap();
    let mut c = confsync();
    c.args(["run", "--confdir"]).arg(d);
    let _daemon = Proc::spawn("confsync", c, &d.join("confsync.log"));
    let log = || std::fs::read_to_string(d.join("confsync.log")).unwrap_or_default();
    wait_for(LIMIT, || (lines(&reloads).len() == N).then_some(()))
        .unwrap_or_else(|| panic!("first reloads missing; log:\n{}", log()));

    let changed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tmp = d.join("data.tmp");
    std::fs::write(&tmp, "app:\n  v: two\n").unwrap();
    std::fs::rename(&tmp, &data_file).unwrap();
    wait_for(LIMIT, || (lines(&reloads).len() == 2 * N).then_some(()))
        .unwrap_or_else(|| panic!("reloads after the change missing; log:\n{}", log()));
    let after: Vec<f64> = lines(&reloads)[N..]
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u128>().ok())
        .map(|t| t.saturating_sub(changed_at) as f64 / 1e9)
        .collect();
    assert_eq!(after.len(), N, "{:?}", lines(&reloads));
    let (lo, hi) = after
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    eprintln!("splay: reloads {lo:.3}s to {hi:.3}s after the change");
    assert!(
        hi < 2.5,
        "a reload came {hi:.3}s after the change (splay 1s)"
    );
    assert!(
        hi - lo > 0.2,
        "{N} reloads within {:.3}s of each other: not spread",
        hi - lo
    );
}
