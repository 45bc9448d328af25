#!/usr/bin/env bash
# S2: Redis + nginx; three web apps register themselves with `confsync register`
# (SET key value EX 3, refreshed every second, HTTP health check); `confsync run --watch`
# follows keyspace notifications, checks the staged nginx.conf with `nginx -t` and
# reloads nginx with HUP. One app dies (its check fails: it leaves), one registrar is
# killed with SIGKILL (its key expires after the TTL). Everything runs on 127.0.0.1.
DEMO_FEATURES=redis
source "$(dirname "$0")/../common.sh"
for prog in redis-server redis-cli nginx; do
  command -v "$prog" >/dev/null || { echo "missing: $prog (apt-get install redis-server nginx)" >&2; exit 1; }
done

REDIS_PORT=$(free_port); HTTP_PORT=$(free_port)
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

echo "== Redis on 127.0.0.1:$REDIS_PORT"
bg redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DEMO_TMP"
wait_until 10 "redis PING" rcli ping

# A whole nginx.conf rendered from the registrations; nginx runs unprivileged.
nginx_on_redis "$DEMO_DIR/nginx.conf.tmpl" "/work/webapp/ips" ""

declare -A WEB_PID REG_PID
for n in 1 2 3; do
  port=$(free_port)
  web_backend "app$n" "$port"; WEB_PID[$n]=$BG_PID
  bg "register-app$n" "$CONFSYNC" register --backend redis --node "127.0.0.1:$REDIS_PORT" \
    --key "/work/webapp/ips/10.0.0.$n" --value "127.0.0.1:$port" --ttl 3 \
    --check-http "http://127.0.0.1:$port/" --check-interval 500ms --check-timeout 1s
  REG_PID[$n]=$BG_PID
  echo "   app$n on 127.0.0.1:$port, registered as /work/webapp/ips/10.0.0.$n"
done

serves_all() { local s; s=$(spread "$HTTP_PORT" 9); for n in 1 2 3; do grep -q "app$n" <<<"$s" || return 1; done; }
wait_until 20 "all three apps behind nginx" serves_all
echo "== registered keys (with their TTL):"
for k in $(rcli --scan --pattern '/work/webapp/ips/*' | sort); do
  echo "    $k = $(rcli get "$k")  ttl $(rcli ttl "$k") s"
done
echo "== 12 requests through nginx:"; spread "$HTTP_PORT" 12

echo "== app2 dies (its health check starts failing)"
start=$EPOCHREALTIME
kill -TERM "${WEB_PID[2]}"
no_app2() { [ -z "$(rcli get /work/webapp/ips/10.0.0.2)" ] && ! grep -q app2 <<<"$(spread "$HTTP_PORT" 6)"; }
wait_until 15 "app2 to leave" no_app2
echo "   app2 left after $(elapsed "$start") s (fall 2 x 500ms, then render + reload)"
echo "== 12 requests through nginx:"; spread "$HTTP_PORT" 12

echo "== app1's registrar crashes (SIGKILL): its key expires with the TTL (3 s)"
start=$EPOCHREALTIME
kill -KILL "${REG_PID[1]}"; wait "${REG_PID[1]}" 2>/dev/null || true
wait_until 10 "app1 key expired" bash -c "[ -z \"\$(redis-cli -p $REDIS_PORT get /work/webapp/ips/10.0.0.1)\" ]"
echo "   key expired after $(elapsed "$start") s"
only_app3() { [ "$(spread "$HTTP_PORT" 6 | awk '{print $3}' | sort -u)" = "app3" ]; }
wait_until 10 "only app3 in the upstream" only_app3
echo "== 12 requests through nginx:"; spread "$HTTP_PORT" 12
echo "== upstream now:"; sed -n '/upstream webapp/,/}/p' "$NGINX_CONF" | sed 's/^/    /'
echo "== S2 demo OK"
