//! What the metrics server answers, as an axum [`Router`]: `/metrics`, `/health`,
//! `/ready`, the status page (`/`, `/status.json`), 404 for other paths and 405 for
//! other methods.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Health;
use crate::metrics::{self, Metrics};
use crate::status::{Status, html};

const TEXT: &str = "text/plain; charset=utf-8";

/// What every handler reads.
#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    status: Arc<Status>,
}

/// The routes over the daemon's metrics and health. `get` routes answer `HEAD` too,
/// without the body.
pub(super) fn router(metrics: Arc<Metrics>, health: Arc<Health>, status: Arc<Status>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/health", get(health_page))
        .route("/ready", get(ready_page))
        .route("/", get(status_page))
        .route("/status.json", get(status_json))
        .fallback(not_found)
        .layer(map_response(common_headers))
        .with_state(Shared {
            metrics,
            health,
            status,
        })
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT)], body.into()).into_response()
}

async fn metrics_page(State(s): State<Shared>) -> Response {
    let body = s.metrics.encode();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

async fn health_page(State(s): State<Shared>) -> Response {
    if s.health.is_running() {
        text(StatusCode::OK, "ok\n")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not running\n")
    }
}

async fn ready_page(State(s): State<Shared>) -> Response {
    match s.health.assess(Instant::now()) {
        (None, None) => text(StatusCode::OK, "ready\n"),
        (None, Some(notes)) => text(StatusCode::OK, format!("ready; {notes}\n")),
        (Some(why), _) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// The status page: escaped text only, and a policy that lets the browser load nothing
/// and run no script whatever the page holds.
async fn status_page(State(s): State<Shared>) -> Response {
    let body = html::page(&s.status.report());
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn status_json(State(s): State<Shared>) -> Response {
    match serde_json::to_string_pretty(&s.status.report()) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the status: {e}\n"),
        ),
    }
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// Every answer, 405 included, is fresh and ends its connection: one request per
/// connection keeps the connection cap meaningful (no idle keep-alive slots).
async fn common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
