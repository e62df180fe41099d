#!/bin/sh
# One of keepalived's LVS samples (tests/keepalived-samples/) on the VM's IPVS, run by real
# keepalived and then by wasmalived, each until the IPVS table settles; /init starts one lane
# per sample, each in its own network namespace (`unshare -n`: its own IPVS table, its own
# eth0), so the samples run side by side and the VM run stays within minutes.
#
#   sample-lane.sh SAMPLE OUT SLOTS
#
# SLOTS: how many lanes may run wasmalived at once (keepalived's C checkers cost the emulated
# CPU little; fourteen debug-built daemons starting together starve it, and their plugin runs
# then time out at start-up: the outcome was the same, but for the wrong reason).
#
# Writes to OUT (the console only once every lane is done, so lanes do not interleave):
#   @@sample NAME window Ws bound Bs
#   @@sample NAME DAEMON settled|timed-out after Ts (last change at Cs)
#   @@begin sample NAME DAEMON            ipvsadm -Ln once settled
#   @@begin sample-scripts NAME DAEMON    what the quorum scripts recorded by then
#   @@begin sample-scripts NAME DAEMON-stop   what they recorded at the shutdown
#   @@sample NAME DAEMON exit N
#   @@sample NAME DAEMON emptied|not-emptied after Ts      after SIGTERM
#   @@begin sample-log NAME DAEMON        the daemon's log
#
# The network both daemons find (the same for every sample; the samples name eth0 and real
# servers in 10.0.0.0/8, 192.168.0.0/16 and ae00::/16):
#   - eth0, a dummy link with 203.0.113.1/24: the VRRP instances of the sample and SSL_GET
#     samples run on it (each becomes Master alone and adds its VIPs);
#   - real servers that answer: 10.0.0.1–10.0.0.9 and 192.168.201.100 are this host's own
#     addresses, with busybox httpd on port 80 (IPVS still lists them as `Masq`: their ports
#     are not the service's):
#     nine of the quorum sample's ten TCP_CHECKs pass (quorum 7 + hysteresis 2 = 9 reached),
#     one of the fwmark sample's two;
#   - a real server that exists but answers nothing: 192.168.200.6, routed into the dummy
#     link: UDP_CHECK without require_reply passes (no port-unreachable comes back),
#     PING_CHECK fails after its timeouts;
#   - every other real server is unreachable (an `unreachable` route), so connects fail at
#     once and identically for both: the HTTP_GET/SSL_GET/SMTP_CHECK real servers go down (the
#     sample's sorry server takes over; the inhibit sample's stays at weight 0);
#   - MISC_CHECK runs sample-scripts/script.sh: up without arguments, down with "arg1 arg2".
set -u
PATH=/bin:/sbin
sample=$1
out=$2
slots=$3
name=${sample#keepalived.conf.}
dir=/tmp/lanes/$name
mkdir -p "$dir"
exec > "$out" 2>&1

ip link set lo up
ip link add eth0 type dummy
ip link set eth0 multicast on
ip link set eth0 up
ip addr add 203.0.113.1/24 dev eth0
for a in 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 10.0.0.8 10.0.0.9 \
    192.168.201.100; do
    ip addr add "$a/32" dev eth0
done
ip route add 192.168.200.6/32 dev eth0
ip route add unreachable 192.168.0.0/16
ip route add unreachable 10.0.0.0/8
ip -6 route add unreachable ae00::/16
httpd -f -p 80 -h /srv/www &
httpd=$!
# The quorum sample's scripts write to a file named for their network namespace, this lane's.
events=/run/quorum-events.$(readlink /proc/self/ns/net | tr -dc 0-9)

# One check cycle of the sample, from its slowest checker's keywords (keepalived's defaults
# where it sets none: delay_loop 60 s, connect_timeout 5 s, retry 1, delay_before_retry 1 s):
# the next check after delay_loop, then retry + 1 attempts of up to connect_timeout each,
# delay_before_retry apart. The table must stay unchanged for one cycle plus one delay_loop
# (slack for the emulated CPU that fourteen lanes share) to count as settled.
window=$(awk '
    function max(a, b) { return a > b ? a : b }
    $1 == "delay_loop" { dl = max(dl, $2) }
    $1 == "connect_timeout" || $1 == "misc_timeout" { ct = max(ct, $2) }
    $1 == "retry" || $1 == "nb_get_retry" { r = max(r, $2) }
    $1 == "delay_before_retry" { d = max(d, $2) }
    END {
        if (!dl) dl = 60; if (!ct) ct = 5; if (r == "") r = 1; if (!d) d = 1
        print 2 * dl + (r + 1) * ct + r * d
    }' "/etc/samples/$sample")
bound=$((3 * window + 120))
echo "@@sample $name window ${window}s bound ${bound}s"

now() { cut -d. -f1 /proc/uptime; }

# The table as the tests compare it: services and destinations, blanks squeezed, sorted.
table() {
    ipvsadm -Ln | grep -E '^(TCP|UDP|SCTP|FWM) |^  -> [[0-9]' | tr -s ' ' | sed -e 's/^ //' -e 's/ $//' | sort
}

# Waits until the table holds something and has not changed for $window seconds (or $bound
# passes), then prints how long that took and when it last changed.
settle() {
    start=$(now)
    changed=$start
    last=$(table)
    while :; do
        t=$(now)
        cur=$(table)
        if [ "$cur" != "$last" ]; then
            last=$cur
            changed=$t
        fi
        if [ -n "$cur" ] && [ $((t - changed)) -ge "$window" ]; then
            echo "@@sample $name $1 settled after $((t - start))s (last change at $((changed - start))s)"
            return
        fi
        if [ $((t - start)) -ge "$bound" ]; then
            echo "@@sample $name $1 timed-out after $((t - start))s (last change at $((changed - start))s)"
            return
        fi
        sleep 1
    done
}

# Stops the daemon ($2, pid $3) with SIGTERM as an operator would, and waits (up to 60 s)
# until nothing of it is left in IPVS; then the next daemon starts from an empty table.
stop() {
    kill -TERM "$2"
    wait "$2"
    echo "@@sample $name $1 exit $?"
    start=$(now)
    while [ -n "$(table)" ] && [ $(($(now) - start)) -lt 60 ]; do
        sleep 1
    done
    if [ -z "$(table)" ]; then
        echo "@@sample $name $1 emptied after $(($(now) - start))s"
    else
        echo "@@sample $name $1 not-emptied after $(($(now) - start))s"
        ipvsadm -Ln
        ipvsadm -C
    fi
    # A script the daemon started at its shutdown (omega's quorum_down) may still be running.
    sleep 5
    scripts "$1-stop"
}

record() {
    echo "@@begin sample $name $1"
    ipvsadm -Ln
    echo "@@end sample $name $1"
    scripts "$1"
}

# What the quorum scripts wrote since the last call (or the daemon's start).
scripts() {
    echo "@@begin sample-scripts $name $1"
    [ -f "$events" ] && cat "$events" && rm "$events"
    echo "@@end sample-scripts $name $1"
}

log() {
    echo "@@begin sample-log $name $1"
    cat "$dir/$1.log"
    echo "@@end sample-log $name $1"
}

# keepalived as the samples expect it: both processes (VRRP and checkers; wasmalived has no
# checker-only mode), in the foreground, logging to the console; its own pid files.
rm -f "$events"
keepalived -n -l -D -f "/etc/samples/$sample" -p "$dir/keepalived.pid" \
    -c "$dir/checkers.pid" -r "$dir/vrrp.pid" > "$dir/keepalived.log" 2>&1 &
daemon=$!
settle keepalived
record keepalived
stop keepalived "$daemon"

# wasmalived with the same sample, as /init wrote it (the stock checker plugins' directory on
# the line that opens global_defs), with the compile cache /init warmed.
# One of the SLOTS, taken by the atomic mkdir of /run/wasmalived-slot.N.
slot=""
while [ -z "$slot" ]; do
    i=1
    while [ "$i" -le "$slots" ]; do
        if mkdir "/run/wasmalived-slot.$i" 2>/dev/null; then
            slot=$i
            break
        fi
        i=$((i + 1))
    done
    [ -n "$slot" ] || sleep 1
done
mkdir -p "$dir/state"
cp -a /var/lib/wasmalived/plugin-cache "$dir/state/"
rm -f "$events"
RUST_LOG=info wasmalived -n -l -D -f "/tmp/samples/$sample" --state-dir "$dir/state" \
    > "$dir/wasmalived.log" 2>&1 &
daemon=$!
settle wasmalived
record wasmalived
stop wasmalived "$daemon"
rmdir "/run/wasmalived-slot.$slot"

kill "$httpd"
log keepalived
log wasmalived
echo "@@sample $name done"
