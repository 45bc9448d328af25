# Shared by the demos in examples/*/run.sh (sourced, not run). Everything a demo starts
# is recorded with `bg` and stopped by the EXIT trap; all loops are bounded.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The demo's own folder, before the cd below (so it runs from anywhere).
DEMO_DIR="$(cd "$(dirname "$0")" && pwd)"
cd "$ROOT"
# Built every time with the cargo features the demo names in DEMO_FEATURES (set before
# sourcing this file): a target/release/confsync left by another build (the quick
# start's --no-default-features) is never reused, and cargo's up-to-date check makes
# the build cheap when nothing changed. CONFSYNC=PATH runs that binary instead.
if [ -z "${CONFSYNC:-}" ]; then
  echo "== cargo build --release --features ${DEMO_FEATURES:?the demo names its cargo features}"
  cargo build --release --locked --quiet --features "$DEMO_FEATURES"
  CONFSYNC="${CARGO_TARGET_DIR:-target}/release/confsync"
fi
[ -x "$CONFSYNC" ] || { echo "CONFSYNC=$CONFSYNC is not an executable confsync" >&2; exit 1; }
CONFSYNC="$(cd "$(dirname "$CONFSYNC")" && pwd)/$(basename "$CONFSYNC")"
export PATH="$PATH:/usr/sbin:/sbin"
for prog in python3 curl; do
  command -v "$prog" >/dev/null || { echo "missing: $prog" >&2; exit 1; }
done

DEMO_TMP="$(mktemp -d -t confsync-demo.XXXXXX)"
PIDS=()

# Starts "$@" in the background with its output in $DEMO_TMP/<name>.log; sets BG_PID.
bg() {
  local name="$1"; shift
  "$@" >"$DEMO_TMP/$name.log" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

cleanup() {
  local st=$?
  # Newest first: registrars deregister before the stores go away.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  for ((i = 0; i < 50; i++)); do
    local alive=0 p
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$st" != 0 ]; then
    echo "== demo failed (exit $st); logs:" >&2
    tail -n 15 "$DEMO_TMP"/*.log >&2 2>/dev/null || true
  fi
  rm -rf "$DEMO_TMP"
  echo "== stopped everything the demo started"
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_until SECONDS WHAT CMD...: runs CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_until() {
  local limit="$1" what="$2"; shift 2
  local i
  for ((i = 0; i < limit * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out after ${limit}s waiting for: $what" >&2
  return 1
}

# A tiny web server answering "NAME" on 127.0.0.1:PORT (python3 -m http.server in a temp dir).
web_backend() {
  local name="$1" port="$2"
  mkdir -p "$DEMO_TMP/www-$name"
  echo "$name" >"$DEMO_TMP/www-$name/index.html"
  bg "web-$name" python3 -m http.server "$port" --bind 127.0.0.1 --directory "$DEMO_TMP/www-$name"
}

# spread PORT N: which backend answered each of N requests, counted.
spread() {
  local port="$1" n="$2" i
  for ((i = 0; i < n; i++)); do
    curl -s --max-time 2 "http://127.0.0.1:$port/" || echo "(error)"
  done | sort | uniq -c | awk '{ printf "    %3d x %s\n", $1, $2 }'
}


# Seconds since START (a value of $EPOCHREALTIME), e.g. "1.23".
elapsed() {
  awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, one a line.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
PY
}

# nginx_on_redis TEMPLATE KEYS RELOAD_PREFIX: renders TEMPLATE (with @RUN@ and @LISTEN@
# filled in) from the Redis keys under KEYS into a whole nginx.conf checked with
# `nginx -t`, starts nginx unprivileged on $HTTP_PORT and `confsync run --watch` on
# $REDIS_PORT. RELOAD_PREFIX runs before each HUP (e.g. to count reloads).
nginx_on_redis() {
  local template=$1 keys=$2 before_reload=$3
  CONF="$DEMO_TMP/conf"; RUN="$DEMO_TMP/run"
  mkdir -p "$CONF/conf.d" "$CONF/templates" "$RUN"
  NGINX_CONF="$DEMO_TMP/nginx.conf"
  sed -e "s#@RUN@#$RUN#g" -e "s#@LISTEN@#127.0.0.1:$HTTP_PORT#g" \
    "$template" >"$CONF/templates/nginx.conf.tmpl"
  cat >"$CONF/conf.d/nginx.toml" <<TOML
[template]
src = "nginx.conf.tmpl"
dest = "$NGINX_CONF"
keys = ["$keys"]
check_cmd = "nginx -t -q -p $RUN -e stderr -c {{.src}}"
reload_cmd = "$before_reload kill -HUP \$(cat $RUN/nginx.pid)"
TOML
  "$CONFSYNC" run --confdir "$CONF" --backend redis --node "127.0.0.1:$REDIS_PORT" --onetime --sync-only --log-level warn
  echo "== nginx on 127.0.0.1:$HTTP_PORT"
  bg nginx nginx -p "$RUN" -e stderr -g "daemon off;" -c "$NGINX_CONF"
  wait_until 10 "nginx pid file" test -s "$RUN/nginx.pid"
  bg confsync-run "$CONFSYNC" run --confdir "$CONF" --backend redis --node "127.0.0.1:$REDIS_PORT" --watch
}
