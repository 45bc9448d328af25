//! Exec mode's settings (`exec`, `exec_reload_signal`, `exec_kill_signal`,
//! `exec_kill_timeout`, `exec_restart`) and `splay`, validated from [`Settings`].

use std::time::Duration;

use nix::sys::signal::Signal;

use super::settings::Settings;
use super::{ConfigError, duration};

/// How long the child has to stop when `exec_kill_timeout` is not set.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// A child confsync runs beside the files it writes (`--exec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// The command as given, for logs.
    pub command: String,
    /// Its words: split like a shell splits them (quotes and backslashes), with no
    /// expansion, globbing or pipes; the first is the program, looked up in `PATH`.
    pub argv: Vec<String>,
    /// Sent after a round of changes replaced files.
    pub reload_signal: Signal,
    /// Sent once when confsync stops.
    pub kill_signal: Signal,
    /// After the kill signal, how long before SIGKILL.
    pub kill_timeout: Duration,
    /// Start the child again when it exits, instead of exiting with its status.
    pub restart: bool,
}

/// `HUP`, `SIGHUP`, `hup` or a number such as `1`.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let t = text.trim();
    let bad =
        || format!("{text:?} is not a signal name such as HUP, USR2 or TERM (or a signal number)");
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().map_err(|_| bad())
}

/// The exec settings of `s`, or `None` without `exec`; problems go to `errors`.
pub fn exec_config(s: &Settings, errors: &mut Vec<ConfigError>) -> Option<ExecConfig> {
    let command = s.exec.as_deref().map(str::trim).filter(|c| !c.is_empty())?;
    let mut signal = |field: &str, given: &Option<String>, default: Signal| match given {
        None => default,
        Some(t) => parse_signal(t).unwrap_or_else(|e| {
            errors.push(ConfigError::cli(format!("{field}: {e}")));
            default
        }),
    };
    let reload_signal = signal("exec_reload_signal", &s.exec_reload_signal, Signal::SIGHUP);
    let kill_signal = signal("exec_kill_signal", &s.exec_kill_signal, Signal::SIGTERM);
    let kill_timeout = match &s.exec_kill_timeout {
        None => DEFAULT_KILL_TIMEOUT,
        Some(raw) => raw.to_duration().unwrap_or_else(|e| {
            errors.push(ConfigError::cli(format!("exec_kill_timeout: {e}")));
            DEFAULT_KILL_TIMEOUT
        }),
    };
    let argv = match shlex::split(command) {
        Some(words) if !words.is_empty() => words,
        _ => {
            errors.push(ConfigError::cli(format!(
                "exec: {command:?} cannot be split into words (an unclosed quote, or a trailing backslash)"
            )));
            Vec::new()
        }
    };
    if s.onetime == Some(true) {
        errors.push(ConfigError::cli(
            "exec cannot be combined with onetime: the child would be started and stopped at once",
        ));
    }
    Some(ExecConfig {
        command: command.to_string(),
        argv,
        reload_signal,
        kill_signal,
        kill_timeout,
        restart: s.exec_restart.unwrap_or(false),
    })
}

/// The global `splay` (zero when not set or off); problems go to `errors`.
pub fn splay(s: &Settings, errors: &mut Vec<ConfigError>) -> Duration {
    match &s.splay {
        None => Duration::ZERO,
        Some(raw) => duration::optional(raw)
            .map(Option::unwrap_or_default)
            .unwrap_or_else(|e| {
                errors.push(ConfigError::cli(format!("splay: {e}")));
                Duration::ZERO
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(cmd: &str) -> Settings {
        Settings {
            exec: Some(cmd.into()),
            ..Settings::default()
        }
    }

    #[test]
    fn signals_are_named_with_or_without_sig_or_by_number() {
        assert_eq!(parse_signal("HUP"), Ok(Signal::SIGHUP));
        assert_eq!(parse_signal("sigusr2"), Ok(Signal::SIGUSR2));
        assert_eq!(parse_signal("15"), Ok(Signal::SIGTERM));
        let e = parse_signal("BOGUS").unwrap_err();
        assert!(e.contains("\"BOGUS\""), "{e}");
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn the_command_is_split_like_a_shell_and_defaults_fill_the_rest() {
        let mut errors = Vec::new();
        let c = exec_config(&exec("nginx -g 'daemon off;'"), &mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.argv, ["nginx", "-g", "daemon off;"]);
        assert_eq!(c.reload_signal, Signal::SIGHUP);
        assert_eq!(c.kill_signal, Signal::SIGTERM);
        assert_eq!(c.kill_timeout, DEFAULT_KILL_TIMEOUT);
        assert!(!c.restart);
        assert_eq!(exec_config(&exec("  "), &mut errors), None);
    }

    #[test]
    fn every_bad_exec_setting_is_reported() {
        let s = Settings {
            exec_reload_signal: Some("NOPE".into()),
            exec_kill_timeout: Some(duration::Raw::Text("soon".into())),
            onetime: Some(true),
            ..exec("sh -c 'unclosed")
        };
        let mut errors = Vec::new();
        exec_config(&s, &mut errors);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{text:?}");
        for want in [
            "exec_reload_signal",
            "exec_kill_timeout",
            "split",
            "onetime",
        ] {
            assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:?}");
        }
    }

    #[test]
    fn exec_and_splay_from_confsync_toml_and_per_resource() {
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        put(
            "confsync.toml",
            "exec = \"haproxy -W -f cfg\"\nexec-reload-signal = \"USR2\"\nexec_kill_timeout = \"3s\"\nexec_restart = true\nsplay = \"2s\"\n",
        );
        put("templates/a.tmpl", "x");
        put(
            "conf.d/a.toml",
            "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\nsplay = \"500ms\"\nbackup = true\n",
        );
        put(
            "conf.d/b.toml",
            "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/b\"\n",
        );
        let cfg = super::super::run_config(dir.path(), None, Settings::default()).unwrap();
        let e = cfg.exec.unwrap();
        assert_eq!(e.argv, ["haproxy", "-W", "-f", "cfg"]);
        assert_eq!(e.reload_signal, Signal::SIGUSR2);
        assert_eq!(e.kill_timeout, Duration::from_secs(3));
        assert!(e.restart);
        assert_eq!(cfg.splay, Duration::from_secs(2));
        let set = super::super::load_resources(dir.path(), "").unwrap();
        let (a, b) = (&set.resources[0], &set.resources[1]);
        assert_eq!(a.splay, Some(Duration::from_millis(500)));
        assert!(a.backup);
        assert_eq!(b.splay, None);
        assert!(!b.backup);
    }

    #[test]
    fn splay_is_zero_unless_set() {
        let mut errors = Vec::new();
        assert_eq!(splay(&Settings::default(), &mut errors), Duration::ZERO);
        let s = Settings {
            splay: Some(duration::Raw::Text("2s".into())),
            ..Settings::default()
        };
        assert_eq!(splay(&s, &mut errors), Duration::from_secs(2));
        assert!(errors.is_empty());
    }
}
