#!/usr/bin/env bash
# snapd's own Linux-interface NICs (af_packet:IFACE: packet sockets with mapped rings), in the
# default mode (spreading: workers block when idle). Four namespace hosts on veths: ns1, ns2 and
# ns3 at MTU 9000, ns4 at 1500. Two vswitch engines share ns1's and ns2's NICs, two queues each
# (queue 0 on sw0, queue 1 on sw1); ns3's and ns4's NICs and an app (udp_echo) are on sw0 alone
# (an app is reachable through its own engine's queues only).
#  - Wake on receive: an idle worker sleeps without a bound (no timer wakes it to look at its NICs:
#    timed_wakeups stays 0), and pings through it are answered, each waking it through its NIC's
#    socket.
#  - Multi-queue: sixteen UDP flows spread over both queues of each NIC, hence both engines; every
#    datagram comes back; the queues' counts add up to the NIC's.
#  - Checksum offload on a host: snapd finishes the TCP and UDP checksums it left to the NIC.
#  - VLAN-tagged frames (the kernel gives the tag apart; snapd puts it back), jumbo ones too.
#  - Jumbo frames: ping -s 8000 NIC to NIC (ns1 to ns2) and to the app on memif (ns3 to the app:
#    chained buffers), TCP at MTU 9000; a jumbo frame for the 1500-byte host (ns3 to ns4) is dropped
#    and counted (oversize).
#  - A live upgrade moves the NICs: traffic flows through the new snapd, the counters carry on.
#  - An interface taken down and up: the workers do not spin meanwhile, and it works again after.
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
UDP_RTT=$(bin tools/udp_rtt)
tag=$$
NS1="snapd-pn1-$tag" NS2="snapd-pn2-$tag" NS3="snapd-pn3-$tag" NS4="snapd-pn4-$tag"
H1="pn${tag}a" H2="pn${tag}b" H3="pn${tag}c" H4="pn${tag}d"
make_host "$NS1" "$H1" "pn${tag}w" 10.83.0.1/24
make_host "$NS2" "$H2" "pn${tag}x" 10.83.0.2/24
make_host "$NS3" "$H3" "pn${tag}y" 10.83.0.3/24
make_host "$NS4" "$H4" "pn${tag}z" 10.83.0.4/24
for i in 1 2 3; do
  ns="snapd-pn$i-$tag"
  ip link set "pn${tag}$(echo abc | cut -c$i)" mtu 9000
  ip netns exec "$ns" ip link set "pn${tag}$(echo wxy | cut -c$i)" mtu 9000
done
cp "$SNAPD" "$WORK/snapd-a"
cp "$SNAPD" "$WORK/snapd-b"
export CTL_TIMEOUT_S=60

cat >"$WORK/snapd.conf" <<EOF
engines { name: "sw0" kind: "vswitch" }
engines { name: "sw1" kind: "vswitch" }
nics { devargs: "af_packet:$H1" queues: 2 engines: "sw0" engines: "sw1" }
nics { devargs: "af_packet:$H2" queues: 2 engines: "sw0" engines: "sw1" }
nics { devargs: "af_packet:$H3" engines: "sw0" }
nics { devargs: "af_packet:$H4" engines: "sw0" }
apps { id: 1 mac: "02:00:00:00:83:0a" ipv4: "10.83.0.10" engine: "sw0" }
EOF
start_snapd "$WORK/snapd-a" --config="$WORK/snapd.conf"
check "the NICs opened at their interfaces' MTU" \
  bash -c "grep -q '$H1 through packet sockets (2 queue pair(s) sharing flows by hash, MTU 9000' '$WORK/snapd.log' &&
           grep -q '$H4 through packet sockets (1 queue pair(s), MTU 1500' '$WORK/snapd.log'"
start echo "$UDP_ECHO" --socket="$RUN/memif.sock" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"
start echo_host ip netns exec "$NS2" "$UDP_RTT" --echo --port=7
wait_for 10 "UDP echo listening" bash -c "ip netns exec $NS2 ss -uln | grep -q ':7 '"

workers_sum() {  # workers_sum FIELD: the field summed over the workers
  ctl --json stats | ctl_json "sum(int(w.get('$1', 0)) for w in d['workers'])"
}
nic_stat() { ctl --json stats | ctl_json "int(d['nics'][$1].get('$2', 0))"; }
port_stat() {  # port_stat PORT FIELD
  ctl --json stats | ctl_json "[int(p.get('stats', {}).get('$2', 0)) for p in d['ports'] if p['name'] == '$1'][0]"
}

# --- wake on receive -------------------------------------------------------------------------
ip netns exec "$NS1" ping -c 3 -i 0.1 -W 2 10.83.0.2 >/dev/null 2>&1 || true  # ARP, MAC learning
timed_before=$(workers_sum timed_wakeups)
sleep 1
timed=$(( $(workers_sum timed_wakeups) - timed_before ))
# A worker that polled its NICs on a timer would wake hundreds of times a second (DPDK's
# net_af_packet: a back-off of at most 4 ms).
check "idle workers sleep without a bound ($timed timed wake-ups in 1 s)" [ "$timed" -eq 0 ]
wakeups_before=$(workers_sum port_wakeups)
check "20 pings through the idle switch are answered" \
  ip netns exec "$NS1" ping -c 20 -i 0.1 -W 2 10.83.0.2
wakeups=$(( $(workers_sum port_wakeups) - wakeups_before ))
check "each ping woke a worker through its NIC's socket ($wakeups wake-ups)" [ "$wakeups" -ge 20 ]
timed=$(( $(workers_sum timed_wakeups) - timed_before ))
check "no worker woke on a timer meanwhile ($timed)" [ "$timed" -eq 0 ]

# --- multi-queue -----------------------------------------------------------------------------
flows_ok=0
for i in $(seq 16); do
  ip netns exec "$NS1" "$UDP_RTT" --to=10.83.0.2 --port=7 --count=20 >>"$WORK/flows.log" 2>&1 &&
    flows_ok=$((flows_ok + 1))
done
check "16 UDP flows of 20 round trips each all came back ($flows_ok of 16)" [ "$flows_ok" -eq 16 ]
# One snapshot: a frame that comes in between two RPCs (the kernel's IPv6 neighbour discovery,
# say) would count in one and not the other.
snapshot=$(ctl --json stats)
port_in() { ctl_json "[int(p.get('stats', {}).get('rx_frames', 0)) for p in d['ports'] if p['name'] == '$1'][0]" <<<"$snapshot"; }
q0=$(port_in nic0/q0)
q1=$(port_in nic0/q1)
nic0_rx=$(ctl_json "int(d['nics'][0].get('rx_frames', 0))" <<<"$snapshot")
check "both queues of nic0 received flows (q0=$q0 q1=$q1)" [ "$q0" -gt 0 -a "$q1" -gt 0 ]
check "nic0's queues together received what the NIC did ($q0 + $q1, $nic0_rx)" [ $((q0 + q1)) -eq "$nic0_rx" ]
sw1_frames=$(ctl --json engines | ctl_json "[int(e['stats'].get('frames', 0)) for e in d['engines'] if e['name'] == 'sw1'][0]")
check "the second engine switched its queues' share ($sw1_frames frames)" [ "$sw1_frames" -gt 0 ]

# --- checksum offload: a host that leaves its TCP and UDP checksums to the NIC ------------------
ip netns exec "$NS1" ethtool -K "pn${tag}w" tx on >/dev/null
check "UDP round trips with ns1's checksums left to the NIC (snapd finishes them)" \
  ip netns exec "$NS1" "$UDP_RTT" --to=10.83.0.2 --port=7 --count=20
start iperf_csum ip netns exec "$NS2" iperf3 -s -1 -p 5202
wait_for 10 "iperf3 listening" bash -c "ip netns exec $NS2 ss -tln | grep -q ':5202'"
ip netns exec "$NS1" iperf3 -c 10.83.0.2 -p 5202 -t 1 -J >"$WORK/iperf_csum.json" 2>&1 || true
bits=$(ctl_json 'int(d["end"]["sum_received"]["bits_per_second"])' <"$WORK/iperf_csum.json" 2>/dev/null || echo 0)
check "TCP with ns1's checksums left to the NIC ($((bits / 1000000)) Mbit/s)" [ "$bits" -gt 1000000 ]
ip netns exec "$NS1" ethtool -K "pn${tag}w" tx off >/dev/null

# --- VLAN tags: the kernel hands them over beside the frame; snapd puts them back --------------
# (No 8021q module here for VLAN interfaces: tagged frames are sent and read on packet sockets.)
cat >"$WORK/vlan.py" <<'PY'
import socket, struct, sys, time
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 1 << 4
role, dev = sys.argv[1], sys.argv[2]
sizes = [60, 1500, 9000]  # payload bytes after the tag; 9000: a tagged jumbo frame
def frame(size):
    body = b"snapd-vlan-test:%d:" % size
    return (b"\xff" * 6 + bytes.fromhex("020000008301") + struct.pack("!HH", 0x8100, 7) +
            struct.pack("!H", 0x88b5) + body + b"v" * (size - 2 - len(body)))
if role == "send":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    for size in sizes:
        s.send(frame(size))
    sys.exit(0)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((dev, 0))
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.settimeout(5)
print("ready", flush=True)
got = set()
try:
    while len(got) < len(sizes):
        data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(32))
        if b"snapd-vlan-test:" not in data:
            continue
        tci = None
        for level, kind, value in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                status, _, _, _, _, vlan_tci, _ = struct.unpack("IIIHHHH", value[:20])
                if status & TP_STATUS_VLAN_VALID:
                    tci = vlan_tci
        size = int(data.split(b":")[1])
        if tci == 7 and len(data) == 12 + size:  # the tag is given apart
            got.add(size)
        print("got", size, "tag", tci, "len", len(data), flush=True)
except socket.timeout:
    pass
print("tagged frames intact:", sorted(got))
sys.exit(0 if len(got) == len(sizes) else 1)
PY
start vlan_rx ip netns exec "$NS2" python3 "$WORK/vlan.py" recv "pn${tag}x"
wait_for 10 "VLAN reader ready" grep -q ready "$WORK/vlan_rx.log"
ip netns exec "$NS1" python3 "$WORK/vlan.py" send "pn${tag}w"
check "tagged frames (VLAN 7; 60, 1500 and 9000 bytes) cross snapd with their tag" wait "$PID_vlan_rx"
cat "$WORK/vlan_rx.log"

# --- jumbo frames ----------------------------------------------------------------------------
check "ping -s 8000 from ns1 to ns2 (NIC to NIC, MTU 9000)" \
  ip netns exec "$NS1" ping -c 5 -i 0.1 -W 2 -s 8000 -M do 10.83.0.2
check "ping -s 8000 from ns3 to the app on memif (chained buffers both ways)" \
  ip netns exec "$NS3" ping -c 5 -i 0.1 -W 2 -s 8000 -M do 10.83.0.10
start iperf_server ip netns exec "$NS2" iperf3 -s -1 -p 5201
wait_for 10 "iperf3 listening" bash -c "ip netns exec $NS2 ss -tln | grep -q ':5201'"
ip netns exec "$NS1" iperf3 -c 10.83.0.2 -p 5201 -t 2 -J >"$WORK/iperf.json" 2>&1 || true
bits=$(ctl_json 'int(d["end"]["sum_received"]["bits_per_second"])' <"$WORK/iperf.json" 2>/dev/null || echo 0)
mss=$(ctl_json 'int(d["start"]["tcp_mss_default"])' <"$WORK/iperf.json" 2>/dev/null || echo 0)
echo "TCP at MTU 9000 through snapd: $((bits / 1000000)) Mbit/s, MSS $mss"
check "TCP moves data at MTU 9000 (MSS $mss)" [ "$bits" -gt 1000000 -a "$mss" -gt 8000 ]
cut=$(( $(nic_stat 0 rx_errors) + $(nic_stat 1 rx_errors) ))
missed=$(( $(nic_stat 0 rx_missed) + $(nic_stat 1 rx_missed) ))
check "no frame was cut short ($cut) or missed ($missed) on the jumbo NICs" [ "$cut" -eq 0 -a "$missed" -eq 0 ]
# ns3 -> ns4 with 8000 bytes: ns3's MTU allows it, ns4's link does not; the switch drops it.
ip netns exec "$NS3" ping -c 2 -i 0.1 -W 1 10.83.0.4 >/dev/null 2>&1 || true  # ARP both ways
ip netns exec "$NS3" ping -c 3 -i 0.1 -W 1 -s 8000 -M do 10.83.0.4 >/dev/null 2>&1 || true
oversize=$(port_stat nic3/q0 drop_oversize)
check "jumbo frames for the 1500-byte NIC were dropped and counted ($oversize)" [ "$oversize" -ge 3 ]

# --- a live upgrade moves the NICs ---------------------------------------------------------------
rx_before=$(nic_stat 0 rx_frames)
start ping_up ip netns exec "$NS1" ping -i 0.01 -c 300 -W 1 10.83.0.2
sleep 0.5
check "a live upgrade under traffic succeeds" ctl upgrade --binary="$WORK/snapd-b"
wait "$PID_ping_up" || true
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$WORK/ping_up.log")
echo "ping through the upgrade: ${received:-0} of 300 answered"
check "pings crossed the upgrade (${received:-0} of 300 answered)" [ "${received:-0}" -ge 290 ]
check "ping -s 8000 through the new snapd" \
  ip netns exec "$NS1" ping -c 3 -i 0.1 -W 2 -s 8000 -M do 10.83.0.2
check "the NIC counters carried on across the upgrade" [ "$(nic_stat 0 rx_frames)" -gt "$rx_before" ]

# --- an interface that goes down and comes back -------------------------------------------------
ip link set "$H4" down
sleep 0.2
sleeps_before=$(workers_sum sleeps)
sleep 1
sleeps=$(( $(workers_sum sleeps) - sleeps_before ))
# Its socket reports an error once; a worker that did not clear it would wake at once, always.
check "with ns4's interface down the workers still sleep ($sleeps sleeps in 1 s)" [ "$sleeps" -le 20 ]
ip link set "$H4" up
check "ns4 is reached again once its interface is back up" \
  wait_for 10 "ping ns3 -> ns4" ip netns exec "$NS3" ping -c 1 -W 1 10.83.0.4
finish
