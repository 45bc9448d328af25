#!/usr/bin/env bash
# S4 with Docker: one hundred real containers (busybox httpd) started at once behind
# nginx, rendered by `confsync run --backend docker --watch` from
# /docker/services/hundred/*, then all removed at once. Prints how long each step took
# and how many nginx reloads. Uses the engine at $DOCKER_HOST when it is set; otherwise
# starts a private dockerd (root needed) on its own socket, bridge and data dir. The
# image is imported offline from the static busybox (no registry). Everything listens on
# 127.0.0.1; the EXIT trap removes the containers, the image and the private engine.
# WAIT=min:max sets the resource's `wait` (default: confsync's 100ms:1s); S4_TIMES=1 also
# prints when each reload ran (seconds after the first).
DEMO_FEATURES=docker
source "$(dirname "$0")/../common.sh"
for prog in nginx docker busybox tar; do
  command -v "$prog" >/dev/null || { echo "missing: $prog (apt-get install nginx docker.io busybox-static)" >&2; exit 1; }
done
N=100
WAIT="${WAIT:-}"
TAG="$(printf '%08x' $((RANDOM * 32768 + RANDOM)))"
IMAGE="confsync-s4:$TAG"
LABEL="confsync.s4=$TAG"
HTTP_PORT=$(free_port)
RELOADS="$DEMO_TMP/reloads"; : >"$RELOADS"
reloads() { wc -l <"$RELOADS" | tr -d ' '; }

ENGINE_DIR=""; DOCKERD_PID=""; BRIDGE=""; MADE_RUN_DOCKER=0
dk() { timeout 120 docker "$@"; }

demo_exit() {
  local st=$?
  set +e
  if dk version >/dev/null 2>&1; then
    local ids
    ids=$(dk ps -aq --filter "label=$LABEL" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1 || true
    dk rmi -f "$IMAGE" >/dev/null 2>&1 || true
  fi
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    # Unmount what the engine left below its dir (netns files), deepest first.
    awk -v d="$ENGINE_DIR" 'index($2, d) == 1 { print length($2), $2 }' /proc/self/mounts |
      sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    [ "$st" != 0 ] && { echo "== dockerd log:" >&2; tail -n 15 "$ENGINE_DIR/dockerd.log" >&2 || true; }
  fi
  [ -n "$BRIDGE" ] && ip link del "$BRIDGE" 2>/dev/null || true
  [ -n "$ENGINE_DIR" ] && rm -rf "$ENGINE_DIR"
  if [ "$MADE_RUN_DOCKER" = 1 ]; then rmdir /var/run/docker/plugins /var/run/docker 2>/dev/null || true; fi
  (exit "$st")
  cleanup
}
trap demo_exit EXIT

if [ -n "${DOCKER_HOST:-}" ]; then
  echo "== using the engine at DOCKER_HOST=$DOCKER_HOST"
  dk version >/dev/null
else
  [ "$(id -u)" = 0 ] || { echo "no DOCKER_HOST: starting a private dockerd needs root (or set DOCKER_HOST)" >&2; exit 1; }
  for prog in dockerd ip; do
    command -v "$prog" >/dev/null || { echo "missing: $prog (apt-get install docker.io iproute2)" >&2; exit 1; }
  done
  ENGINE_DIR="$(mktemp -d /tmp/confsync-s4d.XXXXXX)"
  [ -e /var/run/docker ] || MADE_RUN_DOCKER=1
  BRIDGE="css4$TAG"; BRIDGE="${BRIDGE:0:15}"
  ip link add name "$BRIDGE" type bridge
  ip addr add "10.$((200 + RANDOM % 50)).$((1 + RANDOM % 254)).1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  export DOCKER_HOST="unix://$ENGINE_DIR/d.sock"
  echo "== private dockerd on $DOCKER_HOST (vfs storage, no iptables, bridge $BRIDGE)"
  dockerd --host "$DOCKER_HOST" --storage-driver vfs --iptables=false --ip-masq=false \
    --bridge "$BRIDGE" --data-root "$ENGINE_DIR/data" --exec-root "$ENGINE_DIR/exec" \
    --pidfile "$ENGINE_DIR/docker.pid" >"$ENGINE_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  wait_until 60 "dockerd to answer" docker version
fi

echo "== importing $IMAGE from $(command -v busybox) (offline)"
IMG="$DEMO_TMP/img"; mkdir -p "$IMG/bin" "$IMG/tmp"
cp "$(command -v busybox)" "$IMG/bin/busybox"
for a in sh httpd echo mkdir; do ln -s busybox "$IMG/bin/$a"; done
tar -C "$IMG" -cf "$DEMO_TMP/img.tar" .
dk import "$DEMO_TMP/img.tar" "$IMAGE" >/dev/null

CONF="$DEMO_TMP/conf"; RUN="$DEMO_TMP/run"
mkdir -p "$CONF/conf.d" "$CONF/templates" "$RUN"
NGINX_CONF="$DEMO_TMP/nginx.conf"
sed -e "s#@RUN@#$RUN#g" -e "s#@LISTEN@#127.0.0.1:$HTTP_PORT#g" \
  "$DEMO_DIR/nginx-docker.conf.tmpl" >"$CONF/templates/nginx.conf.tmpl"
WAIT_LINE=""; [ -z "$WAIT" ] || WAIT_LINE="wait = \"$WAIT\""
cat >"$CONF/conf.d/nginx.toml" <<TOML
[template]
src = "nginx.conf.tmpl"
dest = "$NGINX_CONF"
prefix = "/docker"
keys = ["/services/hundred"]
check_cmd = "nginx -t -q -p $RUN -e stderr -c {{.src}}"
reload_cmd = "date +%s.%N >> $RELOADS && kill -HUP \$(cat $RUN/nginx.pid)"
$WAIT_LINE
TOML
DOCKER_ARGS=(--backend docker --node "$DOCKER_HOST" --docker-label "$LABEL")
"$CONFSYNC" run --confdir "$CONF" "${DOCKER_ARGS[@]}" --onetime --sync-only --log-level warn
echo "== nginx on 127.0.0.1:$HTTP_PORT; confsync run --backend docker --watch (wait ${WAIT:-100ms:1s})"
bg nginx nginx -p "$RUN" -e stderr -g "daemon off;" -c "$NGINX_CONF"
wait_until 10 "nginx pid file" test -s "$RUN/nginx.pid"
bg confsync-run "$CONFSYNC" run --confdir "$CONF" "${DOCKER_ARGS[@]}" --watch
sleep 1

NAMES=()
for ((i = 0; i < N; i++)); do NAMES+=("s4-$TAG-$i"); done
echo "== docker create x $N (busybox httpd, --init, -p 127.0.0.1::8000)"
printf '%s\n' "${NAMES[@]}" | xargs -P 10 -I{} timeout 120 docker create --init --name {} \
  --label "$LABEL" --label confsync.service=hundred -e NAME={} -p 127.0.0.1::8000 "$IMAGE" \
  /bin/sh -c 'echo "$NAME" > /tmp/index.html && exec httpd -f -p 8000 -h /tmp' >/dev/null

upstream_size() { grep -c 'max_fails=1' "$NGINX_CONF" || true; }
running() { dk ps -q --filter "label=$LABEL" | wc -l; }
echo "== starting all $N at once (parallel docker start)"
before=$(reloads); start=$EPOCHREALTIME
printf '%s\n' "${NAMES[@]}" | xargs -P 50 -n 2 timeout 120 docker start >/dev/null
echo "   docker start returned for all $N after $(elapsed "$start") s"
wait_until 180 "$N servers in nginx.conf" bash -c "[ \$(grep -c 'max_fails=1' $NGINX_CONF) = $N ]"
took=$(elapsed "$start")
echo "   $N servers in the upstream after $took s, $(( $(reloads) - before )) reloads so far"
echo "== 200 requests through nginx (until every container has answered):"
for ((round = 1; round <= 10; round++)); do
  answered=$(for i in $(seq 200); do curl -s --max-time 2 "http://127.0.0.1:$HTTP_PORT/" || echo error; done)
  distinct=$(grep '^s4-' <<<"$answered" | sort -u | wc -l)
  [ "$distinct" = "$N" ] && break
  sleep 0.5
done
echo "   round $round: $(grep -c '^s4-' <<<"$answered" || true) answered, by $distinct distinct containers, $(grep -c '^error' <<<"$answered" || true) errors; traffic reached all after $(elapsed "$start") s"
sleep 1.5 # let any trailing coalesced render land before counting
echo "   reloads for $N starts: $(( $(reloads) - before )) ($(running) running, $(upstream_size) servers)"

echo "== removing all $N at once (docker rm -f)"
before=$(reloads); start=$EPOCHREALTIME
timeout 180 docker rm -f "${NAMES[@]}" >/dev/null
echo "   docker rm returned after $(elapsed "$start") s"
wait_until 120 "an empty upstream" bash -c "! grep -q max_fails=1 $NGINX_CONF"
took=$(elapsed "$start")
sleep 1.5
echo "   $(running) running, $(upstream_size) servers in the upstream after $took s"
echo "   reloads for $N removals: $(( $(reloads) - before ))"
echo "== total nginx reloads: $(reloads)"
[ -z "${S4_TIMES:-}" ] || awk -v t0="$(head -n1 "$RELOADS")" '{ printf "   reload at +%.2f s\n", $1 - t0 }' "$RELOADS"
echo "== S4 docker demo OK"
