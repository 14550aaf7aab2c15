#!/usr/bin/env bash
# snapd's crash survival with a supervisor that is not systemd: tests/supervisor.py speaks the
# protocol docs/operations.md describes ($NOTIFY_SOCKET, FDSTORE=1, $LISTEN_FDS) and nothing more.
#  - kill -9 of snapd under traffic between two apps, twice: the supervisor starts it again with
#    the fds it kept, no app is disconnected or attaches again, the traffic loses nothing;
#  - the restarted snapd counts the restarts; an app that quits while snapd is dead is dropped
#    from the store (its socket hung up) and the restarted snapd serves the other;
#  - a clean stop empties the store and ends the supervisor.
source "$(dirname "$0")/lib.sh"
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
SOCK="$RUN/memif.sock"
cp "$SNAPD" "$WORK/snapd"  # the harness kills what runs from $WORK, also on failure

start supervisor python3 "$(dirname "$0")/supervisor.py" "$WORK/notify.sock" "$WORK/supervised" -- \
  "$WORK/snapd" --run_dir="$RUN" --app=id=1,mac=02:00:00:00:87:01,ip=10.87.0.1 \
  --app=id=2,mac=02:00:00:00:87:02,ip=10.87.0.2 --app=id=3,mac=02:00:00:00:87:03,ip=10.87.0.3
supervisor=${_pids[-1]}
wait_for 30 "snapd ready" grep -q "READY=1" "$WORK/supervised"
snapd_pid() { ctl --json info | ctl_json 'd["pid"]'; }
start echo "$UDP_ECHO" --socket="$SOCK" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"
start traffic "$TRAFFIC" --socket="$SOCK" --id=2 --dst_ip=10.87.0.1 --frames=1000000000 \
  --window=16 --duration_s=8 --timeout_s=15 --lost_after_ms=1000
start quitter "$UDP_ECHO" --socket="$SOCK" --id=3
wait_for 10 "the third app attached" grep -q attached "$WORK/quitter.log"

for i in 1 2; do
  sleep 1.5
  old=$(snapd_pid)
  kill -9 "$old"
  if [ "$i" = 2 ]; then
    # While no snapd runs, app 3 quits: its socket hangs up in the supervisor's store.
    kill -9 "$(pgrep -f -- "--id=3$" | head -1)" 2>/dev/null || true
  fi
  wait_for 10 "snapd started again after kill $i" bash -c "ctl --json info >/dev/null 2>&1"
  check "a new snapd serves after kill $i" bash -c "[ \"\$(ctl --json info | ctl_json 'd[\"pid\"]')\" != $old ]"
done
check "snapctl info counts 2 restarts" json_check "d.get('restarts') == 2" < <(ctl --json info)
check "the supervisor dropped the third app's hung-up socket" \
  grep -q "dropped a hung-up fd of app3" "$WORK/supervised"
check "apps 1 and 2 are attached, 3 is not" \
  bash -c "ctl apps | grep -q '^ *1 .* yes ' && ctl apps | grep -q '^ *2 .* yes ' && ! ctl apps | grep -q '^ *3 .* yes '"
wait_for 30 "the traffic to end" grep -q "sent=" "$WORK/traffic.log"
cat "$WORK/traffic.log" | sed 's/^/  /'
check "the traffic lost nothing across two crashes" grep -q " lost=0 " "$WORK/traffic.log"
check "neither app noticed: none attached again or was detached" \
  bash -c "! grep -q 'attaching again\|detached\|went away' '$WORK/echo.log' '$WORK/traffic.log'"

kill -TERM "$(snapd_pid)"
wait_for 10 "the supervisor to end" bash -c "! kill -0 $supervisor 2>/dev/null"
check "a clean stop ends the supervisor" grep -q "snapd stopped cleanly" "$WORK/supervised"
sed 's/^/  supervisor: /' "$WORK/supervised"
finish
