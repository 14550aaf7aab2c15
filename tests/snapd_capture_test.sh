#!/usr/bin/env bash
# `snapctl capture` under app traffic and through a NIC, read by tshark (Debian's; a reader no one
# here wrote):
#  - an app port, --count: exactly that many frames, on an interface named after the port, both
#    directions (snapd's sends to the app outbound, the app's to snapd inbound);
#  - --direction=rx and --filter (a tcpdump expression, compiled by libpcap, run by rte_bpf):
#    only the app's frames, only those from the address asked for; a filter libpcap refuses is
#    refused with its words;
#  - --output=- piped into `tshark -r -`;
#  - --nic: every queue of an af_packet NIC, pinged from a namespace: the echo requests in, the
#    replies out;
#  - --snaplen cuts frames (the original length kept); an app not attached yet is captured from
#    its first frame; the event log notes each capture;
#  - a live upgrade in the middle of a capture: the new snapd goes on with it and snapctl with
#    the new snapd, into the same file: one section, frames from both snapds, none twice, and
#    the statistics counting both;
#  - a reader stuck through an upgrade (snapctl stopped): the old snapd leaves without it, the new
#    one ends the capture it carried when no one takes it up within 30 s (the event log says so,
#    and the port is free again), and snapctl, let go on, says the capture broke off (no "Ctrl-C").
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
SOCK="$RUN/memif.sock"
tag=$$
NS="snapd-cap-$tag"
HOST_IF="sc${tag}h"
NS_IF="sc${tag}n"
make_host "$NS" "$HOST_IF" "$NS_IF" 10.89.0.100/24

start_snapd "$SNAPD" --nic="net_af_packet0,iface=$HOST_IF" \
  --app=id=1,mac=02:00:00:00:89:01,ip=10.89.0.1 --app=id=2,mac=02:00:00:00:89:02,ip=10.89.0.2
start echo "$UDP_ECHO" --socket="$SOCK" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"
start traffic "$TRAFFIC" --socket="$SOCK" --id=2 --dst_ip=10.89.0.1 --frames=1000000000 \
  --window=4 --duration_s=120 --timeout_s=130 --lost_after_ms=1000
wait_for 10 "traffic flowing" bash -c "ctl --json stats | grep -q '\"rx_frames\": \"[1-9]'"

fields() {  # FILE FIELD...: tshark's fields, tab-separated, a line a frame
  local f=$1; shift
  tshark -r "$f" -T fields $(printf -- '-e %s ' "$@") 2>/dev/null
}

check "a capture of app1 for 200 frames" \
  bash -c "ctl capture --port=app1 --count=200 --output='$WORK/app1.pcapng' 2>'$WORK/app1.err'"
echo "  $(cat "$WORK/app1.err")"
check "... tshark reads 200 frames" [ "$(fields "$WORK/app1.pcapng" frame.number | wc -l)" = 200 ]
check "... all on an interface named app1" \
  [ "$(fields "$WORK/app1.pcapng" frame.interface_name | sort -u)" = app1 ]
check "... in both directions (to the app outbound, from it inbound)" \
  [ "$(fields "$WORK/app1.pcapng" frame.packet_flags_direction | sort -u | tr '\n' ' ')" = "0x00000001 0x00000002 " ]
check "... inbound from the app's address, outbound to it (ARP aside)" bash -c "
  fields() { tshark -r '$WORK/app1.pcapng' -Y ip -T fields -e frame.packet_flags_direction -e ip.src 2>/dev/null; }
  ! fields | grep -v -e '^0x00000001	10.89.0.1$' -e '^0x00000002	10.89.0.2$' | grep -q ."
check "... and the summary says 200 captured, none dropped" \
  grep -q "captured 200 frame(s) on app1 .*, 0 dropped; ended: count" "$WORK/app1.err"

check "rx only, filtered by a tcpdump expression" \
  bash -c "ctl capture --port=app1 --direction=rx --filter='udp and src host 10.89.0.1' --count=50 --output='$WORK/rx.pcapng' 2>'$WORK/rx.err'"
echo "  $(cat "$WORK/rx.err")"
check "... 50 frames, all inbound, all from 10.89.0.1" \
  [ "$(fields "$WORK/rx.pcapng" frame.packet_flags_direction ip.src | sort | uniq -c | awk '{print $1, $2, $3}')" = "50 0x00000001 10.89.0.1" ]
check "... a filter that matches nothing captures nothing in a second" \
  bash -c "ctl capture --port=app1 --filter='tcp port 9' --duration=1 --output='$WORK/none.pcapng' 2>'$WORK/none.err'"
check "... (tshark reads an empty capture: no frames)" [ "$(fields "$WORK/none.pcapng" frame.number | wc -l)" = 0 ]
check "... and it says how many it saw and let through" grep -q " seen, 0 passed the filter" "$WORK/none.err"
ctl capture --port=app1 --filter='udp port banana' --output="$WORK/bad.pcapng" >"$WORK/bad.err" 2>&1 || true
check "a filter libpcap cannot compile is refused with its words" \
  grep -q "INVALID_ARGUMENT: filter 'udp port banana': .*banana" "$WORK/bad.err"
ctl capture --port=app9 --count=1 --output="$WORK/none9.pcapng" >"$WORK/none9.err" 2>&1 || true
check "a port no engine has is refused by name" grep -q "NOT_FOUND: port 'app9'" "$WORK/none9.err"

check "--output=- into tshark -r -" bash -c "
  ctl capture --port=app2 --count=20 --snaplen=60 --output=- 2>/dev/null |
    tshark -r - -T fields -e frame.interface_name -e frame.cap_len -e frame.len 2>/dev/null >'$WORK/pipe.txt'
  [ \$(wc -l <'$WORK/pipe.txt') = 20 ] && ! grep -v '^app2	60	' '$WORK/pipe.txt' | grep -q ."
echo "  through a pipe: $(head -1 "$WORK/pipe.txt" | tr '\t' ' ') ..."

# Interrupted (SIGINT, as Ctrl-C; a background job here, which a shell starts with SIGINT
# ignored): the capture ends, snapd takes its taps off, the file holds what was streamed.
start intr "$SNAPCTL" --socket="$RUN/control.sock" capture --port=app1 --output="$WORK/intr.pcapng"
wait_for 10 "the open-ended capture running" bash -c "ctl events | grep -q 'capture .*port app1 .*started by' && [ -s '$WORK/intr.pcapng' ]"
sleep 0.5
kill -INT "$PID_intr"
wait_for 10 "snapctl interrupted" bash -c "! kill -0 $PID_intr 2>/dev/null"
check "Ctrl-C ends the capture: snapctl says so" grep -q "capture interrupted" "$WORK/intr.log"
check "... snapd ended it (its taps are off)" \
  bash -c "ctl events | grep -q 'capture .*port app1 .*ended (cancelled)'"
check "... and tshark reads the frames streamed before" \
  [ "$(fields "$WORK/intr.pcapng" frame.number | wc -l)" -gt 0 ]
check "... and the port is free for the next capture (its tap is off)" \
  bash -c "ctl capture --port=app1 --count=5 --output='$WORK/after.pcapng' 2>/dev/null"

# An app registered but not attached yet: the capture takes its port as it attaches, from its
# first frame (its ARP or its first datagram).
ctl app add 3 --mac=02:00:00:00:89:03 --ip=10.89.0.3 >/dev/null
start early_capture bash -c "ctl capture --port=app3 --direction=rx --count=10 --duration=30 --output='$WORK/early.pcapng' 2>'$WORK/early.err'"
wait_for 10 "the capture of app3 waiting" bash -c "ctl events | grep -q 'capture .*port app3 .*started'"
"$TRAFFIC" --socket="$SOCK" --id=3 --dst_ip=10.89.0.1 --frames=50 --window=1 >"$WORK/t3.log" 2>&1 || true
wait_for 30 "the capture of app3 done" grep -q "ended: " "$WORK/early.err"
echo "  $(cat "$WORK/early.err")"
check "an app captured from its attach: 10 frames from 10.89.0.3 on app3" \
  [ "$(fields "$WORK/early.pcapng" frame.interface_name frame.packet_flags_direction | sort | uniq -c | awk '{print $1, $2, $3}')" = "10 app3 0x00000001" ]

# The NIC: its queue ports, pinged from the namespace (ICMP only: ARP may come and go).
start nic_capture bash -c "ctl capture --nic=nic0 --filter=icmp --count=6 --duration=30 --output='$WORK/nic.pcapng' 2>'$WORK/nic.err'"
wait_for 10 "the NIC capture running" bash -c "ctl events | grep -q 'capture .*nic nic0 .*started'"
ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 10.89.0.1 >/dev/null || true
wait_for 30 "the NIC capture done" grep -q "ended: " "$WORK/nic.err"
echo "  $(cat "$WORK/nic.err")"
check "a NIC's capture: 3 echo requests in, 3 replies out, on its queue's interface" \
  [ "$(fields "$WORK/nic.pcapng" frame.interface_name frame.packet_flags_direction icmp.type | sort | uniq -c | awk '{print $1, $2, $3, $4}' | tr '\n' ';')" = "3 nic0/q0 0x00000001 8;3 nic0/q0 0x00000002 0;" ]
check "the event log notes each capture" \
  bash -c "[ \$(ctl events | grep -c ' capture .*ended') -ge 6 ]"

# A live upgrade under a capture: app1's replies to app2 (UDP echo: tshark's echo.data is the
# payload, which starts with each frame's own sequence number, little-endian).
cp "$SNAPD" "$WORK/snapd-new"
ctl events >"$WORK/events.before"
started_before=$(grep -c 'capture .*port app1 .*started' "$WORK/events.before" || true)
start up_capture bash -c "ctl capture --port=app1 --direction=rx --filter=udp --duration=12 --output='$WORK/up.pcapng' 2>'$WORK/up.err'"
wait_for 10 "the capture of app1 across the upgrade running" \
  bash -c "[ \$(ctl events | grep -c 'capture .*port app1 .*started') -gt $started_before ] && [ -s '$WORK/up.pcapng' ]"
sleep 0.5
check "a live upgrade while app1 is captured" \
  bash -c "CTL_TIMEOUT_S=60 ctl upgrade --binary='$WORK/snapd-new' >'$WORK/up_upgrade.log' 2>&1"
wait_for 30 "the capture across the upgrade done" grep -q "ended: " "$WORK/up.err" || true
cat "$WORK/up.err" | sed 's/^/  /'
before=$(grep -o "upgrading: [0-9]* frame" "$WORK/up.err" | grep -o "[0-9]*" || echo 0)
total=$(grep -o "captured [0-9]* frame" "$WORK/up.err" | grep -o "[0-9]*" || echo 0)
seen=$(grep -o "([0-9]* seen" "$WORK/up.err" | grep -o "[0-9]*" || echo 0)
check "snapctl went on with the new snapd, and the capture ended by its duration, none dropped" \
  grep -q "captured .* on app1 .*, 0 dropped; ended: duration (across 1 live upgrade(s))" "$WORK/up.err"
check "... frames from the old snapd ($before) and from the new one ($((total - before)))" \
  bash -c "[ '$before' -gt 0 ] && [ '$total' -gt '$before' ]"
check "... the frames seen counting both snapds' ($seen = $total)" [ "$seen" = "$total" ]
check "... tshark reads them all ($total), all on app1" \
  [ "$(fields "$WORK/up.pcapng" frame.interface_name | sort | uniq -c | awk '{print $1, $2}')" = "$total app1" ]
check "... in one section with one interface" \
  bash -c "capinfos -I '$WORK/up.pcapng' 2>/dev/null | grep -q 'Number of interfaces in file: 1'"
fields "$WORK/up.pcapng" echo.data >"$WORK/up.payloads"
python3 - "$WORK/up.payloads" >"$WORK/up.seqs" <<'PY'
import sys
seqs = [int.from_bytes(bytes.fromhex(l.strip()[:16]), "little") for l in open(sys.argv[1]) if l.strip()]
gaps = sum(1 for a, b in zip(seqs, seqs[1:]) if b != a + 1)
print(len(seqs), len(set(seqs)), gaps, seqs[0] if seqs else -1, seqs[-1] if seqs else -1)
PY
read -r n_seqs n_unique n_gaps first_seq last_seq <"$WORK/up.seqs"
echo "  replies $first_seq..$last_seq: $n_seqs frames, $n_unique distinct, $n_gaps gap(s)"
check "... each frame once, none missing: consecutive sequence numbers across the hand-over" \
  bash -c "[ '$n_seqs' = '$total' ] && [ '$n_unique' = '$total' ] && [ '$n_gaps' = 0 ]"
fields "$WORK/up.pcapng" frame.time_epoch >"$WORK/up.times"
{ sort -c -g "$WORK/up.times" 2>&1 || true; } | { grep -o "times:[0-9]*" || true; } | cut -d: -f2 | while read -r n; do
  echo "  out of order at frame $n of $total:"; sed -n "$((n - 2)),$((n + 1))p" "$WORK/up.times"
done
check "... in time order" bash -c "[ \$(wc -l <'$WORK/up.times') = $total ] && sort -c -g '$WORK/up.times'"
# The statistics block (pcapng ISB: isb_ifrecv, isb_filteraccept, isb_osdrop, isb_usrdeliv).
python3 - "$WORK/up.pcapng" >"$WORK/up.isb" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
i = 0
while i + 12 <= len(d):
    kind, length = struct.unpack_from("<II", d, i)
    if kind == 5:
        o, got = i + 20, {}
        while o + 4 <= i + length - 4:
            code, n = struct.unpack_from("<HH", d, o)
            if code == 0:
                break
            if code in (4, 6, 7, 8):
                got[code] = struct.unpack_from("<Q", d, o + 4)[0]
            o += 4 + (n + 3) // 4 * 4
        print(got.get(4), got.get(6), got.get(7), got.get(8))
    i += length
PY
echo "  statistics block (received, accepted, dropped, delivered): $(cat "$WORK/up.isb")"
check "... and one statistics block with both snapds' figures" \
  [ "$(cat "$WORK/up.isb")" = "$seen $seen 0 $total" ]
check "... and the new snapd's event log says it went on" \
  bash -c "ctl events | grep -q 'capture .*port app1 .*goes on after the upgrade'"

# A reader stuck through an upgrade: snapctl stopped (SIGSTOP) while snapd upgrades.
cp "$SNAPD" "$WORK/snapd-new2"
start stuck "$SNAPCTL" --socket="$RUN/control.sock" capture --port=app2 --duration=120 --output="$WORK/stuck.pcapng"
wait_for 10 "the capture of app2 running" \
  bash -c "ctl events | grep -q 'capture .*port app2 .*started' && [ -s '$WORK/stuck.pcapng' ]"
kill -STOP "$PID_stuck"
check "a live upgrade while the capture's reader is stopped" \
  bash -c "CTL_TIMEOUT_S=60 ctl upgrade --binary='$WORK/snapd-new2' >'$WORK/stuck_upgrade.log' 2>&1"
wait_for 60 "the new snapd ending the capture no one took up" \
  bash -c "ctl events | grep -q 'capture .*port app2 .*not taken up within 30 s'" || true
ctl events | grep "capture .*port app2 .*not taken up" | sed 's/^/  /' || true
check "the new snapd ended the carried capture no one took up, and says so" \
  bash -c "ctl events | grep -q 'capture .*port app2 .*ended: carried by the upgrade, not taken up within 30 s of it; [0-9]* frame(s) taken since were not read, [0-9]* dropped in all as its ring was full'"
check "... and the port is free for the next capture" \
  bash -c "ctl capture --port=app2 --count=5 --output='$WORK/after_stuck.pcapng' 2>/dev/null"
kill -CONT "$PID_stuck"
wait_for 30 "the stuck snapctl ending" bash -c "! kill -0 $PID_stuck 2>/dev/null" || true
stuck_rc=0
kill -0 "$PID_stuck" 2>/dev/null || wait "$PID_stuck" || stuck_rc=$?
sed 's/^/  /' "$WORK/stuck.log"
check "snapctl, let go on, says the capture broke off (not that it was interrupted), and fails ($stuck_rc)" \
  bash -c "grep -q '^snapctl: the capture broke off: ' '$WORK/stuck.log' && ! grep -q interrupted '$WORK/stuck.log' && [ $stuck_rc = 1 ]"
finish
