#!/usr/bin/env bash
# S1: etcd + HAProxy; three web backends register themselves with `confsync register`
# (etcd lease + keepalive, HTTP health check); `confsync run` renders haproxy.cfg and
# reloads HAProxy. One backend dies (its check fails: it leaves), one registrar gets
# SIGTERM (its lease is revoked: it leaves at once). Everything runs on 127.0.0.1.
DEMO_FEATURES=etcd
source "$(dirname "$0")/../common.sh"
for prog in etcd etcdctl haproxy; do
  command -v "$prog" >/dev/null || { echo "missing: $prog (apt-get install etcd-server etcd-client haproxy)" >&2; exit 1; }
done

ETCD_PORT=$(free_port); PEER_PORT=$(free_port); HTTP_PORT=$(free_port); STATS_PORT=$(free_port)
ETCD="http://127.0.0.1:$ETCD_PORT"
ctl() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD" "$@"; }

echo "== etcd on $ETCD"
bg etcd etcd --name demo --data-dir "$DEMO_TMP/etcd" \
  --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "demo=http://127.0.0.1:$PEER_PORT" --logger zap --log-level warn
wait_until 20 "etcd health" ctl endpoint health --command-timeout=1s
ctl put /app/listen/http "127.0.0.1:$HTTP_PORT" >/dev/null
ctl put /app/listen/stats "127.0.0.1:$STATS_PORT" >/dev/null
ctl put /app/stats/password "demo-stats-pw" >/dev/null

# The shipped S1 template, with a resource pointing into the temp dir.
CONF="$DEMO_TMP/conf"
mkdir -p "$CONF/conf.d" "$CONF/templates"
cp templates/haproxy.cfg.tmpl "$CONF/templates/"
CFG="$DEMO_TMP/haproxy.cfg"; PIDFILE="$DEMO_TMP/haproxy.pid"
cat >"$CONF/conf.d/haproxy.toml" <<TOML
[template]
src = "haproxy.cfg.tmpl"
dest = "$CFG"
keys = ["/app/servers", "/app/stats", "/app/listen"]
check_cmd = "haproxy -c -q -f {{.src}}"
reload_cmd = "kill -USR2 \$(cat $PIDFILE)"
TOML
"$CONFSYNC" run --confdir "$CONF" --backend etcd --node "$ETCD" --onetime --sync-only --log-level warn

echo "== HAProxy (master-worker) on 127.0.0.1:$HTTP_PORT"
bg haproxy haproxy -W -f "$CFG" -p "$PIDFILE"
wait_until 10 "haproxy pid file" test -s "$PIDFILE"
bg confsync-run "$CONFSYNC" run --confdir "$CONF" --backend etcd --node "$ETCD" --watch

declare -A WEB_PID REG_PID
for n in 1 2 3; do
  port=$(free_port)
  web_backend "web$n" "$port"; WEB_PID[$n]=$BG_PID
  bg "register-web$n" "$CONFSYNC" register --backend etcd --node "$ETCD" \
    --key "/app/servers/web$n" --value "127.0.0.1:$port" --ttl 3 \
    --check-http "http://127.0.0.1:$port/" --check-interval 500ms --check-timeout 1s --rise 2 --fall 2
  REG_PID[$n]=$BG_PID
  echo "   web$n on 127.0.0.1:$port, registered as /app/servers/web$n"
done

serves_all() { local s; s=$(spread "$HTTP_PORT" 9); for n in 1 2 3; do grep -q "web$n" <<<"$s" || return 1; done; }
wait_until 20 "all three backends behind HAProxy" serves_all
echo "== registered keys:"; ctl get --prefix /app/servers | paste - - | sed 's/^/    /'
echo "== 12 requests through HAProxy:"; spread "$HTTP_PORT" 12

echo "== web2 dies (its health check starts failing)"
start=$EPOCHREALTIME
kill -TERM "${WEB_PID[2]}"
no_web2() { ! ctl get /app/servers/web2 | grep -q web2 && ! grep -q web2 <<<"$(spread "$HTTP_PORT" 6)"; }
wait_until 15 "web2 to leave" no_web2
echo "   web2 left after $(elapsed "$start") s (fall 2 x 500ms, then render + reload)"
echo "== 12 requests through HAProxy:"; spread "$HTTP_PORT" 12

echo "== web1's registrar gets SIGTERM (lease revoked: the key goes at once)"
start=$EPOCHREALTIME
kill -TERM "${REG_PID[1]}"
wait_until 5 "web1 key gone" bash -c "! ETCDCTL_API=3 etcdctl --endpoints $ETCD get /app/servers/web1 | grep -q web1"
echo "   key gone after $(elapsed "$start") s"
only_web3() { [ "$(spread "$HTTP_PORT" 6 | awk '{print $3}' | sort -u)" = "web3" ]; }
wait_until 10 "only web3 serving" only_web3
echo "== 12 requests through HAProxy:"; spread "$HTTP_PORT" 12
echo "== haproxy.cfg backend now:"; sed -n '/^backend app/,/^$/p' "$CFG" | sed 's/^/    /'
echo "== S1 demo OK"
