//! The server changes of a diff as Runtime API commands, in an order that never sends
//! traffic somewhere it should not go: new servers are added (they start in
//! maintenance) and only then enabled; changed servers are readdressed, reweighted,
//! disabled or enabled; removed servers drain (up to `drain_timeout`), go to
//! maintenance, lose their sessions and are deleted. Then `show servers state` of each
//! backend touched must agree with the new file.

use std::time::{Duration, Instant};

use super::config::BackendChange;
use super::server_line::ServerLine;
use super::socket::{Socket, parse_sessions, parse_state};
use super::{Fallback, Reason};

/// How long `del server` is retried while HAProxy still holds connections to it.
const DELETE_PATIENCE: Duration = Duration::from_secs(2);
/// Pause between polls (drain, delete retries).
const POLL: Duration = Duration::from_millis(10);

/// What a successful answer to a command looks like.
#[derive(Clone, Copy)]
enum Expect {
    /// Nothing but blank lines.
    Empty,
    /// The answer starts with one of these.
    Starts(&'static [&'static str]),
}

/// Counts commands and turns answers into fallbacks.
struct Session<'a> {
    sock: &'a Socket,
    sent: usize,
}

impl Session<'_> {
    async fn send(&mut self, command: &str) -> Result<String, Fallback> {
        self.sent += 1;
        self.sock
            .call(command)
            .await
            .map_err(|e| Fallback::new(Reason::Socket, e.to_string()))
    }

    async fn run(&mut self, command: &str, expect: Expect) -> Result<(), Fallback> {
        let answer = self.send(command).await?;
        let a = answer.trim();
        let ok = match expect {
            Expect::Empty => a.is_empty(),
            Expect::Starts(prefixes) => prefixes.iter().any(|p| a.starts_with(p)),
        };
        if ok {
            return Ok(());
        }
        let reason = if a.contains("is not accepted for dynamic server") {
            Reason::RefusedLine
        } else {
            Reason::Command
        };
        Err(Fallback::new(
            reason,
            format!("`{command}`: HAProxy answered {a:?}"),
        ))
    }
}

/// Applies `changes`; returns how many commands were sent.
pub async fn apply(
    sock: &Socket,
    changes: &[BackendChange],
    drain: Duration,
) -> Result<usize, Fallback> {
    let mut s = Session { sock, sent: 0 };
    for c in changes {
        for l in &c.added {
            let mut cmd = format!("add server {}/{} {}", c.backend, l.name, l.address());
            if l.weight != 1 {
                cmd.push_str(&format!(" weight {}", l.weight));
            }
            for w in &l.rest {
                cmd.push(' ');
                cmd.push_str(w);
            }
            s.run(&cmd, Expect::Starts(&["New server registered"]))
                .await?;
        }
    }
    for c in changes {
        for l in &c.added {
            switch_on(&mut s, &c.backend, l).await?;
        }
        for (was, now) in &c.changed {
            change(&mut s, &c.backend, was, now).await?;
        }
    }
    remove(&mut s, changes, drain).await?;
    for c in changes {
        verify(&mut s, c).await?;
    }
    Ok(s.sent)
}

/// Health and agent checks on, then the server, unless it is `disabled`.
async fn switch_on(s: &mut Session<'_>, be: &str, l: &ServerLine) -> Result<(), Fallback> {
    let id = format!("{be}/{}", l.name);
    if l.check {
        s.run(&format!("enable health {id}"), Expect::Empty).await?;
    }
    if l.agent {
        s.run(&format!("enable agent {id}"), Expect::Empty).await?;
    }
    if !l.disabled {
        s.run(&format!("enable server {id}"), Expect::Empty).await?;
    }
    Ok(())
}

async fn change(
    s: &mut Session<'_>,
    be: &str,
    was: &ServerLine,
    now: &ServerLine,
) -> Result<(), Fallback> {
    let id = format!("{be}/{}", now.name);
    if (was.addr, was.port) != (now.addr, now.port) {
        let mut cmd = format!("set server {id} addr {}", now.addr);
        if let Some(p) = now.port {
            cmd.push_str(&format!(" port {p}"));
        }
        s.run(&cmd, Expect::Starts(&["IP changed", "no need to change"]))
            .await?;
    }
    if was.weight != now.weight {
        s.run(&format!("set weight {id} {}", now.weight), Expect::Empty)
            .await?;
    }
    if was.disabled != now.disabled {
        let verb = if now.disabled { "disable" } else { "enable" };
        s.run(&format!("{verb} server {id}"), Expect::Empty).await?;
    }
    Ok(())
}

/// Drain (all at once, bounded by `drain`), maintenance, sessions shut, delete.
async fn remove(
    s: &mut Session<'_>,
    changes: &[BackendChange],
    drain: Duration,
) -> Result<(), Fallback> {
    let mut removed: Vec<(&str, &str)> = Vec::new();
    for c in changes {
        removed.extend(c.removed.iter().map(|n| (c.backend.as_str(), n.as_str())));
    }
    if !drain.is_zero() && !removed.is_empty() {
        for (be, name) in &removed {
            s.run(
                &format!("set server {be}/{name} state drain"),
                Expect::Empty,
            )
            .await?;
        }
        let end = Instant::now() + drain;
        'wait: while Instant::now() < end {
            for c in changes.iter().filter(|c| !c.removed.is_empty()) {
                let sessions =
                    parse_sessions(&s.send(&format!("show stat {} 4 -1", c.backend)).await?);
                if c.removed
                    .iter()
                    .any(|n| sessions.get(n).is_some_and(|n| *n > 0))
                {
                    tokio::time::sleep(POLL).await;
                    continue 'wait;
                }
            }
            break;
        }
    }
    for (be, name) in &removed {
        let id = format!("{be}/{name}");
        s.run(&format!("set server {id} state maint"), Expect::Empty)
            .await?;
        s.run(&format!("shutdown sessions server {id}"), Expect::Empty)
            .await?;
    }
    for (be, name) in &removed {
        let cmd = format!("del server {be}/{name}");
        let end = Instant::now() + DELETE_PATIENCE;
        loop {
            match s.run(&cmd, Expect::Starts(&["Server deleted"])).await {
                Ok(()) => break,
                Err(e) if e.reason == Reason::Command && Instant::now() < end => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// `show servers state` of the backend against the new file's servers.
async fn verify(s: &mut Session<'_>, c: &BackendChange) -> Result<(), Fallback> {
    let answer = s.send(&format!("show servers state {}", c.backend)).await?;
    let bad =
        |detail: String| Fallback::new(Reason::Verify, format!("backend {}: {detail}", c.backend));
    let live = parse_state(&answer).map_err(|e| bad(format!("show servers state: {e}")))?;
    if live.len() != c.servers.len() {
        return Err(bad(format!(
            "HAProxy has {} servers, the file {}",
            live.len(),
            c.servers.len()
        )));
    }
    for l in &c.servers {
        let Some(got) = live.get(&l.name) else {
            return Err(bad(format!("server {} is missing", l.name)));
        };
        let want = (Some(l.addr), l.port.unwrap_or(0), l.weight, l.disabled);
        let have = (got.addr, got.port, got.weight, got.in_maint());
        if want != have {
            return Err(bad(format!(
                "server {}: (addr, port, weight, maintenance) is {have:?}, the file says {want:?}",
                l.name
            )));
        }
    }
    Ok(())
}
