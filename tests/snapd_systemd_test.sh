#!/usr/bin/env bash
# snapd under a real systemd (Debian's systemd 252 as PID 1 of private namespaces, booted by
# tests/systemd.sh into a unit set of its own), running snapd/snapd.service as shipped (only its
# paths changed):
#  - start: active only once snapd said READY=1;
#  - kill -9 of snapd under traffic between two apps: systemd restarts it, it takes the apps back
#    from the fd store, neither app is disconnected and the traffic goes on; a crash loop (a kill
#    soon after a restart) drops what waited in the rings and keeps the apps; a restart that
#    finds the config file broken serves the checkpoint;
#  - systemctl reload: a live upgrade, the main pid handed to the new snapd, the unit active;
#  - a hung main loop (SIGSTOP): the watchdog kills it, it is restarted, the apps kept;
#  - stop: the apps are told, the unit inactive;
#  - the host's /tmp was left alone and systemd is gone at the end, also on failure (with the
#    cgroups it made).
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
cp "$SNAPD" "$WORK/snapd"
cp "$SNAPCTL" "$WORK/snapctl"
marker=$(mktemp /tmp/snapd-systemd-test-marker.XXXXXX)

cat >"$WORK/snapd.textproto" <<EOF
run_dir: "$RUN"
apps { id: 1 mac: "02:00:00:00:85:01" ipv4: "10.85.0.1" }
apps { id: 2 mac: "02:00:00:00:85:02" ipv4: "10.85.0.2" }
EOF
source "$(dirname "$0")/systemd.sh"
snapd_unit "$WORK" "$RUN" -e "s|^WatchdogSec=.*|WatchdogSec=3s|" \
  -e "s|^ExecStart=.*|& --crash_loop_window_ms=5000|" >"$WORK/snapd.service"
trap 'kill_systemd; cleanup; _cleanup_net; rm -f "$marker"' EXIT
boot_systemd "$WORK" "$WORK/snapd.service"
main_pid() { ns systemctl show -p MainPID --value snapd; }
unit_active() { [ "$(ns systemctl is-active snapd)" = active ]; }
# A snapd other than $1 is the service's main process, and the unit is active.
serving_after() { local p; p=$(main_pid); [ "$p" != 0 ] && [ "$p" != "$1" ] && unit_active; }

ns systemctl start snapd
running=$(ns systemctl list-units --type=service --state=active --no-legend --plain | awk '{print $1}' | sort | tr '\n' ' ')
check "nothing of the host's runs in there, only journald and snapd ($running)" \
  [ "$running" = "snapd.service systemd-journald.service " ]
check "snapd.service is active once started (Type=notify: READY=1)" unit_active
start echo "$UDP_ECHO" --socket="$RUN/memif.sock" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"
start traffic "$TRAFFIC" --socket="$RUN/memif.sock" --id=2 --dst_ip=10.85.0.1 \
  --frames=1000000000 --window=16 --duration_s=20 --timeout_s=15 --lost_after_ms=1000

# --- kill -9 -------------------------------------------------------------------------------
# Three kills: the first a while after the start; the second right after the first restart, a
# crash loop (the unit's window is 5 s here, so that a slow machine still lands inside it): the
# next snapd drops the frames waiting in the apps' rings (one might be what kills snapd) and keeps
# the apps; the third after the window, with the config file broken meanwhile: that restart
# serves the dead snapd's checkpoint, and is no crash loop.
journal_count() { ns journalctl -u snapd --no-pager 2>/dev/null | grep -c "$1" || true; }
kill_and_wait() {
  local old
  old=$(main_pid)
  ns kill -9 "$old"
  wait_for 10 "a new snapd serving after killing $old" serving_after "$old"
}
sleep 1.5
kill_and_wait
kill_and_wait
check "a snapd restarted in a crash loop says so and drops what waited in the rings" \
  [ "$(journal_count "died soon after taking its apps back")" = 1 ]
ctl --json stats | ctl_json 'd.get("apps_frames_discarded", 0)' | sed 's/^/  ring slots dropped: /'
sleep 6
cp "$WORK/snapd.textproto" "$WORK/snapd.textproto.good"
echo "not a field {" >>"$WORK/snapd.textproto"
kill_and_wait
mv "$WORK/snapd.textproto.good" "$WORK/snapd.textproto"
check "a restart with a broken config file served the dead snapd's checkpoint" \
  [ "$(journal_count "the config file is not usable")" = 1 ]
check "... and was no crash loop (it came after the window)" \
  [ "$(journal_count "died soon after taking its apps back")" = 1 ]
check "snapctl info counts 3 restarts" \
  json_check "d.get('restarts') == 3" < <(ctl --json info)
check "both apps are still attached" bash -c "[ \"\$(ctl apps | grep -c ' yes ')\" = 2 ]"

# --- reload = live upgrade ------------------------------------------------------------------
old=$(main_pid)
cp "$SNAPD" "$WORK/snapd.new" && mv "$WORK/snapd.new" "$WORK/snapd"
check "systemctl reload (a live upgrade) succeeds" ns systemctl reload snapd
new=$(main_pid)
check "systemd follows the service to the new snapd ($old -> $new)" [ "$new" != "$old" ]
check "the unit stays active" unit_active

# --- a hung main loop: the watchdog ---------------------------------------------------------
old=$(main_pid)
# The same process as seen from here: the namespace numbers its pids its own way (NSpid: ours, its).
host_pid() {
  local p
  for p in $(pgrep -f "$WORK/snapd"); do
    awk -v want="$1" '/^NSpid:/ { if (NF == 3 && $3 == want) found = 1 } END { exit !found }' \
      "/proc/$p/status" 2>/dev/null && echo "$p"
  done | head -1
}
hung=$(host_pid "$old")
check "found snapd's pid $old here ($hung)" [ -n "$hung" ]
kill -STOP "$hung"
wait_for 20 "the watchdog restarting snapd" \
  serving_after "$old"
check "the restart after the watchdog kept the apps too (4 restarts in all)" \
  json_check "d.get('restarts') == 4" < <(ctl --json info)

wait "$PID_traffic" || true
cat "$WORK/traffic.log"
check "the traffic went on to the end (not timed out)" bash -c "! grep -q TIMED-OUT '$WORK/traffic.log'"
check "neither app was detached" bash -c "! grep -qi 'disconnect\\|detached' '$WORK/echo.log'"

# --- stop -----------------------------------------------------------------------------------
ns systemctl stop snapd
state=$(ns systemctl is-active snapd || true)
check "stopped, the unit is inactive ($state)" [ "$state" = inactive ]
wait_for 10 "udp_echo told" grep -q "server shutting down" "$WORK/echo.log"
ns journalctl -u snapd --no-pager | grep -E "restarted|took over|fd store|dropped" | sed 's/^/  /'
kill_systemd
check "the host's /tmp was left alone" test -e "$marker"
check "no cgroup of that systemd is left on the host" bash -c "! [ -s '$WORK/cgroups.new' ]"
finish
