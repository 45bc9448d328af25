//! etcd v3 backend on the `etcd-client` crate.
//!
//! - [`EtcdBackend::connect`] only validates the configuration: the gRPC client is built on
//!   first use, because with credentials building it is already a request (authenticate)
//!   and connecting must succeed while etcd is down.
//! - `list` reads every prefix at one revision: the first range fixes the revision, every
//!   later range (and every further page of a large prefix) is pinned to it. A prefix of
//!   up to 100,000 keys is one range where its answer fits `MAX_MESSAGE`; later pages are
//!   sized by the bytes per key the answer before showed, and the listing is made into
//!   its map in one bulk build. A daemon whose store is empty keeps a first listing as
//!   it is (the watch needs only its revision).
//! - `watch` (in [`watch`]) opens one gRPC watch stream carrying one watcher per prefix,
//!   from the snapshot's revision + 1, and sends each response's events as one
//!   [`Update::Changes`](super::Update::Changes). A compaction or a broken stream leads to
//!   a fresh listing ([`Update::Resync`](super::Update::Resync)) and a new watch; so does
//!   every `resync_interval` while the stream is healthy, and events the listing already
//!   holds are then skipped by revision, so a listing never undoes a newer event.
//!
//! Keys and values are bytes in etcd: one that is not UTF-8 is left out with a warning
//! (see [`super::text`]), in listings and in watch events alike.
//!
//! Every member given in `--node` is handed to the client, which balances over them, so
//! losing one member does not stop anything. Errors name the endpoints and never the
//! password.

mod errors;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, KvClient, TlsOptions,
};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::text::Strict;
use super::{Backend, BackendConfig, BackendError, KvMap, Snapshot, Update};
use errors::ListError;

/// The kind name used in logs and errors.
const KIND: &str = "etcd";
/// Where etcd listens when no `--node` is given (as confd does).
const DEFAULT_NODE: &str = "http://127.0.0.1:2379";
/// Keys fetched by a prefix's first range request; a larger prefix is read in pages at
/// one revision. etcd walks its index over the whole remaining range for every page it
/// answers (3.4: to count it), so small pages cost it O(N) each: 20 pages of 5,000 keys
/// cost it 0.93 s of CPU at 100,000 keys against 0.35 s in pages of 50,000, and a first
/// page of 5,000 before one of the rest made a daemon's first render at 100,000 keys
/// take 250-300 ms where one page takes 210-250 ms. An answer too large for
/// `MAX_MESSAGE` (keys and values of over about 640 bytes a key on average, with etcd's
/// own fields) is asked again in half of what it held.
const FIRST_PAGE: i64 = MAX_PAGE;
/// Largest page (about 5 MB of keys and values in a typical registry, well under
/// `MAX_MESSAGE`).
const MAX_PAGE: i64 = 100_000;
/// Bytes of keys and values a page after the first is sized for (by the previous
/// page's bytes per key), well under `MAX_MESSAGE` however large the values.
const PAGE_BYTES: i64 = 16 << 20;
/// Bound on one whole listing: an unreachable cluster must not hang a render.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP connect timeout per member.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 pings on open streams, so a silently dead member breaks the watch stream.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a keepalive ping may stay unanswered.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest gRPC message accepted (a page of keys, a response full of events).
const MAX_MESSAGE: usize = 64 << 20;
/// Attempts of one listing when its revision is compacted between two pages.
const LIST_ATTEMPTS: usize = 3;
/// Pause between quick retries of a failed request (see [`EtcdBackend::attempts`]).
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Reads and watches prefixes in an etcd v3 cluster.
pub struct EtcdBackend {
    /// Every member URL, with an explicit scheme; all are given to the client.
    nodes: Vec<String>,
    /// The members joined with `,`: what errors name, since any member may have answered.
    endpoint: String,
    /// Options for building the client (credentials, TLS, keepalive).
    options: ConnectOptions,
    /// The password, kept only to scrub it from any error text the server sends back.
    secret: Option<String>,
    /// The client, built on first use (with credentials that needs etcd up); clones share
    /// one balanced channel, so the lock is held only while building.
    client: Mutex<Option<Client>>,
    /// How often the watch lists in full beside its events (`None`: only on reconnects).
    resync: Option<Duration>,
}

impl EtcdBackend {
    /// Validates `cfg` (node URLs, credentials, TLS files) for every member in
    /// `cfg.nodes`. Does not contact etcd: the first `list` does.
    pub async fn connect(cfg: &BackendConfig) -> Result<Self, BackendError> {
        let given: Vec<String> = if cfg.nodes.is_empty() {
            vec![DEFAULT_NODE.to_string()]
        } else {
            cfg.nodes.clone()
        };
        let endpoint = given.join(",");
        let fatal = |msg: String| BackendError::fatal(KIND, endpoint.clone(), msg);
        let tls = tls_options(cfg).map_err(fatal)?;
        let nodes = given
            .iter()
            .map(|n| normalize_node(n, tls.is_some()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fatal)?;

        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            // A member cut off from the quorum ends its watches instead of going quiet.
            .with_require_leader(true);
        let secret = match (&cfg.username, &cfg.password) {
            (Some(user), password) => {
                let password = password.clone().unwrap_or_default();
                options = options
                    .with_user(user.clone(), password.clone())
                    .with_auto_token_refresh(true);
                Some(password).filter(|p| !p.is_empty())
            }
            (None, Some(_)) => {
                return Err(BackendError::fatal(
                    KIND,
                    endpoint,
                    "a password was given without a username",
                ));
            }
            (None, None) => None,
        };
        if let Some(tls) = tls {
            options = options.with_tls(tls);
        }
        Ok(Self {
            nodes,
            endpoint,
            options,
            secret,
            client: Mutex::new(None),
            resync: cfg.resync_interval,
        })
    }

    /// The shared client, built (and with credentials, authenticated) on first use.
    pub(crate) async fn client(&self) -> Result<Client, BackendError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let client = Client::connect(&self.nodes, Some(self.options.clone()))
            .await
            .map_err(|e| self.error(e))?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Classifies a client error, naming the endpoints and scrubbing the password.
    pub(crate) fn error(&self, e: etcd_client::Error) -> BackendError {
        errors::classify(&self.endpoint, self.secret.as_deref(), e)
    }

    /// One listing of `prefixes` (already minimal) with the revision pinned.
    async fn list_once(
        &self,
        kv: &mut KvClient,
        prefixes: &[String],
    ) -> Result<Snapshot, ListError> {
        let mut revision: Option<i64> = None;
        // Pairs in the order etcd sends them (key order per prefix), made into the map
        // at the end in one bulk build: full nodes and no search per key.
        let mut pairs: Vec<(String, String)> = Vec::new();
        let started = std::time::Instant::now();
        let mut tally = Tally::default();
        if prefixes.is_empty() {
            // Nothing to read, but a watch still needs the revision to start from.
            let resp = kv
                .get(vec![0u8], Some(GetOptions::new().with_count_only()))
                .await
                .map_err(ListError::Client)?;
            revision = resp.header().map(|h| h.revision());
        }
        for prefix in prefixes {
            let (mut start, end) = key_range(prefix);
            let mut page = FIRST_PAGE;
            // Keys from `start` to the end of the range, once an answer or a count told.
            let mut left: Option<i64> = None;
            loop {
                let opts = GetOptions::new().with_limit(page);
                let got = range(kv, &start, &end, opts, revision, &mut tally).await;
                let mut resp = match got {
                    Ok(resp) => resp,
                    // Keys larger than the page was sized for: the same start again in
                    // half of what the answer held (the revision is pinned, so nothing
                    // moves). How many that was is counted once (cheap: the index only),
                    // so that a first page of 100,000 over a few large values does not
                    // take a dozen halvings, each a whole read for etcd.
                    Err(e) if page > 1 && errors::is_too_large(&e) => {
                        let held = match left {
                            Some(n) => n,
                            None => {
                                let opts = GetOptions::new().with_count_only();
                                let resp = range(kv, &start, &end, opts, revision, &mut tally)
                                    .await
                                    .map_err(ListError::Client)?;
                                if revision.is_none() {
                                    revision = resp.header().map(|h| h.revision());
                                }
                                resp.count()
                            }
                        };
                        left = Some(held);
                        page = smaller_page(page, held);
                        continue;
                    }
                    Err(e) => return Err(ListError::Client(e)),
                };
                if revision.is_none() {
                    revision = resp.header().map(|h| h.revision());
                    if revision.is_none() {
                        return Err(ListError::NoHeader);
                    }
                }
                let more = resp.more();
                let last = resp.kvs().last().map(|kv| kv.key().to_vec());
                // What is left of the range (its count includes this page), in one page
                // where it fits, and in pages of at most PAGE_BYTES at this page's
                // bytes per key (large values: smaller pages).
                let rest = resp.count() - resp.kvs().len() as i64;
                left = Some(rest);
                let bytes: usize = resp
                    .kvs()
                    .iter()
                    .map(|kv| kv.key().len() + kv.value().len())
                    .sum();
                let per_key = (bytes / resp.kvs().len().max(1)).max(1) as i64;
                let by_bytes = (PAGE_BYTES / per_key).max(1);
                let wanted = if rest > 0 { rest } else { MAX_PAGE };
                page = wanted.min(MAX_PAGE).min(by_bytes);
                let mut strict = Strict::new(KIND, &self.endpoint);
                pairs.reserve(resp.count().clamp(0, MAX_PAGE) as usize);
                for item in resp.take_kvs() {
                    let (k, v) = item.into_key_value();
                    if let Some((k, v)) = strict.entry(k, v) {
                        pairs.push((k, v));
                    }
                }
                match (more, last) {
                    (true, Some(mut k)) => {
                        // The next page starts just after the last key read.
                        k.push(0);
                        start = k;
                    }
                    _ => break,
                }
            }
        }
        let kvs: KvMap = pairs.into_iter().collect();
        tracing::debug!(
            backend = KIND,
            keys = kvs.len(),
            pages = tally.pages,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            answers_ms = tally.waited.as_secs_f64() * 1e3,
            "etcd listing"
        );
        match revision {
            Some(rev) => Ok(Snapshot {
                kvs,
                revision: Some(rev),
            }),
            None => Err(ListError::NoHeader),
        }
    }

    async fn list_inner(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        let prefixes = minimal_prefixes(prefixes);
        let mut kv = self
            .client()
            .await?
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE);
        let mut compactions = 0;
        let mut failures = 0;
        loop {
            let err = match self.list_once(&mut kv, &prefixes).await {
                Ok(snap) => return Ok(snap),
                Err(ListError::NoHeader) => BackendError::transient(
                    KIND,
                    self.endpoint.clone(),
                    "range response without a header (no revision)",
                ),
                Err(ListError::Client(e)) if errors::is_compacted(&e) => {
                    // Compacted between two pages: read again at a newer revision.
                    compactions += 1;
                    if compactions < LIST_ATTEMPTS {
                        continue;
                    }
                    self.error(e)
                }
                Err(ListError::Client(e)) => self.error(e),
            };
            failures += 1;
            if !err.is_transient() || failures >= self.attempts() {
                return Err(err);
            }
            tracing::debug!(backend = KIND, error = %err, "etcd listing failed; trying again");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Attempts of one request before giving up: the client balances over the members
    /// and keeps routing some requests to a dead one (they fail at once with a connect
    /// error), so a few quick retries reach a live member.
    fn attempts(&self) -> usize {
        2 * self.nodes.len() + 1
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        match tokio::time::timeout(LIST_TIMEOUT, self.list_inner(prefixes)).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::transient(
                KIND,
                self.endpoint.clone(),
                format!(
                    "no answer to the listing within {} s",
                    LIST_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    fn can_watch(&self) -> bool {
        true
    }

    fn listing_can_be_kept(&self) -> bool {
        // Built from pages in key order; the watch resumes from the revision alone.
        true
    }

    fn resyncs_while_watching(&self) -> bool {
        true
    }

    async fn watch(
        &self,
        prefixes: Vec<String>,
        from: Arc<Snapshot>,
        tx: mpsc::Sender<Update>,
        shutdown: CancellationToken,
    ) -> Result<(), BackendError> {
        // Only the revision is needed (the daemon passes no keys: its store kept the
        // listing); whatever keys come go now, not when the watch ends.
        let revision = from.revision;
        drop(from);
        watch::run(self, &prefixes, revision, &tx, &shutdown).await
    }
}

/// Reads the TLS files named in `cfg`; `None` when no TLS option is set.
fn tls_options(cfg: &BackendConfig) -> Result<Option<TlsOptions>, String> {
    if cfg.client_cert.is_none() && cfg.client_key.is_none() && cfg.client_ca_keys.is_none() {
        return Ok(None);
    }
    let read = |what: &str, p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read the {what} {}: {e}", p.display()))
    };
    let Some(ca) = &cfg.client_ca_keys else {
        return Err(
            "TLS needs --client-ca-keys (the CA that signed the etcd server certificates)".into(),
        );
    };
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read("CA bundle", ca)?));
    match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read("client certificate", cert)?,
                read("client key", key)?,
            ));
        }
        (None, None) => {}
        _ => return Err("--client-cert and --client-key must be given together".into()),
    }
    Ok(Some(tls))
}

/// Gives `node` an explicit scheme (https when TLS is configured) and rejects a scheme
/// that contradicts the TLS settings.
fn normalize_node(node: &str, tls: bool) -> Result<String, String> {
    let node = node.trim();
    if node.is_empty() {
        return Err("empty node URL".into());
    }
    if let Some(rest) = node.strip_prefix("http://") {
        if tls {
            return Err(format!(
                "node {node} uses http:// but TLS options were given; use https://{rest}"
            ));
        }
        return Ok(node.to_string());
    }
    if node.starts_with("https://") {
        if !tls {
            return Err(format!(
                "node {node} uses https:// but --client-ca-keys was not given"
            ));
        }
        return Ok(node.to_string());
    }
    if node.contains("://") {
        return Err(format!(
            "node {node}: only http:// and https:// URLs are supported"
        ));
    }
    Ok(format!("{}://{node}", if tls { "https" } else { "http" }))
}

/// Drops prefixes covered by a shorter one (string prefix match), so watchers never
/// overlap and an event is never delivered twice. Sorted, without duplicates.
fn minimal_prefixes(prefixes: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = prefixes.iter().collect();
    sorted.sort();
    let mut out: Vec<String> = Vec::new();
    for p in sorted {
        if out.last().is_some_and(|q| p.starts_with(q.as_str())) {
            continue;
        }
        out.push(p.clone());
    }
    out
}

/// The requests of one listing and the time spent waiting for their answers.
#[derive(Default)]
struct Tally {
    pages: u32,
    waited: Duration,
}

/// One range request from `start` to `end` with `opts`, pinned to `revision` where the
/// listing has one, counted in `tally`.
async fn range(
    kv: &mut KvClient,
    start: &[u8],
    end: &[u8],
    opts: GetOptions,
    revision: Option<i64>,
    tally: &mut Tally,
) -> Result<etcd_client::GetResponse, etcd_client::Error> {
    let mut opts = opts.with_range(end.to_vec());
    if let Some(rev) = revision {
        opts = opts.with_revision(rev);
    }
    let asked = std::time::Instant::now();
    let got = kv.get(start.to_vec(), Some(opts)).await;
    tally.waited += asked.elapsed();
    tally.pages += 1;
    got
}

/// The page to ask for after an answer to `page` keys was too large, with `held` keys
/// left in the range: half of what that answer held.
fn smaller_page(page: i64, held: i64) -> i64 {
    (page.min(held) / 2).max(1)
}

/// The `[start, end)` byte range of every key starting with `prefix`.
fn key_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let bytes = prefix.as_bytes();
    // The empty prefix is every key: from "\0" to the end ("\0" as range end).
    if bytes.is_empty() {
        return (vec![0], vec![0]);
    }
    let mut end = bytes.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (bytes.to_vec(), end);
        }
    }
    (bytes.to_vec(), vec![0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn minimal_prefixes_drop_covered_ones() {
        assert_eq!(
            minimal_prefixes(&s(&["/app/servers", "/app", "/b", "/app", "/ab"])),
            s(&["/ab", "/app", "/b"])
        );
        assert_eq!(minimal_prefixes(&s(&["/x", ""])), s(&[""]));
        assert!(minimal_prefixes(&[]).is_empty());
    }

    #[test]
    fn a_too_large_answer_halves_what_it_held() {
        assert_eq!(smaller_page(100_000, 1_000), 500, "1,000 large values");
        assert_eq!(smaller_page(100_000, 300_000), 50_000);
        assert_eq!(smaller_page(2, 5), 1);
        assert_eq!(smaller_page(5, 1), 1, "never below one key");
    }

    #[test]
    fn key_range_covers_the_prefix() {
        assert_eq!(key_range("/a"), (b"/a".to_vec(), b"/b".to_vec()));
        assert_eq!(key_range(""), (vec![0], vec![0]));
    }

    #[test]
    fn nodes_get_a_scheme_matching_tls() {
        assert_eq!(
            normalize_node("127.0.0.1:2379", false).unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            normalize_node("127.0.0.1:2379", true).unwrap(),
            "https://127.0.0.1:2379"
        );
        assert!(
            normalize_node("http://h:1", true)
                .unwrap_err()
                .contains("https://h:1")
        );
        assert!(normalize_node("https://h:1", false).is_err());
        assert!(normalize_node("unix://x", false).is_err());
    }

    #[tokio::test]
    async fn bad_config_is_fatal_and_names_the_endpoint() {
        let cfg = BackendConfig {
            nodes: s(&["https://127.0.0.1:1"]),
            ..Default::default()
        };
        let err = EtcdBackend::connect(&cfg).await.err().unwrap();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("https://127.0.0.1:1"), "{err}");

        let cfg = BackendConfig {
            nodes: s(&["http://127.0.0.1:1"]),
            client_ca_keys: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = EtcdBackend::connect(&cfg).await.err().unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let cfg = BackendConfig {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let err = EtcdBackend::connect(&cfg).await.err().unwrap();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn connect_succeeds_while_etcd_is_down_and_list_is_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let node = format!("http://127.0.0.1:{port}");
        let cfg = BackendConfig {
            nodes: vec![node.clone()],
            username: Some("root".into()),
            password: Some("s3cret-pw".into()),
            ..Default::default()
        };
        let b = EtcdBackend::connect(&cfg).await.unwrap();
        let err = b.list(&s(&["/x"])).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains(&node), "{err}");
        assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    }
}
