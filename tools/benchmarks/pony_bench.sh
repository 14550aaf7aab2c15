#!/usr/bin/env bash
# pony_bench: the pony transport against kernel TCP, run by `tools/bench pony` (issue #9's
# benchmark).
#
# Two namespace hosts, A (10.78.0.1) and B (10.78.0.2), on one veth pair, offloads off on both ends
# (pony over af_packet has none). Kernel TCP between them: tools/tcp_msg (TCP_NODELAY, a length and
# one send per message, blocking sockets), server on B, client on A. Pony between them: a snapd on
# each host (its own run directory) with a pony engine on its end of the veth (10.78.0.11, .12),
# in the default mode (spreading: one worker per engine, which sleeps when idle), pony_echo on B,
# pony_bench on A, both sleeping on their rings when idle. In one run, alternating, two rounds of
# each (the best of the two counts: the machine's noise moves both):
#  - round trips of 64-byte messages, one at a time (p50, p99)
#  - pipelined 64-byte messages, 32 in flight: answers a second
#  - 1 MiB messages, each answered by its 16-byte digest: Gbit/s
# Kernel TCP runs while no snapd does (a snapd's packet sockets would see its frames). Kernel TCP
# with offloads on is printed beside it, for context.
# Ends with:
#   pony rpc_p50_us= rpc_p99_us= kernel_tcp_rpc_p50_us= kernel_tcp_rpc_p99_us= msgs_per_s= kernel_tcp_msgs_per_s= bulk_gbps= kernel_tcp_bulk_gbps= mode=spreading
set -euo pipefail
source "$(dirname "$0")/../../tests/json.sh"  # ctl_json
bin=$1
[ "$(id -u)" -eq 0 ] || { echo "pony_bench: needs root (network namespaces)" >&2; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
mkdir -p -m 0755 /var/lib/snapd-test
work=$(mktemp -d /var/lib/snapd-test/pony-bench.XXXXXX)
tag=$$
nsa="snapd-pba-$tag" nsb="snapd-pbb-$tag"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pkill -f "^$work/" 2>/dev/null || true
  for ns in "$nsa" "$nsb"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$nsa"
ip netns add "$nsb"
ip netns exec "$nsa" ip link add hosta type veth peer name hostb
ip netns exec "$nsa" ip link set hostb netns "$nsb"
offloads() {  # offloads on|off
  ip netns exec "$nsa" ethtool -K hosta tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null
  ip netns exec "$nsb" ethtool -K hostb tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null
}
offloads off
for h in a b; do
  ns=$([ $h = a ] && echo "$nsa" || echo "$nsb")
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip link set "host$h" up
done
ip netns exec "$nsa" ip addr add 10.78.0.1/24 dev hosta
ip netns exec "$nsb" ip addr add 10.78.0.2/24 dev hostb

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | tail -1; }
best_low() { printf '%s\n' "$@" | sort -n | head -1; }
best_high() { printf '%s\n' "$@" | sort -n | tail -1; }

declare -A r
# kernel ROUND SUFFIX: kernel TCP's three figures into r[...SUFFIX].
kernel() {
  local suffix=$2
  ip netns exec "$nsb" "$bin/tools/tcp_msg" --server >"$work/tcp_server.log" 2>&1 &
  local server=$!
  sleep 0.3
  local out
  out=$(ip netns exec "$nsa" "$bin/tools/tcp_msg" --peer=10.78.0.2 --mode=rpc --count=10000)
  r[k_p50$suffix$1]=$(field p50_us <<<"$out")
  r[k_p99$suffix$1]=$(field p99_us <<<"$out")
  out=$(ip netns exec "$nsa" "$bin/tools/tcp_msg" --peer=10.78.0.2 --mode=pipeline --window=32 --duration_s=3)
  r[k_mps$suffix$1]=$(field msgs_per_s <<<"$out")
  out=$(ip netns exec "$nsa" "$bin/tools/tcp_msg" --peer=10.78.0.2 --mode=bulk --duration_s=3)
  r[k_gbps$suffix$1]=$(field gbps <<<"$out")
  kill "$server"
  wait "$server" 2>/dev/null || true
}

start_snapds() {
  for h in a b; do
    local ns addr
    ns=$([ $h = a ] && echo "$nsa" || echo "$nsb")
    addr=$([ $h = a ] && echo 10.78.0.11 || echo 10.78.0.12)
    mkdir -p "$work/run_$h"
    cat >"$work/$h.conf" <<EOF
engines { name: "pony0" kind: "pony" config: "address: '$addr/24'" }
nics { devargs: "af_packet:host$h" engines: "pony0" }
apps { id: 1 mac: "02:00:00:00:78:01" ipv4: "10.78.1.1" engine: "pony0" }
apps { id: 2 mac: "02:00:00:00:78:02" ipv4: "10.78.1.2" engine: "pony0" }
EOF
    cp "$bin/snapd/snapd" "$work/snapd-$h"
    ip netns exec "$ns" "$work/snapd-$h" --run_dir="$work/run_$h" --config="$work/$h.conf" \
      >"$work/snapd_$h.log" 2>&1 &
    pids+=($!)
  done
  for h in a b; do
    for _ in $(seq 100); do grep -q "control API" "$work/snapd_$h.log" && break; sleep 0.1; done
  done
  "$bin/clients/pony_echo" --socket="$work/run_b/memif.sock" --id=2 >"$work/echo.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do grep -q attached "$work/echo.log" && break; sleep 0.1; done
}
stop_snapds() {
  pkill -f "^$work/snapd-" 2>/dev/null || true
  pkill -f "pony_echo --socket=$work" 2>/dev/null || true
  sleep 0.5
}
pb() { "$bin/clients/pony_bench" --socket="$work/run_a/memif.sock" --id=1 --peer=10.78.0.12 --peer_app=2 "$@"; }
# pony ROUND: pony's three figures into r[...ROUND].
pony() {
  start_snapds
  local out
  out=$(pb --mode=rpc --count=10000)
  r[p_p50$1]=$(field p50_us <<<"$out")
  r[p_p99$1]=$(field p99_us <<<"$out")
  out=$(pb --mode=pipeline --window=32 --duration_s=3)
  r[p_mps$1]=$(field msgs_per_s <<<"$out")
  out=$(pb --mode=bulk --duration_s=3)
  r[p_gbps$1]=$(field gbps <<<"$out")
  "$bin/tools/snapctl" --socket="$work/run_a/control.sock" --json stats >"$work/stats_a$1.json"
  stop_snapds
}

for round in 1 2; do
  kernel $round ""
  pony $round
done
offloads on
kernel 1 _on
offloads off

rpc_p50=$(best_low "${r[p_p501]}" "${r[p_p502]}")
rpc_p99=$(best_low "${r[p_p991]}" "${r[p_p992]}")
k_p50=$(best_low "${r[k_p501]}" "${r[k_p502]}")
k_p99=$(best_low "${r[k_p991]}" "${r[k_p992]}")
mps=$(best_high "${r[p_mps1]}" "${r[p_mps2]}")
k_mps=$(best_high "${r[k_mps1]}" "${r[k_mps2]}")
gbps=$(best_high "${r[p_gbps1]}" "${r[p_gbps2]}")
k_gbps=$(best_high "${r[k_gbps1]}" "${r[k_gbps2]}")
retrans=$(ctl_json "d['engines'][0]['stats']['kind_counters'].get('retransmits', 0)" <"$work/stats_a2.json")

printf '%-44s %10s %10s %12s %10s\n' "A -> B, 64-byte and 1 MiB messages" rpc_p50_us rpc_p99_us msgs_per_s bulk_gbps
printf '%-44s %10s %10s %12s %10s\n' "pony (snapd spreading), round 1" "${r[p_p501]}" "${r[p_p991]}" "${r[p_mps1]}" "${r[p_gbps1]}"
printf '%-44s %10s %10s %12s %10s\n' "pony (snapd spreading), round 2" "${r[p_p502]}" "${r[p_p992]}" "${r[p_mps2]}" "${r[p_gbps2]}"
printf '%-44s %10s %10s %12s %10s\n' "kernel TCP, offloads off, round 1" "${r[k_p501]}" "${r[k_p991]}" "${r[k_mps1]}" "${r[k_gbps1]}"
printf '%-44s %10s %10s %12s %10s\n' "kernel TCP, offloads off, round 2" "${r[k_p502]}" "${r[k_p992]}" "${r[k_mps2]}" "${r[k_gbps2]}"
printf '%-44s %10s %10s %12s %10s\n' "kernel TCP, offloads on (context)" "${r[k_p50_on1]}" "${r[k_p99_on1]}" "${r[k_mps_on1]}" "${r[k_gbps_on1]}"
echo "pony retransmits on A in round 2: $retrans"
awk -v a="$rpc_p50" -v b="$k_p50" -v c="$mps" -v d="$k_mps" -v e="$gbps" -v f="$k_gbps" 'BEGIN {
  printf "ratios: rpc_p50 %.2fx kernel TCP (target <= 1), msgs_per_s %.2fx (target >= 2), bulk %.2fx (target >= 0.5)\n", a / b, c / d, e / f }'
echo "pony rpc_p50_us=$rpc_p50 rpc_p99_us=$rpc_p99 kernel_tcp_rpc_p50_us=$k_p50 kernel_tcp_rpc_p99_us=$k_p99 msgs_per_s=$mps kernel_tcp_msgs_per_s=$k_mps bulk_gbps=$gbps kernel_tcp_bulk_gbps=$k_gbps mode=spreading"
