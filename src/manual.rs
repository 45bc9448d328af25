//! `confsync man` and `confsync completions`: man pages and shell completions generated
//! from the clap definitions of [`crate::cli`], so they never drift from the flags. The
//! Debian package (`scripts/package.sh`) installs what these print.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

use crate::cli::Cli;

/// The command line as clap sees it, built (bin names of subcommands filled in), without
/// clap's `help` subcommand (it has no page of its own).
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Writes `confsync.1` to `out`.
pub fn print_man(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command()).render(out)
}

/// Writes `confsync.1` and one page per subcommand (`confsync-run.1`, ...) into `dir`,
/// which is created when missing; returns the paths written. An error names the file.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    write_tree(command(), dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), String> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut bytes = Vec::new();
    man.render(&mut bytes)
        .and_then(|()| std::fs::write(&path, &bytes))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub.clone(), dir, written)?;
    }
    Ok(())
}

/// The completion script for `shell` (built in memory: clap_complete panics when its
/// writer fails, and a closed stdout must be an error, not a panic).
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "confsync", &mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_page_per_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let written = super::write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "confsync.1",
            "confsync-run.1",
            "confsync-register.1",
            "confsync-man.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        let page = std::fs::read_to_string(dir.path().join("confsync-run.1")).unwrap();
        assert!(page.contains("confdir"), "{page}");
    }

    #[test]
    fn completions_name_the_subcommands() {
        let text = String::from_utf8(super::completions(clap_complete::Shell::Bash)).unwrap();
        assert!(
            text.contains("register") && text.contains("completions"),
            "{text}"
        );
    }
}
