#!/usr/bin/env bash
# S5: SmartStack's layout on confsync: instances register into ZooKeeper in nerve's
# format (`confsync register --nerve`: an ephemeral sequential znode holding
# {"host","port","name"}, HTTP health check), and `confsync run --nerve` reads them back
# as host:port and renders haproxy.cfg, as synapse did. One backend dies (its check
# fails: it leaves), one registrar is killed with SIGKILL (its session expires: it
# leaves after the TTL). Everything runs on 127.0.0.1.
DEMO_FEATURES=zookeeper
source "$(dirname "$0")/../common.sh"
ZK_SERVER=/usr/share/zookeeper/bin/zkServer.sh
ZK_CLI=/usr/share/zookeeper/bin/zkCli.sh
[ -x "$ZK_SERVER" ] && command -v java >/dev/null && command -v haproxy >/dev/null || {
  echo "missing: ZooKeeper, Java or HAProxy (apt-get install zookeeper default-jre-headless haproxy)" >&2; exit 1; }

ZK_PORT=$(free_port); HTTP_PORT=$(free_port); STATS_PORT=$(free_port)
ZK="127.0.0.1:$ZK_PORT"
mkdir -p "$DEMO_TMP/zk/data"
cat >"$DEMO_TMP/zk/zoo.cfg" <<CFG
tickTime=500
dataDir=$DEMO_TMP/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr
CFG
zk() { printf '%s\n' "$@" quit | ZOO_LOG_DIR="$DEMO_TMP/zk" "$ZK_CLI" -server "$ZK" >>"$DEMO_TMP/zkcli.log" 2>&1; }
serving() { exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && echo srvr >&3 && grep -q "Mode:" <&3; }

echo "== ZooKeeper on $ZK"
bg zookeeper env ZOOCFGDIR="$DEMO_TMP/zk" ZOO_LOG_DIR="$DEMO_TMP/zk" JVMFLAGS="-Xmx128m" \
  "$ZK_SERVER" start-foreground "$DEMO_TMP/zk/zoo.cfg"
wait_until 30 "zookeeper serving" serving
zk 'create /app ""' 'create /app/listen ""' "create /app/listen/http 127.0.0.1:$HTTP_PORT" \
  "create /app/listen/stats 127.0.0.1:$STATS_PORT" 'create /app/stats ""' \
  'create /app/stats/password demo-stats-pw'

# The shipped S1 template reads /app/servers/*: nerve's service directory is /app/servers.
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
RUN=("$CONFSYNC" run --confdir "$CONF" --backend zookeeper --node "$ZK" --nerve)
"${RUN[@]}" --onetime --sync-only --log-level warn

echo "== HAProxy (master-worker) on 127.0.0.1:$HTTP_PORT"
bg haproxy haproxy -W -f "$CFG" -p "$PIDFILE"
wait_until 10 "haproxy pid file" test -s "$PIDFILE"
bg confsync-run "${RUN[@]}" --watch

declare -A WEB_PID REG_PID
for n in 1 2 3; do
  port=$(free_port)
  web_backend "web$n" "$port"; WEB_PID[$n]=$BG_PID
  bg "register-web$n" "$CONFSYNC" register --backend zookeeper --node "$ZK" --nerve --nerve-name "web$n" \
    --key /app/servers --value "127.0.0.1:$port" --ttl 2 \
    --check-http "http://127.0.0.1:$port/" --check-interval 500ms --check-timeout 1s --rise 2 --fall 2
  REG_PID[$n]=$BG_PID
  echo "   web$n on 127.0.0.1:$port, registered under /app/servers as nerve does"
done

serves_all() { local s; s=$(spread "$HTTP_PORT" 9); for n in 1 2 3; do grep -q "web$n" <<<"$s" || return 1; done; }
wait_until 30 "all three backends behind HAProxy" serves_all
echo "== haproxy.cfg servers:"; grep -E '^\s+server ' "$CFG" | sed 's/^ */    /'
echo "== 12 requests through HAProxy:"; spread "$HTTP_PORT" 12

echo "== web2 dies (its health check starts failing)"
start=$EPOCHREALTIME
kill -TERM "${WEB_PID[2]}"
no_web2() { ! grep -q web2_ "$CFG" && ! grep -q web2 <<<"$(spread "$HTTP_PORT" 6)"; }
wait_until 15 "web2 to leave" no_web2
echo "   web2 left after $(elapsed "$start") s (fall 2 x 500ms, then render + reload)"

echo "== web1's registrar is killed (SIGKILL: its session expires after the 2 s TTL)"
start=$EPOCHREALTIME
kill -KILL "${REG_PID[1]}"
only_web3() { [ "$(spread "$HTTP_PORT" 6 | awk '{print $3}' | sort -u)" = "web3" ]; }
wait_until 15 "only web3 serving" only_web3
echo "   web1 left after $(elapsed "$start") s"
echo "== 12 requests through HAProxy:"; spread "$HTTP_PORT" 12
echo "== S5 demo OK"
