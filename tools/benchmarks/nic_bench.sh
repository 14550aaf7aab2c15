#!/usr/bin/env bash
# nic_bench: the NIC path against the kernel's, run by `tools/bench nic` (issue #11's benchmark).
# Two namespace hosts on veth pairs, their outer ends switched in turn by snapd (net_af_packet NICs
# of one vswitch: the default spreading mode, then a dedicated worker pinned to core 1) and by a
# Linux bridge; offloads off on every veth end. On each: ping (500 pings, 2 ms apart: p50, p99) and
# TCP (iperf3, 5 s). Ends with:
#   nic ping_p50_us=<n> ping_p99_us=<n> bridge_ping_p50_us=<n> bridge_ping_p99_us=<n> tcp_gbps=<x> bridge_tcp_gbps=<x>
# (snapd's figures in the default mode; the dedicated ones are in the table). Not measured yet
# (issue #11): the app-vs-kernel UDP round trip and jumbo frames.
set -euo pipefail
source "$(dirname "$0")/../../tests/json.sh"  # ctl_json
bin=$1
[ "$(id -u)" -eq 0 ] || { echo "nic_bench: needs root (network namespaces)" >&2; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
mkdir -p -m 0755 /var/lib/snapd-test
work=$(mktemp -d /var/lib/snapd-test/nic-bench.XXXXXX)
tag=$$
ns1="snapd-nb1-$tag" ns2="snapd-nb2-$tag"
h1="nb${tag}a" h2="nb${tag}b" br="nb${tag}br"
snapd_pid=""
cleanup() {
  [ -n "$snapd_pid" ] && { kill "$snapd_pid" 2>/dev/null; wait "$snapd_pid" 2>/dev/null; } || true
  ip link del "$br" 2>/dev/null || true
  ip link del "$h1" 2>/dev/null || true
  ip link del "$h2" 2>/dev/null || true
  ip netns del "$ns1" 2>/dev/null || true
  ip netns del "$ns2" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

host() {  # host NS HOST_IF ADDR: a namespace with one end of a veth, the other end here, up
  local ns=$1 hif=$2 addr=$3
  ip netns add "$ns"
  ip link add "$hif" type veth peer name eth0 netns "$ns"
  ethtool -K "$hif" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  ip netns exec "$ns" ethtool -K eth0 tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  ip link set "$hif" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "$addr" dev eth0
  ip netns exec "$ns" ip link set eth0 up
}
host "$ns1" "$h1" 10.79.0.1/24
host "$ns2" "$h2" 10.79.0.2/24

# ping_us: 500 pings from ns1 to ns2, 2 ms apart; prints "p50 p99" in microseconds.
ping_us() {
  ip netns exec "$ns1" ping -c 500 -i 0.002 -W 1 -q 10.79.0.2 >/dev/null 2>&1 || true  # warm ARP
  ip netns exec "$ns1" ping -c 500 -i 0.002 -W 1 10.79.0.2 2>/dev/null |
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -n |
    awk '{v[NR] = $1 * 1000} END {if (NR == 0) {print "lost lost"; exit}
         i = int(NR * 0.99); if (i < 1) i = 1
         printf "%d %d\n", v[int((NR + 1) / 2)], v[i]}'
}
# tcp_gbps: iperf3 from ns1 to ns2 for 5 s; prints Gbit/s received.
tcp_gbps() {
  ip netns exec "$ns2" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  local server=$!
  for _ in $(seq 100); do ip netns exec "$ns2" ss -tln | grep -q ':5201' && break; sleep 0.05; done
  ip netns exec "$ns1" iperf3 -c 10.79.0.2 -p 5201 -t 5 -J 2>/dev/null |
    ctl_json 'round(d["end"]["sum_received"]["bits_per_second"] / 1e9, 2)' 2>/dev/null || echo 0
  wait "$server" 2>/dev/null || true
}

run_snapd() {  # run_snapd [FLAGS...]: snapd switching the two veths, until stop_snapd
  "$bin/snapd/snapd" --run_dir="$work/run" --nic="net_af_packet0,iface=$h1" \
    --nic="net_af_packet1,iface=$h2" "$@" >"$work/snapd.log" 2>&1 &
  snapd_pid=$!
  for _ in $(seq 200); do grep -q "control API" "$work/snapd.log" 2>/dev/null && return; sleep 0.05; done
  echo "nic_bench: snapd did not start:" >&2; cat "$work/snapd.log" >&2; exit 1
}
stop_snapd() { kill "$snapd_pid"; wait "$snapd_pid" 2>/dev/null || true; snapd_pid=""; }

declare -A p50 p99 tcp
measure() {  # measure NAME
  read -r p50[$1] p99[$1] < <(ping_us)
  tcp[$1]=$(tcp_gbps)
}

run_snapd
measure snapd
stop_snapd
run_snapd --mode=dedicated --cores=1
measure dedicated
stop_snapd

ip link add "$br" type bridge
ip link set "$br" up
ip link set "$h1" master "$br"
ip link set "$h2" master "$br"
measure bridge

printf '%-34s %12s %12s %10s\n' "path (veth to veth)" "ping_p50_us" "ping_p99_us" "tcp_gbps"
printf '%-34s %12s %12s %10s\n' "snapd, default (spreading)" "${p50[snapd]}" "${p99[snapd]}" "${tcp[snapd]}"
printf '%-34s %12s %12s %10s\n' "snapd, dedicated worker on core 1" "${p50[dedicated]}" "${p99[dedicated]}" "${tcp[dedicated]}"
printf '%-34s %12s %12s %10s\n' "Linux bridge" "${p50[bridge]}" "${p99[bridge]}" "${tcp[bridge]}"
echo "nic ping_p50_us=${p50[snapd]} ping_p99_us=${p99[snapd]} bridge_ping_p50_us=${p50[bridge]}" \
  "bridge_ping_p99_us=${p99[bridge]} tcp_gbps=${tcp[snapd]} bridge_tcp_gbps=${tcp[bridge]}"
