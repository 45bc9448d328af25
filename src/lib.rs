//! confsync keeps HAProxy and nginx configuration in step with a key/value store.
//!
//! Backends (etcd, Redis, env vars, files) are listed and watched; the daemon keeps the
//! last good snapshot of each, renders Tera templates for the resources whose keys
//! changed, checks the staged file with the resource's check command, renames it over
//! the destination and runs the reload command. Resource files use confd's format.
//!
//! ```text
//! backend (watch or poll) --updates--> store --changed keys--> resources they touch
//!   --render--> differs from dest? --> stage beside dest -> chmod/chown -> check_cmd
//!   --ok--> rename over dest -> reload_cmd
//! ```
//!
//! # Layout
//!
//! - `main.rs`: the binary: parse, set up logging, run; errors become exit codes.
//!   Invoked as `confd` (or with a single-dash long flag first) it parses with [`confd`]
//!   instead of [`cli`], then runs the same way.
//! - [`cli`]: the command line (`run`, `check`, `render`, `convert`, `register`,
//!   `completions`, `man`, `status`).
//! - [`manual`]: `confsync man` and `confsync completions`, man pages and completion
//!   scripts generated from [`cli`]'s definitions (what the Debian package installs;
//!   `scripts/package.sh` builds it from `packaging/deb/` and `[package.metadata.deb]`).
//! - [`confd`]: confd's command line (Go `flag` rules, the fork's `BACKEND` word) and
//!   `confd.toml`, merged by confd's precedence (confd.toml > flag > default, then
//!   `CONFD_CLIENT_*`) and mapped onto [`config::Settings`]; resource files read by
//!   confd's rules ([`config::Dialect::Confd`]: a global prefix replaces the resource's).
//! - [`config`]: `confsync.toml` and flags merged (flag > env > file > default) into a
//!   [`config::RunConfig`] with named backends and `wait`; `conf.d/*.toml` resources
//!   with their guards, by confsync's or confd's rules ([`config::Dialect`]); durations;
//!   `config/room` keeps templates inside `templates/` and destinations off devices and
//!   confsync's own files; `config/exec` validates exec mode's settings and `splay`.
//! - [`backend`]: the [`backend::Backend`] trait, snapshots, updates and errors; one
//!   module per backend: `file/`, `env`, `etcd/`, `redis/`, `zookeeper/` (`conn`: the
//!   connect string, digest auth and sessions; `tree`: znodes as keys, level-by-level
//!   multi-read listings; `watch`: persistent recursive watches), `docker/`; `nerve`
//!   is nerve's registration JSON (read by `zookeeper/`, written by `register`). `file/` reads YAML as confd
//!   does (YAML 1.1 scalars in `resolve`, keys, duplicates and merges in `walk`, the
//!   full parser with anchors in `yaml`, the one-pass reader of plain files in `fast`);
//!   JSON and TOML through serde (`serde_flatten`); files are found by `tree`, read by
//!   `read` (capped), used once stable by `settle` (last good data per file), `watch`ed;
//!   `empty` refuses a data file that is empty by accident. `backend/text` turns store
//!   bytes into keys and values, leaving out (and naming) what is not UTF-8.
//! - `docker` (feature `docker`): the Docker engine through bollard: `client` (node
//!   strings, TLS, API version), `model` (a container from one inspect, its service and
//!   port, `--docker-label` filters), `events` (container events, running listing).
//! - [`gopath`]: Go's `path.Clean`, `Base`, `Dir` and `Join`, by which confd names keys.
//! - [`gonum`]: Go's rule for `_` in number literals (YAML numbers, Go template constants).
//! - [`store`]: the last good keys of a backend and their diffs.
//! - [`state`]: each backend's last good snapshot on disk (`STATE_DIR/snapshots/`),
//!   saved atomically and coalesced, served at start while the backend is unreachable.
//! - [`template`]: the [`template::Engine`] holding both languages and the rule that picks
//!   one per template; Tera setup, confd's store functions over a [`template::View`],
//!   filters, Go `path.Match` globbing, and the `{key, value}` entries `gets` returns with
//!   the per-resource [`template::EntryCache`] a daemon's worker reuses them from;
//!   the strict `base64_decode` (Go's strict decoder, through the `base64` crate);
//!   `template/safe` (the `addr`, `ident`, `token` filters and the strict `base`) and
//!   `template/limits` (a render's size limit and cancel flag); `template/fragments`
//!   (incremental rendering: each pure loop body's output per element, kept between a
//!   resource's renders and spliced, so a change re-renders only the elements it touched);
//!   `template/loops` (finding a Tera template's cacheable loops in its source) and
//!   `template/incremental` (rendering them through those fragments); `template/basis`
//!   (the keys changed since a resource's last good render and its key counts, so a
//!   render looks only at those keys).
//!   - `template/go/`: confd's Go `text/template` dialect, byte for byte: `token`, `lex`,
//!     `parse` (into `ast`; `parse/controls`, `parse/pipeline`, `parse/literal`), `exec`
//!     (the evaluator; argument checks in `exec/args`, dispatch in `call`, bodies in
//!     `builtins` and `confd`, confd's function map over memkv's names in `store`, SRV
//!     lookups in `srv`; loops kept per element between renders: which in `incr`, how in
//!     `exec/cached`), `value`, Go's `fmt`, `quote`, `isprint`, `escape` and `time`;
//!     `vectors` are Go's own outputs, for tests.
//!   - `template/confd_funcs`: Tera filters and functions with Go's semantics
//!     (`go_print`, `format`, `atoi`, `to_upper`, `sort_kv_by_length`, `html`, `js`,
//!     `urlquery`, `lookup_iface_ipv4`, ...).
//!   - `template/convert/`: `confsync convert`, Go templates turned into Tera that
//!     renders the same bytes: `source` cuts the Go source into text, actions and
//!     comments; `walk`, `controls` and `templates` write the nodes; `expr`, `calls`,
//!     `collections`, `store` and `printing` the pipelines, on `texpr`'s Tera expressions
//!     typed by `types`; `scope` and `names` map Go's variables to Tera names; `command`
//!     and `resource_file` are the subcommand and its `--write`.
//! - [`resource`]: guards, render (bounded in size and time), compare, stage, check,
//!   swap, reload; `render` applies the guards and renders (in a daemon on a thread of
//!   its own, abandoned at `render_timeout`), `dest_path` follows a symlinked destination to its target, `stage`
//!   writes beside it, `swap` keeps `DEST.bak` and writes a bind-mounted destination in
//!   place, `apply` is the reload step a daemon takes over, `observe` tells the status
//!   page the keys a render saw and what a change replaced, `leftovers` sweeps stage
//!   files of a killed run, `owner` explains chown failures, `command` runs commands in
//!   their own process group with
//!   `child_env`'s environment (no secrets) and `quote`'s shell-quoted paths.
//! - [`daemon`]: a run's loop (SIGHUP, SIGTERM, readiness, the watchdog);
//!   `daemon/generation` prepares a configuration's feeds and workers beside the running
//!   one and switches per destination; `feed` (one task per backend), `worker` (one per
//!   resource: pacing by `pace`, retries with backoff), `owed` (reloads still owed, kept
//!   in the state dir), `rounds` (one reload per round for resources sharing it),
//!   `route` (a resource's reload step: its command's round, the exec signal, splay),
//!   `changes` (the keys changed between the snapshots a worker takes),
//!   `exec_hook` (the exec child started after the first render), `onetime`.
//! - [`exec`]: exec mode, the proxy run as confsync's child: `child` (start, stop with
//!   the kill signal and timeout, restart with backoff, exit status), `forward` (SIGHUP,
//!   SIGUSR1, SIGUSR2 passed on), `reap` (as PID 1, a forked init that reaps orphans).
//! - [`haproxy`]: HAProxy changed without a reload: `config` reads a config into
//!   sections and diffs two into server changes per backend, `server_line` parses a
//!   `server` line, `socket` is the Runtime API client, `apply` sends the commands and
//!   checks `show servers state`; anything else falls back to a reload.
//! - [`metrics`]: Prometheus counters, gauges and the change-to-file histogram.
//! - [`status`]: the status page's registry, one record per resource and backend that
//!   the workers and feeds report to: `model` (the serde report of `/status.json`),
//!   `record` (what is kept, capped; secret resources' texts withheld), `diff` (the
//!   capped unified diff of a change), `clock` (UTC dates and ages), `html` (the page,
//!   every text escaped), `table` (`confsync status`'s tables), `fetch` (its client).
//! - [`http`]: `/metrics`, `/health`, `/ready`, `/` and `/status.json` (`http/routes`:
//!   the axum router; `http/server`: hyper connections, the connection cap that closes the oldest;
//!   `http/behind`: resources behind the store; `http/freshness`: each backend's age
//!   against `max_staleness`).
//! - [`systemd`]: `sd_notify` (READY, RELOADING, STOPPING, STATUS, WATCHDOG).
//! - [`signals`]: SIGTERM/SIGINT to the shutdown token.
//! - [`logging`]: the log filter `run` and `register` share.
//! - [`memory`]: freed memory given back to the system (`malloc_trim`) after large frees.
//! - [`register`]: `confsync register`: keys kept alive with a TTL while a health check
//!   passes; etcd leases, Redis `SET EX`; clean deregistration on SIGTERM.
//!   `register/docker*` (`--from-docker`): every running container of a Docker engine
//!   registered through key and value templates, one keeper per container, ownership
//!   records and the reconcile at start.

pub mod backend;
pub mod cli;
pub mod confd;
pub mod config;
pub mod daemon;
#[cfg(feature = "docker")]
pub mod docker;
pub mod exec;
pub mod gonum;
pub mod gopath;
pub mod haproxy;
pub mod http;
pub mod logging;
pub mod manual;
pub mod memory;
pub mod metrics;
pub mod register;
pub mod resource;
pub mod signals;
pub mod state;
pub mod status;
pub mod store;
pub mod systemd;
pub mod template;

#[cfg(test)]
mod parsers_proptest;
