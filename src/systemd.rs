//! systemd's notify protocol (`Type=notify`): readiness, reloads, stopping, status
//! lines and the watchdog, sent as datagrams to `$NOTIFY_SOCKET`.
//!
//! Without `NOTIFY_SOCKET` every method does nothing, so the daemon calls them
//! unconditionally. Messages are formatted with the `sd-notify` crate; the datagram is
//! sent here so a [`Notifier`] can also target an explicit socket ([`Notifier::with_socket`],
//! used by tests) and so abstract sockets (`@name`) work.
//!
//! `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` are read, never removed from the
//! environment (removing them is unsafe once threads run). Child processes must not
//! inherit them, or a `reload_cmd` that speaks the protocol (or a shell script calling
//! `systemd-notify`) could tell systemd things about confsync: the code that spawns
//! check and reload commands removes them from the child's environment
//! (`Command::env_remove`), see [`CHILD_ENV_REMOVE`].
//!
//! The expected sequence: [`Notifier::ready`] after the first render of every resource;
//! on SIGHUP [`Notifier::reloading`], then [`Notifier::ready`] again once the new
//! configuration is in place (or the old one kept); [`Notifier::stopping`] on shutdown;
//! [`Notifier::watchdog`] every [`Notifier::watchdog_interval`] while the loop is healthy.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

/// Environment variables of the notify protocol that spawned commands must not inherit.
pub const CHILD_ENV_REMOVE: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// Where notifications go, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract socket: `NOTIFY_SOCKET=@name`, stored without the `@`.
    Abstract(Vec<u8>),
}

/// Sends sd_notify messages to systemd, or nothing when not run by systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    /// Half of `WATCHDOG_USEC`, when the watchdog is meant for this process.
    watchdog: Option<Duration>,
    /// Set after the first failed send, so a missing socket is logged once, not per
    /// watchdog tick.
    send_error_logged: AtomicBool,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (and leaves them set).
    pub fn from_env() -> Notifier {
        let watchdog = watchdog_interval_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        let notifier = match std::env::var_os("NOTIFY_SOCKET") {
            Some(socket) if !socket.is_empty() => Notifier::with_socket(socket),
            _ => Notifier::disabled(),
        };
        Notifier {
            watchdog,
            ..notifier
        }
    }

    /// Sends to `socket`, a path or `@name` for an abstract socket, as `NOTIFY_SOCKET`
    /// would say; no watchdog.
    pub fn with_socket(socket: impl Into<OsString>) -> Notifier {
        let socket = socket.into();
        let bytes = socket.as_encoded_bytes();
        let target = match bytes.strip_prefix(b"@") {
            Some(name) => Target::Abstract(name.to_vec()),
            None => Target::Path(PathBuf::from(socket)),
        };
        Notifier {
            target: Some(target),
            ..Notifier::disabled()
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
            send_error_logged: AtomicBool::new(false),
        }
    }

    /// Whether there is a socket to notify (confsync runs under `Type=notify`).
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`: startup (or a reload) is complete.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=now`, which systemd 253+ requires for
    /// `Type=notify-reload` (older versions ignore it). Follow with [`Notifier::ready`].
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// `STATUS=line`, shown by `systemctl status`; line breaks become spaces (a newline
    /// would start another assignment).
    pub fn status(&self, line: &str) {
        let line = line.replace(['\n', '\r'], " ");
        self.send(&[NotifyState::Status(&line)]);
    }

    /// How often to call [`Notifier::watchdog`]: half of `WATCHDOG_USEC`, or `None` when
    /// the watchdog is off or `WATCHDOG_PID` names another process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `WATCHDOG=1`: the loop is alive.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        let Some(target) = &self.target else {
            return;
        };
        let mut msg = String::new();
        for state in states {
            // Writing into a String cannot fail.
            let _ = writeln!(msg, "{state}");
        }
        if let Err(err) = send_datagram(target, msg.as_bytes())
            && !self.send_error_logged.swap(true, Ordering::Relaxed)
        {
            debug!(error = %err, socket = ?target, "cannot notify systemd (further failures are not logged)");
        }
    }
}

fn send_datagram(target: &Target, msg: &[u8]) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let sent = match target {
        Target::Path(path) => socket.send_to(msg, path)?,
        Target::Abstract(name) => send_abstract(&socket, name, msg)?,
    };
    if sent == msg.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "notification truncated",
        ))
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &[u8], msg: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(msg, &addr)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_socket: &UnixDatagram, _name: &[u8], _msg: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// Half of `usec` microseconds, if set, positive, and meant for `our_pid`.
fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid {
        // An unparsable WATCHDOG_PID cannot be ours.
        if pid.trim().parse::<u32>().ok()? != our_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (dir, path, socket)
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("no datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn messages_arrive() {
        let (_dir, path, socket) = listener();
        let n = Notifier::with_socket(&path);
        assert!(n.enabled());
        assert_eq!(n.watchdog_interval(), None);

        n.ready();
        assert_eq!(recv(&socket), "READY=1\n");
        n.status("3 resources, 2 backends up");
        assert_eq!(recv(&socket), "STATUS=3 resources, 2 backends up\n");
        n.status("two\nlines\r");
        assert_eq!(recv(&socket), "STATUS=two lines \n");
        n.watchdog();
        assert_eq!(recv(&socket), "WATCHDOG=1\n");
        n.reloading();
        let msg = recv(&socket);
        let mut lines = msg.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap();
        assert!(usec.parse::<u64>().unwrap() > 0, "{msg}");
        assert_eq!(lines.next(), None);
        n.stopping();
        assert_eq!(recv(&socket), "STOPPING=1\n");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("confsync-test-{}-{}", std::process::id(), fastrand::u64(..));
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::with_socket(format!("@{name}"));
        n.ready();
        assert_eq!(recv(&socket), "READY=1\n");
    }

    #[test]
    fn missing_socket_is_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::with_socket(dir.path().join("absent.sock"));
        assert!(n.enabled());
        n.ready();
        n.watchdog();
        assert!(n.send_error_logged.load(Ordering::Relaxed));
    }

    #[test]
    fn disabled_sends_nothing() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        n.ready();
        n.stopping();
        assert!(!n.send_error_logged.load(Ordering::Relaxed));
    }

    #[test]
    fn watchdog_interval_parsing() {
        let me = 4242;
        let half = |s| Some(Duration::from_secs(s));
        assert_eq!(watchdog_interval_from(Some("30000000"), None, me), half(15));
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("4242"), me),
            half(15)
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("1"), me),
            None
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("x"), me),
            None
        );
        assert_eq!(watchdog_interval_from(Some("0"), None, me), None);
        assert_eq!(watchdog_interval_from(Some("soon"), None, me), None);
        assert_eq!(watchdog_interval_from(None, Some("4242"), me), None);
        assert_eq!(
            watchdog_interval_from(Some("1001"), None, me),
            Some(Duration::from_nanos(500_500))
        );
    }
}
