//! Prometheus metrics: what the daemon did per resource and how each backend is doing.
//!
//! One [`Metrics`] is made at start and shared (it is an `Arc`); every method is cheap,
//! lock-free on the hot path after a label set's first use, and never fails. The HTTP
//! server in [`crate::http`] serves [`Metrics::encode`] on `/metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `confsync_renders_total` | counter | `resource` |
//! | `confsync_render_errors_total` | counter | `resource` |
//! | `confsync_render_timeouts_total` | counter | `resource` |
//! | `confsync_check_failures_total` | counter | `resource` |
//! | `confsync_reloads_total` | counter | `resource` |
//! | `confsync_reload_failures_total` | counter | `resource` |
//! | `confsync_write_failures_total` | counter | `resource` |
//! | `confsync_reload_pending` | gauge (0/1) | `resource` |
//! | `confsync_guard_refusals_total` | counter | `resource`, `guard` |
//! | `confsync_backend_up` | gauge (0/1) | `backend` |
//! | `confsync_backend_errors_total` | counter | `backend` |
//! | `confsync_data_refused_total` | counter | `backend` |
//! | `confsync_backend_keys` | gauge | `backend` |
//! | `confsync_backend_last_sync_timestamp_seconds` | gauge (unix time) | `backend` |
//! | `confsync_backend_serving_saved_state` | gauge (0/1) | `backend` |
//! | `confsync_backend_invalid_text_total` | counter | `kind` (etcd, redis) |
//! | `confsync_change_to_file_seconds` | histogram | none |
//! | `confsync_runtime_updates_total` | counter | `resource` |
//! | `confsync_runtime_fallbacks_total` | counter | `resource`, `reason` |

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output (prometheus-client writes OpenMetrics text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of the per-resource counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    /// The resource's name (its conf.d file stem).
    resource: String,
}

/// Labels of the guard refusal counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardLabels {
    resource: String,
    /// Which guard refused: `min_keys`, `value_pattern` or `key_pattern`.
    guard: String,
}

/// Labels of the runtime fallback counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FallbackLabels {
    resource: String,
    /// Why HAProxy was reloaded instead: one of [`crate::haproxy::Reason`]'s labels.
    reason: String,
}

/// Labels of the per-backend metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    /// The backend's name (`[backends.NAME]`, or the default one).
    backend: String,
}

/// Labels of counters a backend updates itself: it knows its kind, not the name it was
/// configured under.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    /// The backend's kind: `etcd`, `redis`.
    kind: String,
}

type ResourceCounter = Family<ResourceLabels, Counter>;
type BackendCounter = Family<BackendLabels, Counter>;
type BackendGauge = Family<BackendLabels, Gauge>;
type BackendTimeGauge = Family<BackendLabels, Gauge<f64, AtomicU64>>;

/// The registry and every metric family confsync exports.
///
/// Families are cheap handles onto shared storage; the registry holds clones of them
/// for encoding, the fields below are what the methods update.
pub struct Metrics {
    registry: Registry,
    renders: ResourceCounter,
    render_errors: ResourceCounter,
    render_timeouts: ResourceCounter,
    check_failures: ResourceCounter,
    reloads: ResourceCounter,
    reload_failures: ResourceCounter,
    guard_refusals: Family<GuardLabels, Counter>,
    write_failures: ResourceCounter,
    reload_pending: Family<ResourceLabels, Gauge>,
    backend_up: BackendGauge,
    backend_errors: BackendCounter,
    data_refused: BackendCounter,
    backend_keys: BackendGauge,
    backend_last_sync: BackendTimeGauge,
    serving_saved: BackendGauge,
    /// From an event arriving at the daemon to the destination file being replaced.
    change_latency: Histogram,
    runtime_updates: ResourceCounter,
    runtime_fallbacks: Family<FallbackLabels, Counter>,
}

impl Metrics {
    /// Builds the registry with every family registered (and no series until first use).
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        // Counters are registered without `_total`: the encoder appends it.
        let renders = ResourceCounter::default();
        registry.register(
            "confsync_renders",
            "Templates rendered, per resource",
            renders.clone(),
        );
        let render_errors = ResourceCounter::default();
        registry.register(
            "confsync_render_errors",
            "Renders that failed (template error, missing key), per resource",
            render_errors.clone(),
        );
        let render_timeouts = ResourceCounter::default();
        registry.register(
            "confsync_render_timeouts",
            "Renders abandoned at their render_timeout (reported as stuck), per resource",
            render_timeouts.clone(),
        );
        let check_failures = ResourceCounter::default();
        registry.register(
            "confsync_check_failures",
            "Staged files refused by check_cmd (or its timeout), per resource",
            check_failures.clone(),
        );
        let reloads = ResourceCounter::default();
        registry.register(
            "confsync_reloads",
            "Successful reload_cmd runs, per resource",
            reloads.clone(),
        );
        let reload_failures = ResourceCounter::default();
        registry.register(
            "confsync_reload_failures",
            "Failed or timed out reload_cmd runs, per resource",
            reload_failures.clone(),
        );
        let guard_refusals = Family::<GuardLabels, Counter>::default();
        registry.register(
            "confsync_guard_refusals",
            "Renders refused or keys left out by a guard (min_keys, value_pattern, key_pattern)",
            guard_refusals.clone(),
        );
        let write_failures = ResourceCounter::default();
        registry.register(
            "confsync_write_failures",
            "Destination reads, stage writes or swaps that failed (full disk, read-only or failing filesystem), per resource",
            write_failures.clone(),
        );
        let reload_pending = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "confsync_reload_pending",
            "1 while the file in place still owes its reload (being retried), per resource",
            reload_pending.clone(),
        );
        let backend_up = BackendGauge::default();
        registry.register(
            "confsync_backend_up",
            "1 if the backend's last listing or watch succeeded, else 0",
            backend_up.clone(),
        );
        let data_refused = BackendCounter::default();
        registry.register(
            "confsync_data_refused",
            "Keys dropped by max_value_size or max_keys, and listings refused by max_keys, per backend",
            data_refused.clone(),
        );
        let backend_errors = BackendCounter::default();
        registry.register(
            "confsync_backend_errors",
            "Backend errors (each failed attempt, including retries)",
            backend_errors.clone(),
        );
        let backend_keys = BackendGauge::default();
        registry.register(
            "confsync_backend_keys",
            "Keys held in the backend's last good snapshot",
            backend_keys.clone(),
        );
        let backend_last_sync = BackendTimeGauge::default();
        registry.register(
            "confsync_backend_last_sync_timestamp_seconds",
            "Unix time the backend's keys were last known current: its last successful \
             listing, or the last check (every few seconds) that its watch is connected; \
             while serving saved state, when that state was last current",
            backend_last_sync.clone(),
        );
        let serving_saved = BackendGauge::default();
        registry.register(
            "confsync_backend_serving_saved_state",
            "1 while the backend has not answered since start and its snapshot saved by \
             an earlier run is rendered instead, else 0",
            serving_saved.clone(),
        );
        registry.register(
            "confsync_backend_invalid_text",
            "Keys or values left out of a listing or watch event because they are not UTF-8, \
             per backend kind",
            invalid_text().clone(),
        );
        // 0.5 ms, 1 ms, 2 ms ... 8.192 s: 15 doubling buckets (plus +Inf).
        let change_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 15));
        registry.register(
            "confsync_change_to_file_seconds",
            "Seconds from a backend change arriving to the destination file being replaced",
            change_latency.clone(),
        );
        let runtime_updates = ResourceCounter::default();
        registry.register(
            "confsync_runtime_updates",
            "Changes made through HAProxy's Runtime API without a reload, per resource",
            runtime_updates.clone(),
        );
        let runtime_fallbacks = Family::<FallbackLabels, Counter>::default();
        registry.register(
            "confsync_runtime_fallbacks",
            "Changes of a resource with haproxy_socket that were reloaded instead, per reason",
            runtime_fallbacks.clone(),
        );
        Arc::new(Metrics {
            registry,
            renders,
            render_errors,
            render_timeouts,
            check_failures,
            reloads,
            reload_failures,
            guard_refusals,
            write_failures,
            reload_pending,
            backend_up,
            backend_errors,
            data_refused,
            backend_keys,
            backend_last_sync,
            serving_saved,
            change_latency,
            runtime_updates,
            runtime_fallbacks,
        })
    }

    /// The whole registry in OpenMetrics text format (see [`CONTENT_TYPE`]), ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; an error could only come from a label
        // encoder, and then a partial page is still better than none.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %err, "encoding metrics failed; /metrics is incomplete");
        }
        out
    }

    /// Counts a successful render of `resource` (`confsync_renders_total`).
    pub fn rendered(&self, resource: &str) {
        self.renders.get_or_create(&res(resource)).inc();
    }

    /// Counts a render of `resource` abandoned at its render_timeout
    /// (`confsync_render_timeouts_total`).
    pub fn render_timed_out(&self, resource: &str) {
        self.render_timeouts.get_or_create(&res(resource)).inc();
    }

    /// Counts a failed render of `resource` (`confsync_render_errors_total`).
    pub fn render_failed(&self, resource: &str) {
        self.render_errors.get_or_create(&res(resource)).inc();
    }

    /// Counts a staged file of `resource` refused by its check command
    /// (`confsync_check_failures_total`).
    pub fn check_failed(&self, resource: &str) {
        self.check_failures.get_or_create(&res(resource)).inc();
    }

    /// Counts a successful reload of `resource` (`confsync_reloads_total`).
    pub fn reloaded(&self, resource: &str) {
        self.reloads.get_or_create(&res(resource)).inc();
    }

    /// Counts a failed reload of `resource` (`confsync_reload_failures_total`).
    pub fn reload_failed(&self, resource: &str) {
        self.reload_failures.get_or_create(&res(resource)).inc();
    }

    /// Counts a failed destination read, stage write or swap of `resource`
    /// (`confsync_write_failures_total`).
    pub fn write_failed(&self, resource: &str) {
        self.write_failures.get_or_create(&res(resource)).inc();
    }

    /// Counts a change made through HAProxy's Runtime API (`confsync_runtime_updates_total`).
    pub fn runtime_updated(&self, resource: &str) {
        self.runtime_updates.get_or_create(&res(resource)).inc();
    }

    /// Counts a change reloaded instead of applied at runtime, for `reason`
    /// (`confsync_runtime_fallbacks_total`).
    pub fn runtime_fell_back(&self, resource: &str, reason: &str) {
        let labels = FallbackLabels {
            resource: resource.to_owned(),
            reason: reason.to_owned(),
        };
        self.runtime_fallbacks.get_or_create(&labels).inc();
    }

    /// Sets `confsync_reload_pending{resource}`: 1 while its reload is owed.
    pub fn set_reload_pending(&self, resource: &str, pending: bool) {
        self.reload_pending
            .get_or_create(&res(resource))
            .set(i64::from(pending));
    }

    /// Counts a refusal by `guard` (`"min_keys"`, `"value_pattern"` or `"key_pattern"`)
    /// for `resource` (`confsync_guard_refusals_total`).
    pub fn guard_refused(&self, resource: &str, guard: &str) {
        let labels = GuardLabels {
            resource: resource.to_owned(),
            guard: guard.to_owned(),
        };
        self.guard_refusals.get_or_create(&labels).inc();
    }

    /// Sets `confsync_backend_up{backend}` to 1 or 0.
    pub fn set_backend_up(&self, backend: &str, up: bool) {
        self.backend_up
            .get_or_create(&be(backend))
            .set(i64::from(up));
    }

    /// Counts one key dropped or listing refused by a backend's data limits
    /// (`confsync_data_refused_total`).
    pub fn data_refused(&self, backend: &str) {
        self.data_refused.get_or_create(&be(backend)).inc();
    }

    /// Counts one backend error (`confsync_backend_errors_total`).
    pub fn backend_error(&self, backend: &str) {
        self.backend_errors.get_or_create(&be(backend)).inc();
    }

    /// Sets how many keys the backend's last good snapshot holds (`confsync_backend_keys`).
    pub fn set_keys_held(&self, backend: &str, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.backend_keys.get_or_create(&be(backend)).set(n);
    }

    /// Records now as the backend's last successful sync
    /// (`confsync_backend_last_sync_timestamp_seconds`).
    pub fn synced(&self, backend: &str) {
        self.synced_at(backend, SystemTime::now());
    }

    /// Records `at` as the time the backend's keys were last known current (for saved
    /// state: when it was saved as current).
    pub fn synced_at(&self, backend: &str, at: SystemTime) {
        // A clock before 1970 would be a broken host; report 0 rather than fail.
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.backend_last_sync.get_or_create(&be(backend)).set(secs);
    }

    /// Sets `confsync_backend_serving_saved_state{backend}` to 1 or 0.
    pub fn set_serving_saved_state(&self, backend: &str, yes: bool) {
        self.serving_saved
            .get_or_create(&be(backend))
            .set(i64::from(yes));
    }

    /// Creates every per-resource series of `resource` at 0, so they exist (and `rate()`
    /// sees their first increment) before anything happens. Optional; call at start.
    pub fn init_resource(&self, resource: &str) {
        let labels = res(resource);
        for family in [
            &self.renders,
            &self.render_errors,
            &self.render_timeouts,
            &self.check_failures,
            &self.reloads,
            &self.reload_failures,
            &self.write_failures,
        ] {
            drop(family.get_or_create(&labels));
        }
        for guard in ["min_keys", "value_pattern", "key_pattern"] {
            let labels = GuardLabels {
                resource: resource.to_owned(),
                guard: guard.to_owned(),
            };
            drop(self.guard_refusals.get_or_create(&labels));
        }
        drop(self.reload_pending.get_or_create(&res(resource)));
    }

    /// Creates the error counter of `backend` at 0 and its up gauge at 0 (down until
    /// its first successful listing). Optional; call at start.
    pub fn init_backend(&self, backend: &str) {
        let labels = be(backend);
        drop(self.backend_errors.get_or_create(&labels));
        drop(self.data_refused.get_or_create(&labels));
        drop(self.backend_up.get_or_create(&labels));
        drop(self.serving_saved.get_or_create(&labels));
    }

    /// Observes the time from a change arriving to its file being replaced
    /// (`confsync_change_to_file_seconds`).
    pub fn observe_change_latency(&self, seconds: f64) {
        self.change_latency.observe(seconds);
    }
}

/// Keys and values left out because they are not UTF-8, by backend kind. Process-wide,
/// because the backends count them where they read the bytes, below any [`Metrics`].
fn invalid_text() -> &'static Family<KindLabels, Counter> {
    static FAMILY: OnceLock<Family<KindLabels, Counter>> = OnceLock::new();
    FAMILY.get_or_init(Family::default)
}

/// Counts `n` keys or values a `kind` backend left out as not UTF-8
/// (`confsync_backend_invalid_text_total`).
pub fn count_invalid_text(kind: &str, n: u64) {
    let labels = KindLabels {
        kind: kind.to_owned(),
    };
    invalid_text().get_or_create(&labels).inc_by(n);
}

fn res(resource: &str) -> ResourceLabels {
    ResourceLabels {
        resource: resource.to_owned(),
    }
}

fn be(backend: &str) -> BackendLabels {
    BackendLabels {
        backend: backend.to_owned(),
    }
}

#[cfg(test)]
mod tests;
