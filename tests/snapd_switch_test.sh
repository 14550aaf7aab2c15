#!/usr/bin/env bash
# snapd as a switch between two namespaces: each namespace holds one end of a veth, snapd drives
# the two other ends with net_af_packet as two NICs of one vswitch, the second with two queue pairs
# (af_packet spreads flows over them). ping, UDP and TCP flow between the namespaces through snapd.
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
tag=$$
make_host "snapd-sw1-$tag" "sw${tag}a" "sw${tag}x" 10.78.0.1/24
make_host "snapd-sw2-$tag" "sw${tag}b" "sw${tag}y" 10.78.0.2/24
NS1="snapd-sw1-$tag"
NS2="snapd-sw2-$tag"

start_snapd "$SNAPD" --nic="net_af_packet0,iface=sw${tag}a" \
  --nic="net_af_packet1,iface=sw${tag}b@2"

check "ping from one namespace to the other" ip netns exec "$NS1" ping -c 3 -i 0.2 -W 2 10.78.0.2

# UDP: a one-shot echo in ns2, a datagram from ns1.
start udp_server ip netns exec "$NS2" socat UDP-RECVFROM:5001 SYSTEM:cat
wait_for 10 "UDP echo listening" bash -c "ip netns exec $NS2 ss -uln | grep -q ':5001'"
reply=$(echo "udp through the vswitch" | ip netns exec "$NS1" socat -t 2 - UDP:10.78.0.2:5001 || true)
check "UDP crosses the switch both ways" [ "$reply" = "udp through the vswitch" ]

# TCP: iperf3 for two seconds.
start iperf_server ip netns exec "$NS2" iperf3 -s -1 -p 5201
wait_for 10 "iperf3 listening" bash -c "ip netns exec $NS2 ss -tln | grep -q ':5201'"
ip netns exec "$NS1" iperf3 -c 10.78.0.2 -p 5201 -t 2 -J >"$WORK/iperf.json" 2>&1 || true
bits=$(ctl_json 'int(d["end"]["sum_received"]["bits_per_second"])' <"$WORK/iperf.json" 2>/dev/null || echo 0)
echo "TCP through snapd: $((bits / 1000000)) Mbit/s"
check "TCP crosses the switch (iperf3 moved data)" [ "$bits" -gt 1000000 ]

kill -USR1 "$PID_snapd"
wait_for 10 "stats logged" grep -q "^nic1/q0 " "$WORK/snapd.log"
check "no frame was malformed" [ "$(stat_of "$WORK/snapd.log" nic0/q0 5)" -eq 0 ]
check "both NICs carried the traffic" \
  [ "$(stat_of "$WORK/snapd.log" nic0 3)" -gt 100 -a "$(stat_of "$WORK/snapd.log" nic1 3)" -gt 100 ]
q_sum=$(( $(stat_of "$WORK/snapd.log" nic1/q0 2) + $(stat_of "$WORK/snapd.log" nic1/q1 2) ))
check "nic1's two queues together received what the NIC did" [ "$q_sum" -eq "$(stat_of "$WORK/snapd.log" nic1 3)" ]
finish
