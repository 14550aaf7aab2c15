#!/usr/bin/env bash
# A NIC whose PMD has rx interrupts: DPDK's net_tap. Its kernel side goes into one namespace, a
# veth (driven with net_af_packet, which has none) into another, and snapd switches between them.
# Pings cross, and the blocked worker is woken by the tap's rx interrupt (counted as port
# wake-ups; af_packet has no wake fd, so every port wake-up here is the tap's).
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
SNAPCTL=$(bin tools/snapctl)
tag=$$
TAP="st${tag}"
NS_TAP="snapd-tap-$tag"
make_host "snapd-tapv-$tag" "tv${tag}h" "tv${tag}n" 10.83.0.2/24

start snapd "$SNAPD" --run_dir="$WORK/run" --nic="net_tap0,iface=$TAP" --nic="net_af_packet0,iface=tv${tag}h"
wait_for 30 "snapd ready" grep -q "snapd ready" "$WORK/snapd.log"
ctl() { "$SNAPCTL" --socket="$WORK/run/control.sock" "$@"; }
rx_interrupts() { ctl --json ports | python3 -c 'import json,sys; print(" ".join(str(n.get("rx_interrupts", False)) for n in json.load(sys.stdin)["nics"]))'; }
check "the tap NIC has rx interrupts, af_packet has none" [ "$(rx_interrupts)" = "True False" ]

ip netns add "$NS_TAP"
_netns+=("$NS_TAP")
ip link set "$TAP" netns "$NS_TAP"
ip netns exec "$NS_TAP" ethtool -K "$TAP" tso off gso off gro off tx off >/dev/null 2>&1 || true
ip netns exec "$NS_TAP" ip addr add 10.83.0.1/24 dev "$TAP"
ip netns exec "$NS_TAP" ip link set "$TAP" up

wakeups() { ctl --json stats | python3 -c 'import json,sys; print(sum(int(w.get("port_wakeups", 0)) for w in json.load(sys.stdin)["workers"]))'; }
before=$(wakeups)
check "ping crosses snapd between the tap and the veth" \
  ip netns exec "$NS_TAP" ping -c 5 -i 0.2 -W 2 10.83.0.2
after=$(wakeups)
echo "port wake-ups during the pings: $((after - before))"
check "the idle worker was woken by the tap's rx interrupt" [ "$after" -gt "$before" ]
finish
