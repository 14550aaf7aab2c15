#!/usr/bin/env bash
# A snapd that dies with no service manager to keep its apps' connections (snapd_systemd_test has
# the one that keeps them): libsnap's apps attach again on their own.
#  - kill -9 of snapd: udp_echo says snapd went away without a word and keeps trying (it does not
#    exit); a snapd started again is attached to again, and traffic through it to udp_echo is clean;
#  - an orderly stop: udp_echo is told and exits, without trying again.
source "$(dirname "$0")/lib.sh"
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
SOCK="$RUN/memif.sock"
APPS=(--app=id=1,mac=02:00:00:00:86:01,ip=10.86.0.1 --app=id=2,mac=02:00:00:00:86:02,ip=10.86.0.2)

start_snapd "$SNAPD" "${APPS[@]}"
start echo "$UDP_ECHO" --socket="$SOCK" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"
exchange() {  # clean traffic between app 2 and udp_echo
  "$TRAFFIC" --socket="$SOCK" --id=2 --dst_ip=10.86.0.1 --frames=2000 --window=8 >"$WORK/traffic.log" 2>&1 &&
    grep -q "lost=0 repeated=0 reordered=0" "$WORK/traffic.log"
}
check "traffic with udp_echo before the crash" exchange

kill -9 "$PID_snapd"
wait "$PID_snapd" 2>/dev/null || true
check "udp_echo saw snapd go away without a word" \
  wait_for 10 "udp_echo noticing" grep -q "snapd went away without a word" "$WORK/echo.log"
sleep 0.7  # a while without snapd: udp_echo backs off between tries
check "udp_echo waits for snapd instead of exiting" kill -0 "$PID_echo"

start_snapd "$SNAPD" "${APPS[@]}"
check "udp_echo attached again on its own" \
  wait_for 10 "udp_echo attached again" grep -q "attached again to snapd" "$WORK/echo.log"
grep "libsnap:" "$WORK/echo.log" | sed 's/^/  /'
check "the new snapd counts udp_echo attached" bash -c "ctl apps | grep -q '^ *1 .* yes '"
check "traffic with udp_echo after the crash" exchange

kill -TERM "$PID_snapd"
check "an orderly stop: udp_echo is told and exits" \
  wait_for 10 "udp_echo exiting" bash -c "! kill -0 $PID_echo 2>/dev/null"
check "... with snapd's reason, and without trying again" \
  bash -c "grep -q 'detached: server disconnected: .*shutting down' '$WORK/echo.log' && [ \$(grep -c 'attaching again' '$WORK/echo.log') -eq 1 ]"
finish
