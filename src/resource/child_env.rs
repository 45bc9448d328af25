//! The environment check and reload commands (and `register --check-cmd`) run with.
//!
//! confsync's own variables (`CONFSYNC_*`, among them `CONFSYNC_PASSWORD`) and confd's
//! (`CONFD_*`, among them `CONFD_CLIENT_PASSWORD`) are where it reads secrets from, so
//! they never reach a child: a reload that runs `env`, or a proxy config expanding
//! `${CONFSYNC_PASSWORD}` (HAProxy does that in quoted strings), sees nothing. systemd's
//! notification variables are removed too: only confsync itself talks to systemd.
//!
//! The rest of the environment depends on `command_env`:
//! - unset (the default): everything else is kept. confd passes its whole environment to
//!   its commands, and reload commands rely on it (`PATH`, `KUBECONFIG`, `DOCKER_HOST`,
//!   variables a unit file sets): a migrated `reload_cmd` that silently lost them would
//!   leave the proxy on a stale config. The variables confsync knows to be secret are the
//!   ones removed.
//! - a list: only the variables it names (exact names, or a prefix ending in `*` such as
//!   `LC_*`) are kept, for a host whose daemon environment holds other secrets.

use std::ffi::{OsStr, OsString};

/// Prefixes of the variables no child ever sees.
pub const SECRET_PREFIXES: [&str; 2] = ["CONFSYNC_", "CONFD_"];

/// What a child command's environment holds. The default keeps everything but the
/// secret and systemd variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandEnv {
    /// `command_env`: the only variables kept, when set (`NAME` or `PREFIX*`).
    allow: Option<Vec<String>>,
}

impl CommandEnv {
    /// The default: the daemon's environment without its secrets.
    pub const INHERIT: CommandEnv = CommandEnv { allow: None };

    /// [`CommandEnv::INHERIT`], borrowed for as long as needed.
    pub fn inherit() -> &'static CommandEnv {
        static INHERIT: CommandEnv = CommandEnv::INHERIT;
        &INHERIT
    }

    /// An allow-list (`None`: inherit); an error for an entry that is empty, holds `=`,
    /// or names a variable that is never passed (`CONFSYNC_*`, `CONFD_*`).
    pub fn new(allow: Option<Vec<String>>) -> Result<CommandEnv, String> {
        if let Some(list) = &allow {
            for name in list {
                let stem = name.strip_suffix('*').unwrap_or(name);
                if stem.is_empty() && !name.is_empty() {
                    return Err("command_env: `*` alone would pass everything; leave command_env unset to keep the environment".into());
                }
                if name.is_empty()
                    || stem.contains(['=', '*'])
                    || stem.contains(char::is_whitespace)
                {
                    return Err(format!(
                        "command_env: {name:?} is not a variable name (NAME, or a prefix ending in * such as LC_*)"
                    ));
                }
                // A shorter prefix (`CONF*`) is fine: it passes what it matches, never these.
                if let Some(p) = SECRET_PREFIXES.iter().find(|p| stem.starts_with(**p)) {
                    return Err(format!(
                        "command_env: {name:?} names {p}* variables, which hold secrets and never reach a command"
                    ));
                }
            }
        }
        Ok(CommandEnv { allow })
    }

    /// Whether a child gets the variable `name`.
    pub fn passes(&self, name: &OsStr) -> bool {
        let bytes = name.as_encoded_bytes();
        if SECRET_PREFIXES
            .iter()
            .any(|p| bytes.starts_with(p.as_bytes()))
            || crate::systemd::CHILD_ENV_REMOVE
                .iter()
                .any(|v| bytes == v.as_bytes())
        {
            return false;
        }
        match &self.allow {
            None => true,
            Some(list) => list.iter().any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => bytes.starts_with(prefix.as_bytes()),
                None => bytes == entry.as_bytes(),
            }),
        }
    }

    /// The variables of this process a child gets.
    pub fn vars(&self) -> Vec<(OsString, OsString)> {
        std::env::vars_os()
            .filter(|(name, _)| self.passes(name))
            .collect()
    }

    /// Gives `command` exactly [`CommandEnv::vars`].
    pub fn apply(&self, command: &mut tokio::process::Command) {
        command.env_clear().envs(self.vars());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(env: &CommandEnv, name: &str) -> bool {
        env.passes(OsStr::new(name))
    }

    #[test]
    fn secrets_never_pass_and_the_rest_does_by_default() {
        let env = CommandEnv::INHERIT;
        for name in [
            "CONFSYNC_PASSWORD",
            "CONFSYNC_NODE",
            "CONFD_CLIENT_PASSWORD",
            "NOTIFY_SOCKET",
        ] {
            assert!(!passes(&env, name), "{name}");
        }
        for name in ["PATH", "KUBECONFIG", "CONFSYNCX", "MY_CONFSYNC_X"] {
            assert!(passes(&env, name), "{name}");
        }
    }

    #[test]
    fn an_allow_list_keeps_only_what_it_names() {
        let env = CommandEnv::new(Some(vec!["PATH".into(), "LC_*".into()])).unwrap();
        assert!(passes(&env, "PATH") && passes(&env, "LC_ALL") && passes(&env, "LC_"));
        assert!(!passes(&env, "PATHX") && !passes(&env, "HOME") && !passes(&env, "LANG"));
        assert!(!passes(&CommandEnv::new(Some(Vec::new())).unwrap(), "PATH"));
    }

    #[test]
    fn an_allow_list_cannot_let_secrets_through() {
        for bad in ["CONFSYNC_PASSWORD", "CONFD_*", "*", "", "A=B", "A B", "A*B"] {
            assert!(
                CommandEnv::new(Some(vec![bad.into()])).is_err(),
                "{bad:?} accepted"
            );
        }
        let env = CommandEnv::new(Some(vec!["CONF*".into(), "C".into()])).unwrap();
        assert!(passes(&env, "CONFIG_PATH") && !passes(&env, "CONFSYNC_PASSWORD"));
    }
}
