//! A tiny HTTP server for tests: the web apps behind HAProxy and nginx, and the targets of
//! registration health checks. One thread per connection, so a health check holding its
//! connection open never delays a request; stops when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the server answers: a status line's code and reason, and a body.
pub type Reply = (&'static str, String);

/// A server on 127.0.0.1 answering every request with `reply()`.
pub struct TinyHttp {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TinyHttp {
    /// Answers every request with `reply()`.
    pub fn start(reply: impl Fn() -> Reply + Send + Sync + 'static) -> TinyHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let reply = Arc::new(reply);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let reply = reply.clone();
                        std::thread::spawn(move || answer(conn, reply()));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TinyHttp {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Answers every request with 200 and `body`.
    pub fn body(body: &str) -> TinyHttp {
        let body = body.to_string();
        TinyHttp::start(move || ("200 OK", body.clone()))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TinyHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head (bounded by size and a read timeout) and answers `reply`.
fn answer(mut conn: TcpStream, (status, body): Reply) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 65536 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The trimmed body of `GET /` on 127.0.0.1:`port` (HTTP/1.0, 2 s timeout), whatever
/// the status, or `None` when nothing answers.
pub fn body_of(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
}
