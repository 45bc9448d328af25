//! `confsync status`'s client: `GET /status.json` from a daemon's `--metrics-addr`
//! over HTTP/1.1 (hyper), bounded in time and size. An address that listens on every
//! interface (`0.0.0.0:PORT`, `[::]:PORT`) is asked on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::Report;

/// The whole exchange, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a report is bounded per resource; this bounds the client).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why no report came.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("nothing answers on {addr} ({why}); is confsync running with --metrics-addr {addr}?")]
    NoAnswer { addr: String, why: String },
    #[error("{addr} answered {status} to GET /status.json (an older confsync, or not confsync?)")]
    Status { addr: String, status: u16 },
    #[error("{addr}: cannot read the answer: {why}")]
    Body { addr: String, why: String },
}

/// The report of the daemon serving on `addr` (`HOST:PORT`).
pub async fn fetch(addr: &str) -> Result<Report, FetchError> {
    match tokio::time::timeout(TIMEOUT, exchange(addr)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::NoAnswer {
            addr: addr.to_owned(),
            why: format!("no answer within {TIMEOUT:?}"),
        }),
    }
}

async fn exchange(addr: &str) -> Result<Report, FetchError> {
    let no_answer = |why: String| FetchError::NoAnswer {
        addr: addr.to_owned(),
        why,
    };
    let body_error = |why: String| FetchError::Body {
        addr: addr.to_owned(),
        why,
    };
    let targets: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| no_answer(e.to_string()))?
        .map(loopback_if_any)
        .collect();
    let mut last = "the address resolves to nothing".to_owned();
    let mut stream = None;
    for t in targets {
        match tokio::net::TcpStream::connect(t).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let stream = stream.ok_or_else(|| no_answer(last))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| no_answer(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let request = Request::get("/status.json")
        .header(hyper::header::HOST, addr)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Body::empty())
        .map_err(|e| body_error(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| no_answer(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        conn.abort();
        return Err(FetchError::Status {
            addr: addr.to_owned(),
            status: status.as_u16(),
        });
    }
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_BODY)
        .await
        .map_err(|e| body_error(e.to_string()))?;
    conn.abort();
    serde_json::from_slice(&bytes).map_err(|e| body_error(e.to_string()))
}

/// `0.0.0.0:P` as `127.0.0.1:P` and `[::]:P` as `[::1]:P`; others unchanged.
fn loopback_if_any(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), a.port())
        }
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_address_is_asked_on_loopback() {
        let a: SocketAddr = "0.0.0.0:9117".parse().unwrap();
        assert_eq!(loopback_if_any(a), "127.0.0.1:9117".parse().unwrap());
        let b: SocketAddr = "[::]:1".parse().unwrap();
        assert_eq!(loopback_if_any(b), "[::1]:1".parse().unwrap());
    }

    #[tokio::test]
    async fn a_closed_port_names_the_address() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let e = fetch(&addr).await.unwrap_err().to_string();
        assert!(e.contains(&format!("nothing answers on {addr}")), "{e}");
    }
}
