#!/usr/bin/env bash
# Apps on one vswitch, and what isolates them:
#  - app 3 (snap_traffic) exchanges 50000 sequenced UDP datagrams with app 1 (udp_echo): none lost;
#  - app 2 (udp_echo, a bystander) receives none of that unicast;
#  - app 4 sends with app 1's MAC (memif_traffic's raw frames), app 5 with app 1's IP address: every
#    such frame is dropped and counted as spoofed, and app 1 sees none of them;
#  - an unknown id and a wrong secret are refused with the reason; a killed app is detached.
source "$(dirname "$0")/lib.sh"
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
RAW=$(bin tools/memif_traffic)
SOCK="$RUN/memif.sock"

start_snapd "$SNAPD" \
  --app=id=1,mac=02:00:00:00:79:01,ip=10.79.0.1 --app=id=2,mac=02:00:00:00:79:02,ip=10.79.0.2 \
  --app=id=3,mac=02:00:00:00:79:03,ip=10.79.0.3 --app=id=4,mac=02:00:00:00:79:04,ip=10.79.0.4 \
  --app=id=5,mac=02:00:00:00:79:05,ip=10.79.0.5,secret=s3cret
# A second snapd on the same sockets, a bad flag, a bad config: one clear line, non-zero exit.
one_line_failure() {  # EXPECTED-TEXT COMMAND...
  local want=$1; shift
  local out status=0
  out=$("$@" 2>&1) || status=$?
  [ "$status" -ne 0 ] && [ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] && [[ "$out" == *"$want"* ]]
}
check "a second snapd exits with one line" \
  one_line_failure "another snapd is already serving $SOCK" "$SNAPD" --run_dir="$RUN"
check "--help documents every flag" bash -c "out=\$('$SNAPD' --help 2>&1); for f in config nic app run_dir memif_socket control_socket control_group mode cores stats_interval_s; do grep -q -- \"--\$f \" <<<\"\$out\" || exit 1; done"
check "a bad flag gives one line" one_line_failure "Unknown command line flag 'bogus'" "$SNAPD" --bogus
echo 'engines { name: "a" kind: "router" }' >"$WORK/bad.conf"
check "a bad config gives one line" \
  one_line_failure "unknown engine kind 'router'" "$SNAPD" --config="$WORK/bad.conf" --run_dir="$WORK/other"
check "a bad --app gives one line" \
  one_line_failure "'zz' is not a MAC" "$SNAPD" --app=id=1,mac=zz,ip=1.2.3.4 --run_dir="$WORK/other"

start echo1 "$UDP_ECHO" --socket="$SOCK" --id=1
start echo2 "$UDP_ECHO" --socket="$SOCK" --id=2
wait_for 10 "both echoes attached" bash -c "grep -q attached '$WORK/echo1.log' && grep -q attached '$WORK/echo2.log'"

"$TRAFFIC" --socket="$SOCK" --id=3 --dst_ip=10.79.0.1 --frames=50000 --window=64 >"$WORK/t3.log" 2>&1 || true
cat "$WORK/t3.log"
check "app 3 got all 50000 datagrams back from app 1" grep -q "sent=50000 received=50000 lost=0 repeated=0 reordered=0" "$WORK/t3.log"

# memif_traffic's frames come from 02:00:00:00:00:01, not app 4's MAC.
"$RAW" --socket="$SOCK" --id=4 --frames=100 --window=100 --timeout_s=1 >"$WORK/t4.log" 2>&1 || true
check "app 4's frames with a foreign MAC never came back" grep -q "received=0" "$WORK/t4.log"
"$TRAFFIC" --socket="$SOCK" --id=5 --secret=s3cret --dst_ip=10.79.0.1 --dst_mac=02:00:00:00:79:01 \
  --src_ip=10.79.0.2 --frames=100 --window=100 --timeout_s=1 >"$WORK/t5.log" 2>&1 || true
check "app 5's frames with app 2's address never came back" grep -q "received=0" "$WORK/t5.log"

kill -TERM "$PID_echo1"
wait_for 10 "app 1 reported" grep -q "udp=" "$WORK/echo1.log"
check "app 1 echoed exactly app 3's 50000 datagrams, none of the spoofed ones" \
  grep -q "icmp=0 udp=50000 " "$WORK/echo1.log"

"$TRAFFIC" --socket="$SOCK" --id=9 --dst_ip=10.79.0.1 >"$WORK/t9.log" 2>&1 || true
check "an unknown id is refused with the reason" grep -q "unknown interface id 9" "$WORK/t9.log"
"$TRAFFIC" --socket="$SOCK" --id=5 --secret=wrong --dst_ip=10.79.0.1 >"$WORK/t5b.log" 2>&1 || true
check "a wrong secret is refused with the reason" grep -q "incorrect secret" "$WORK/t5b.log"

# A killed app is detached and the others go on.
start victim "$TRAFFIC" --socket="$SOCK" --id=3 --dst_ip=10.79.0.1 --dst_mac=02:00:00:00:79:01 \
  --frames=1000000000 --window=16 --timeout_s=60
attached_twice() { [ "$(grep -c 'app 3 .* attached' "$WORK/snapd.log")" -eq 2 ]; }
wait_for 10 "victim attached" attached_twice
kill -9 "$PID_victim"
detached_twice() { [ "$(grep -c 'app 3 detached' "$WORK/snapd.log")" -eq 2 ]; }
check "a killed app is detached" wait_for 10 "victim detached" detached_twice

kill -TERM "$PID_echo2"

wait_for 10 "app 2 reported" grep -q "udp=" "$WORK/echo2.log"
check "app 2 received none of the unicast between apps 3 and 1" grep -q "icmp=0 udp=0" "$WORK/echo2.log"
spoofed_at_least() {
  kill -USR1 "$PID_snapd"
  sleep 0.1
  [ "$(stat_of "$WORK/snapd.log" app4 6)" -ge 100 ] && [ "$(stat_of "$WORK/snapd.log" app5 6)" -ge 100 ]
}
# The stats table lists ports still attached; keep apps 4 and 5 attached for it.
start holder4 "$RAW" --socket="$SOCK" --id=4 --frames=100 --window=100 --timeout_s=30
start holder5 "$TRAFFIC" --socket="$SOCK" --id=5 --secret=s3cret --dst_ip=10.79.0.1 \
  --dst_mac=02:00:00:00:79:01 --src_ip=10.79.0.2 --frames=100 --window=100 --timeout_s=30
check "snapd counted every spoofed frame" wait_for 10 "spoofed counters" spoofed_at_least
finish
