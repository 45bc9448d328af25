//! Sorting etcd client errors into transient (retry) and fatal (configuration), with
//! messages that name the endpoints and never the password.

use etcd_client::Error;
use tonic::Code;

use super::KIND;
use crate::backend::BackendError;

/// Why one listing attempt failed.
#[derive(Debug)]
pub(super) enum ListError {
    /// The client or the server refused a request.
    Client(Error),
    /// A range response came without a header, so without a revision.
    NoHeader,
}

/// True when a request failed because its revision was compacted (retry at a new one).
pub(super) fn is_compacted(e: &Error) -> bool {
    !is_too_large(e)
        && matches!(e, Error::GRpcStatus(s) if s.code() == Code::OutOfRange || s.message().contains("compacted"))
}

/// True when an answer was larger than the client takes (a page of large values: ask
/// for a smaller one).
pub(super) fn is_too_large(e: &Error) -> bool {
    matches!(e, Error::GRpcStatus(s) if s.code() == Code::OutOfRange && s.message().contains("message length too large"))
}

/// Turns a client error into a [`BackendError`] naming `endpoint`; `secret` (the
/// password) is replaced wherever it appears.
pub(super) fn classify(endpoint: &str, secret: Option<&str>, e: Error) -> BackendError {
    let (fatal, message) = match &e {
        Error::GRpcStatus(s) => {
            let msg = s.message();
            let code = s.code();
            if msg.contains("authentication failed") {
                (
                    true,
                    format!("authentication failed (wrong user name or password): {msg}"),
                )
            } else if msg.contains("authentication is not enabled") {
                (
                    true,
                    format!(
                        "a user name was given but authentication is not enabled on the server: {msg}"
                    ),
                )
            } else if msg.contains("user name is empty") || msg.contains("user name not found") {
                (
                    true,
                    format!(
                        "the server requires authentication: give --username and --password ({msg})"
                    ),
                )
            } else if code == Code::PermissionDenied || msg.contains("permission denied") {
                (
                    true,
                    format!("permission denied: the user may not read these keys ({msg})"),
                )
            } else {
                // Unavailable, DeadlineExceeded, Unknown (transport), no leader, compacted...
                (false, format!("{code:?}: {msg}"))
            }
        }
        Error::InvalidArgs(_) | Error::InvalidUri(_) | Error::InvalidMetadataValue(_) => {
            (true, e.to_string())
        }
        _ => (false, full_chain(&e)),
    };
    let message = scrub(message, secret);
    if fatal {
        BackendError::fatal(KIND, endpoint, message)
    } else {
        BackendError::transient(KIND, endpoint, message)
    }
}

/// The error and its sources, so "transport error" says which transport error.
fn full_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    // Source chains are short; the bound only guards against a cycle.
    for _ in 0..8 {
        let Some(s) = src else { break };
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// Replaces the password wherever it appears in `msg`.
fn scrub(msg: String, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() && msg.contains(s) => msg.replace(s, "<redacted>"),
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_password_is_fatal_and_scrubbed() {
        let e = Error::GRpcStatus(tonic::Status::invalid_argument(
            "etcdserver: authentication failed, invalid user ID or password pw123",
        ));
        let err = classify("http://127.0.0.1:2379", Some("pw123"), e);
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(text.contains("http://127.0.0.1:2379"), "{text}");
        assert!(text.contains("authentication failed"), "{text}");
        assert!(!text.contains("pw123"), "{text}");
    }

    #[test]
    fn unavailable_is_transient() {
        let e = Error::GRpcStatus(tonic::Status::unavailable("connection refused"));
        assert!(classify("x", None, e).is_transient());
        let e = Error::GRpcStatus(tonic::Status::out_of_range(
            "etcdserver: mvcc: required revision has been compacted",
        ));
        assert!(is_compacted(&e));
        let e = Error::GRpcStatus(tonic::Status::out_of_range(
            "Error, decoded message length too large: found 70000000 bytes, the limit is: 67108864 bytes",
        ));
        assert!(is_too_large(&e) && !is_compacted(&e));
        assert!(classify("x", None, e).is_transient());
    }
}
