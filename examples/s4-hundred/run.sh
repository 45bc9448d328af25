#!/usr/bin/env bash
# S4: one hundred app instances register at once (one `confsync register` with a
# service file of 100 entries, each with a TCP check) behind nginx with
# max_fails=1 fail_timeout=1s; then they all deregister (SIGTERM). The script counts
# the nginx reloads each step took: confsync coalesces bursts, so it is one or two, not
# one hundred. Everything runs on 127.0.0.1.
DEMO_FEATURES=redis
source "$(dirname "$0")/../common.sh"
for prog in redis-server redis-cli nginx; do
  command -v "$prog" >/dev/null || { echo "missing: $prog (apt-get install redis-server nginx)" >&2; exit 1; }
done
N=100
REDIS_PORT=$(free_port); HTTP_PORT=$(free_port)
mapfile -t PORTS < <(free_ports "$N")
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
RELOADS="$DEMO_TMP/reloads"; : >"$RELOADS"
reloads() { wc -l <"$RELOADS" | tr -d ' '; }

echo "== Redis on 127.0.0.1:$REDIS_PORT"
bg redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DEMO_TMP"
wait_until 10 "redis PING" rcli ping

echo "== $N apps (one python3 process listening on $N ports, ${PORTS[0]}...)"
cat >"$DEMO_TMP/apps.py" <<'PY'
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class App(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("app-%d\n" % self.server.server_port).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

servers = [ThreadingHTTPServer(("127.0.0.1", int(p)), App) for p in sys.argv[1:]]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
PY
bg apps python3 "$DEMO_TMP/apps.py" "${PORTS[@]}"
wait_until 10 "the last app" curl -sf "http://127.0.0.1:${PORTS[$((N - 1))]}/"

nginx_on_redis "$DEMO_DIR/nginx.conf.tmpl" "/app/hundred" "echo reload >> $RELOADS &&"
sleep 0.5

SERVICES="$DEMO_TMP/services.toml"
for p in "${PORTS[@]}"; do
  printf '[[service]]\nkey = "/app/hundred/servers/%s"\nvalue = "127.0.0.1:%s"\nttl = 5\ncheck = { tcp = "127.0.0.1:%s", interval = "1s" }\n\n' "$p" "$p" "$p"
done >"$SERVICES"

upstream_size() { grep -c 'max_fails=1' "$NGINX_CONF" || true; }
echo "== registering $N instances at once (confsync register --service-file, $(grep -c '^\[\[service' "$SERVICES") entries)"
before=$(reloads); start=$EPOCHREALTIME
bg register "$CONFSYNC" register --backend redis --node "127.0.0.1:$REDIS_PORT" --service-file "$SERVICES"
REG=$BG_PID
wait_until 30 "$N servers in nginx.conf" bash -c "[ \$(grep -c 'max_fails=1' $NGINX_CONF) = $N ]"
took=$(elapsed "$start")
sleep 1.5 # let any trailing coalesced render land before counting
echo "   $(rcli --scan --pattern '/app/hundred/servers/*' | wc -l) keys in Redis, $(upstream_size) servers in the upstream after $took s"
echo "   reloads for $N registrations: $(( $(reloads) - before ))"
echo "== 200 requests through nginx:"
answered=$(for i in $(seq 200); do curl -s --max-time 2 "http://127.0.0.1:$HTTP_PORT/" || echo error; done)
echo "   $(grep -c '^app-' <<<"$answered") answered, by $(grep '^app-' <<<"$answered" | sort -u | wc -l) distinct instances, $(grep -c '^error' <<<"$answered" || true) errors"

echo "== removing all $N (SIGTERM to the registrar: each key is deleted at once)"
before=$(reloads); start=$EPOCHREALTIME
kill -TERM "$REG"
wait_until 10 "the registrar to exit" bash -c "! kill -0 $REG"
wait_until 30 "an empty upstream" bash -c "! grep -q max_fails=1 $NGINX_CONF"
took=$(elapsed "$start")
sleep 1.5
echo "   $(rcli --scan --pattern '/app/hundred/servers/*' | wc -l) keys in Redis, $(upstream_size) servers in the upstream after $took s"
echo "   reloads for $N deregistrations: $(( $(reloads) - before ))"
echo "== total nginx reloads: $(reloads)"
echo "== S4 demo OK"
