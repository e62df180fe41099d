#!/usr/bin/env bash
# The wasmalived demo: a two-node namespace lab with nginx on each node and a client.
#
#   client (192.0.2.100) --- br0 (own namespace) --- node1 (192.0.2.1, priority 101)
#                                                 \-- node2 (192.0.2.2, priority 100)
#   VIP 192.0.2.55, VRRPv3 advert_int 0.5, nginx tracked by the nginx-process plugin
#   (interval 1, fall 2, rise 1, weight -10).
#
# It shows the VIP on the Master, kills nginx there, shows the plugin's verdicts and the VIP
# moving to node2, restores nginx and shows the VIP preempting back — with timestamps — and
# cleans everything up, even on Ctrl-C. Needs root; touches nothing outside its namespaces.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bin=${WASMALIVED_BIN:-$top/target/debug/wasmalived}
plugin=${NGINX_PLUGIN:-$top/target/wasm32-wasip2/debug/plugin_nginx_process.wasm}
[ -x "$bin" ] || { echo "demo: $bin missing (run 'make demo')" >&2; exit 1; }
[ -f "$plugin" ] || { echo "demo: $plugin missing (run 'make demo')" >&2; exit 1; }

id="wd$$"
work=$(mktemp -d "/tmp/wasmalived-demo.XXXXXX")
chmod 0755 "$work"   # nginx workers (www-data) read the pages below it
t0=$(date +%s%N)
say() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '[%3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"; }
ns() { ip netns exec "$id-$1" "${@:2}"; }

cleanup() {
    set +e
    for pidfile in "$work"/*/daemon.pid "$work"/*/nginx/nginx.pid; do
        [ -f "$pidfile" ] && kill -TERM "$(cat "$pidfile")" 2>/dev/null
    done
    sleep 0.5
    for n in node1 node2 client br; do ip netns pids "$id-$n" 2>/dev/null | xargs -r kill -9; done
    for n in node1 node2 client br; do ip netns del "$id-$n" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# --- the lab -------------------------------------------------------------------------------
ip netns add "$id-br"
ns br ip link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ns br ip link set br0 up
add_host() { # name last-octet
    local name=$1 octet=$2
    ip netns add "$id-$name"
    ip link add "$id-$octet" type veth peer name eth0 netns "$id-$name"
    ip link set "$id-$octet" netns "$id-br"
    ns br ip link set "$id-$octet" master br0 up
    ns "$name" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    ns "$name" ip link set lo up
    ns "$name" ip link set eth0 address "02:00:00:00:00:$(printf '%02x' "$octet")" up
    ns "$name" ip addr add "192.0.2.$octet/24" dev eth0
}
add_host node1 1
add_host node2 2
add_host client 100

# --- nginx and wasmalived on each node -----------------------------------------------------
start_nginx() { # node
    local dir="$work/$1/nginx"
    mkdir -p "$dir/logs" "$dir/html"
    echo "served by $1" > "$dir/html/index.html"
    cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    server { listen 80; root $dir/html; }
}
EOF
    ns "$1" /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf"
}

start_node() { # node priority
    local node=$1 prio=$2 dir="$work/$1"
    mkdir -p "$dir/plugins" "$dir/state"
    install -m 0644 "$plugin" "$dir/plugins/nginx-process.wasm"
    cat > "$dir/wasmalived.conf" <<EOF
global_defs {
    router_id $node
    vrrp_version 3
    plugin_dir $dir/plugins
}

vrrp_script chk_nginx {
    plugin nginx-process
    param process nginx
    allow_processes netns       # only nginx processes in this node's network namespace
    interval 1
    timeout 1
    fall 2
    rise 1
    weight -10
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 55
    priority $prio
    advert_int 0.5
    virtual_ipaddress {
        192.0.2.55/24
    }
    track_script {
        chk_nginx
    }
}
EOF
    start_nginx "$node"
    ns "$node" "$bin" -n -l -f "$dir/wasmalived.conf" --state-dir "$dir/state" \
        >"$dir/daemon.log" 2>&1 &
    echo $! > "$dir/daemon.pid"
}

vip_owner() {
    for n in node1 node2; do
        ns "$n" ip -o addr show dev eth0 | grep -q ' 192.0.2.55/' && printf '%s ' "$n"
    done
    echo
}
wait_vip_on() { # node timeout-seconds
    local deadline=$(( $(date +%s) + $2 ))
    while [ "$(vip_owner)" != "$1 " ]; do
        [ "$(date +%s)" -ge "$deadline" ] && { say "VIP not on $1 after $2 s (on: $(vip_owner))"; return 1; }
        sleep 0.05
    done
}
client_get() { ns client curl -s --max-time 1 http://192.0.2.55/ || echo "(no answer)"; }
verdicts() {
    for n in node1 node2; do
        ns "$n" "$bin" status --state-dir "$work/$n/state" --brief | sed "s/^/    $n: /"
    done
}

say "starting node1 (priority 101) and node2 (priority 100), nginx on both"
start_node node1 101
start_node node2 100
wait_vip_on node1 10
say "VIP 192.0.2.55 is on node1; client gets: $(client_get)"
verdicts

say "killing nginx on node1"
kill -TERM "$(cat "$work/node1/nginx/nginx.pid")"
wait_vip_on node2 15
say "VIP moved to node2; client gets: $(client_get)"
verdicts

say "restarting nginx on node1"
start_nginx node1
wait_vip_on node1 15
say "VIP preempted back to node1; client gets: $(client_get)"
verdicts
say "demo done; cleaning up"
