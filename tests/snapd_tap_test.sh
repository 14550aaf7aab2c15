#!/usr/bin/env bash
# A NIC whose PMD has rx interrupts: DPDK's net_tap. Its kernel side goes into one namespace, a
# veth (driven with net_af_packet, which has none) into another, and snapd switches between them.
# Pings cross, and the blocked worker is woken by the tap's rx interrupt (counted as port
# wake-ups; af_packet has no wake fd, so every port wake-up here is the tap's). Then snapd upgrades
# twice: with the tap moved into a namespace, the new snapd cannot see it and creates it anew
# (the old one goes with the old snapd), which the report says; with the tap in snapd's namespace,
# the new snapd attaches its queues to it and the interface is kept as it was.
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
tag=$$
TAP="st${tag}"
NS_TAP="snapd-tap-$tag"
make_host "snapd-tapv-$tag" "tv${tag}h" "tv${tag}n" 10.83.0.2/24

cp "$SNAPD" "$WORK/snapd-a"
cp "$SNAPD" "$WORK/snapd-b"
start_snapd "$WORK/snapd-a" --nic="net_tap0,iface=$TAP" --nic="net_af_packet0,iface=tv${tag}h"
rx_interrupts() { ctl --json ports | ctl_json 'tuple(n.get("rx_interrupts", False) for n in d["nics"])'; }
check "the tap NIC has rx interrupts, af_packet has none" [ "$(rx_interrupts)" = "True False" ]

ip netns add "$NS_TAP"
_netns+=("$NS_TAP")
tap_into_namespace() {
  ip link set "$TAP" netns "$NS_TAP"
  ip netns exec "$NS_TAP" ethtool -K "$TAP" tso off gso off gro off tx off >/dev/null 2>&1 || true
  ip netns exec "$NS_TAP" ip addr add 10.83.0.1/24 dev "$TAP"
  ip netns exec "$NS_TAP" ip link set "$TAP" up
}
tap_into_namespace

wakeups() { ctl --json stats | ctl_json 'sum(int(w.get("port_wakeups", 0)) for w in d["workers"])'; }
before=$(wakeups)
check "ping crosses snapd between the tap and the veth" \
  ip netns exec "$NS_TAP" ping -c 5 -i 0.2 -W 2 10.83.0.2
after=$(wakeups)
echo "port wake-ups during the pings: $((after - before))"
check "the idle worker was woken by the tap's rx interrupt" [ "$after" -gt "$before" ]

out=$(ctl --timeout_s=60 upgrade --binary="$WORK/snapd-b" 2>&1) && status=0 || status=$?
echo "$out" | sed 's/^/  /'
check "snapd upgrades with a tap NIC" [ "$status" -eq 0 ]
check "the report says the tap came back new, without its configuration" \
  bash -c "echo \"\$1\" | grep -q 'note: nic0 (net_tap0): its interface $TAP was moved out of snapd'" _ "$out"
wait_for 10 "the old snapd's tap to go" bash -c "! ip netns exec '$NS_TAP' ip link show '$TAP' >/dev/null 2>&1"
check "the new snapd's tap is in snapd's namespace" ip link show "$TAP"
ip link set "$TAP" alias "snapd-tap-test-$tag"
ip link set "$TAP" up
ifindex=$(cat "/sys/class/net/$TAP/ifindex")
mac=$(cat "/sys/class/net/$TAP/address")
out=$(ctl --timeout_s=60 upgrade --binary="$WORK/snapd-a" 2>&1) && status=0 || status=$?
echo "$out" | sed 's/^/  /'
check "snapd upgrades again, with nothing to note" bash -c "[ $status -eq 0 ] && ! echo \"\$1\" | grep -q note:" _ "$out"
old_pid=$(echo "$out" | grep -o "upgraded: pid [0-9]*" | grep -o "[0-9]*$")
wait_for 10 "the old snapd to exit" bash -c "! kill -0 ${old_pid:-0} 2>/dev/null"
check "the tap left in snapd's namespace is the same interface, as it was" \
  bash -c "[ \"\$(cat /sys/class/net/$TAP/ifindex)\" = $ifindex ] && [ \"\$(cat /sys/class/net/$TAP/ifalias)\" = snapd-tap-test-$tag ]"
check "with the MAC address it had ($mac)" [ "$(cat "/sys/class/net/$TAP/address")" = "$mac" ]
check "and still up (the old snapd let go of it without taking it down)" \
  bash -c "ip link show '$TAP' | grep -q '[<,]UP[,>]'"
out=$(ctl --timeout_s=60 upgrade --binary="$WORK/snapd-b" --new_args=--upgrade_fault=error 2>&1) && status=0 || status=$?
echo "  $out"
check "an upgrade whose new snapd fails is refused" bash -c "[ $status -ne 0 ]"
check "and the tap is as it was, and up (the failed snapd let go of it without taking it down)" \
  bash -c "[ \"\$(cat /sys/class/net/$TAP/ifindex)\" = $ifindex ] && ip link show '$TAP' | grep -q '[<,]UP[,>]'"
tap_into_namespace
check "configured again, the new tap carries the pings" \
  ip netns exec "$NS_TAP" ping -c 3 -i 0.2 -W 2 10.83.0.2
finish
