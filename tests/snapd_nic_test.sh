#!/usr/bin/env bash
# The real kernel as the far end: a namespace holds one end of a veth, snapd drives the other end
# with DPDK's net_af_packet, and udp_echo is attached to the vswitch. From the namespace, ping to
# the app's address gets replies and a UDP datagram sent with socat comes back. Then malformed
# frames from the namespace are dropped and counted, and snapd stops cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
tag=$$
NS="snapd-nic-$tag"
HOST_IF="sn${tag}h"
NS_IF="sn${tag}n"
make_host "$NS" "$HOST_IF" "$NS_IF" 10.77.0.100/24

start_snapd "$SNAPD" --nic="net_af_packet0,iface=$HOST_IF" \
  --app=id=1,mac=02:00:00:00:77:01,ip=10.77.0.1
start echo "$UDP_ECHO" --socket="$RUN/memif.sock" --id=1
wait_for 10 "udp_echo attached" grep -q "attached as 02:00:00:00:77:01 10.77.0.1" "$WORK/echo.log"

check "ping from the namespace to the app gets replies" \
  ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 10.77.0.1
reply=$(echo "hello over snapd" | ip netns exec "$NS" socat -t 2 - UDP:10.77.0.1:7 || true)
check "a UDP datagram comes back from the app" [ "$reply" = "hello over snapd" ]

# Malformed frames straight onto the wire: a frame shorter than an Ethernet header, an IPv4 header
# cut short, an IPv4 total length past the frame, an ARP of the wrong hardware type.
ip netns exec "$NS" python3 - "$NS_IF" <<'PY'
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
eth = bytes.fromhex("02000000770102000000aaaa")
frames = [
    eth + bytes.fromhex("0800") + bytes.fromhex("4500001c"),              # IPv4 cut at 4 bytes
    eth + bytes.fromhex("0800") + bytes.fromhex("450005dc") + bytes(16),   # total length 1500 > frame
    eth + bytes.fromhex("0800") + bytes.fromhex("6500001c") + bytes(16),   # version 6 in an IPv4 frame
    bytes.fromhex("ffffffffffff02000000aaaa0806") + bytes.fromhex("0006080006040001") + bytes(20),  # ARP htype 6
]
for f in frames:
    s.send(f)
PY
# Asks snapd for its stats table (SIGUSR1) and checks the NIC port's malformed column.
malformed_at_least() {
  kill -USR1 "$PID_snapd"
  sleep 0.1
  [ "$(stat_of "$WORK/snapd.log" nic0/q0 5)" -ge "$1" ]
}
check "malformed frames from the NIC were dropped and counted" wait_for 10 "4 malformed" malformed_at_least 4
kill -TERM "$PID_snapd"
wait_for 10 "snapd stopped" grep -q "snapd stopped" "$WORK/snapd.log"
check "snapd removed its memif socket" [ ! -e "$RUN/memif.sock" ]
check "udp_echo was told snapd went away" bash -c "wait $PID_echo 2>/dev/null; grep -q 'detached' '$WORK/echo.log' || ! kill -0 $PID_echo 2>/dev/null"
finish
