#!/usr/bin/env bash
# Transparent upgrade under traffic. snapd drives a veth (af_packet) into a namespace and runs two
# engines: a vswitch serving two apps (snap_traffic exchanges sequenced UDP with udp_echo, and the
# namespace pings udp_echo through the NIC), and an echo engine that memif_traffic streams
# sequenced frames through. Then:
#  - 20 upgrades in a row, alternating two copies of the binary (five of them with the engines on
#    dedicated workers, five moving the NIC as a PCI device must): every app frame comes back, in
#    order; no app is ever detached; the NIC path's losses (ping) are counted and reported;
#  - the new snapd dies (SIGKILL) during brownout, during a blackout, after half the engines moved,
#    and in the middle of publishing a batch; an incompatible upgrade protocol version is refused before anything moves; each
#    time the old snapd goes on serving everything, and a last upgrade then succeeds.
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
MEMIF_TRAFFIC=$(bin tools/memif_traffic)
tag=$$
NS="snapd-up-$tag"
make_host "$NS" "up${tag}h" "up${tag}n" 10.84.0.100/24
cp "$SNAPD" "$WORK/snapd-a"
cp "$SNAPD" "$WORK/snapd-b"
RUN="$RUN"
export CTL_TIMEOUT_S=60
pid_of_snapd() { ctl --json info | ctl_json 'd["pid"]'; }

start_snapd "$WORK/snapd-a" --nic="net_af_packet0,iface=up${tag}h" \
  --app=id=1,mac=02:00:00:00:84:01,ip=10.84.0.1 --app=id=2,mac=02:00:00:00:84:02,ip=10.84.0.2
start echo "$UDP_ECHO" --socket="$RUN/memif.sock" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"
ctl engine create echo1 echo >/dev/null
ctl app add 3 --mac=02:00:00:00:84:03 --ip=10.84.0.3 --engine=echo1 >/dev/null
# stream: sequenced frames through the echo engine for the whole run, both sections.
stream() { start "$1" "$MEMIF_TRAFFIC" --socket="$RUN/memif.sock" --id=3 --frames=1000000000 \
  --window=16 --duration_s="$2" --timeout_s=40; }

# --- 20 upgrades under traffic --------------------------------------------------------------
start traffic "$TRAFFIC" --socket="$RUN/memif.sock" --id=2 --dst_ip=10.84.0.1 --frames=1000000000 \
  --window=16 --duration_s=25 --timeout_s=30
stream stream 25
start ping ip netns exec "$NS" ping -i 0.02 -w 24 10.84.0.1
wait_for 10 "traffic flowing" grep -q "attached to vswitch0 as 02:00:00:00:84:02" "$WORK/snapd.log"
engine_frames() { ctl --json engines | ctl_json 'd["engines"][0]["stats"].get("frames", 0)'; }
ok=0
for i in $(seq 1 20); do
  bin_i=$([ $((i % 2)) -eq 1 ] && echo snapd-b || echo snapd-a)
  # Every 5th moves the NIC as a PCI device must: closed by the old snapd, opened by the new one,
  # in the first blackout.
  extra=$([ $((i % 5)) -eq 0 ] && echo --new_args=--upgrade_defer_nics || true)
  # Upgrades 11-15 run the engines on dedicated (spinning, pinned) workers: the mode moves too.
  [ "$i" -eq 11 ] && ctl mode default dedicated --cores=0,1 >/dev/null
  [ "$i" -eq 16 ] && mode_kept=$(ctl --json groups | ctl_json 'd["groups"][0]["mode"]') &&
    ctl mode default spreading --cores= >/dev/null
  if ctl upgrade --binary="$WORK/$bin_i" $extra >"$WORK/upgrade-$i.log" 2>&1; then
    ok=$((ok + 1))
  else
    cat "$WORK/upgrade-$i.log"
  fi
  [ "$i" -eq 1 ] && fds_first=$(ls "/proc/$(pid_of_snapd)/fd" | wc -l)
done
check "20 upgrades in a row succeeded" [ "$ok" -eq 20 ]
check "the group's mode moved with each upgrade (dedicated after the 15th: $mode_kept)" [ "$mode_kept" = dedicated ]
check "snapctl info keeps the last upgrade's report: both engines, from the snapd before" json_check \
  '(sorted(m["name"] for m in d["last_upgrade"]["engines"]) == ["echo1", "vswitch0"]
    and d["last_upgrade"]["new_pid"] == d["pid"] and d["last_upgrade"]["old_pid"] == d["previous_pid"]
    and int(d["last_upgrade"]["finished_unix_ms"]) > 0)' < <(ctl --json info)
check "and shows it" bash -c "ctl info | grep -q '^last upgrade .*from pid [0-9]*, brownout [0-9]* us, worst blackout [0-9]* us ('"
fds_last=$(ls "/proc/$(pid_of_snapd)/fd" | wc -l)
check "no fd of an old snapd lives on in the new one ($fds_first open after the 1st upgrade, $fds_last after the 20th)" \
  [ "$fds_last" -le "$fds_first" ]
for e in vswitch0 echo1; do
  grep -h "^$e " "$WORK"/upgrade-*.log | awk '{print $2}' | sort -n | tr '\n' ' ' | sed "s/^/$e blackouts (us): /"; echo
  check "$e moved in each of the 20 upgrades" [ "$(cat "$WORK"/upgrade-*.log | grep -c "^$e ")" -eq 20 ]
done
wait "$PID_traffic" || true
wait "$PID_stream" || true
cat "$WORK/traffic.log" "$WORK/stream.log"
check "every app frame came back, in order, through 20 upgrades (vswitch)" \
  grep -q "lost=0 repeated=0 reordered=0 corrupt=0 seconds" "$WORK/traffic.log"
check "every frame came back, in order, through 20 upgrades (echo)" \
  grep -q "lost=0 repeated=0 reordered=0 corrupt=0 seconds" "$WORK/stream.log"
# Each datagram crosses the vswitch twice (to udp_echo and back): only counters carried across all
# 20 upgrades can add up to that.
received=$(grep -o "received=[0-9]*" "$WORK/traffic.log" | head -1 | cut -d= -f2)
check "the new snapd's counters continue the old ones (engine frames >= 2 x $received)" \
  [ "$(engine_frames)" -ge $((2 * received)) ]
check "no app was detached by the upgrades (apps 2 and 3 left once, at the end of their runs)" \
  bash -c "[ \$(grep -c 'app 2 detached' '$WORK/snapd.log') -eq 1 ] && [ \$(grep -c 'app 3 detached' '$WORK/snapd.log') -eq 1 ] && ! grep -q 'app 1 detached' '$WORK/snapd.log'"
check "udp_echo was never told to go" bash -c "! grep -q detached '$WORK/echo.log'"
wait "$PID_ping" || true
loss=$(grep -o "[0-9.]*% packet loss" "$WORK/ping.log" || echo "?")
echo "NIC path (ping through af_packet) across the upgrades: $(grep -o '[0-9]* packets transmitted, [0-9]* received' "$WORK/ping.log"), $loss"
check "the NIC path carried the pings across the upgrades" grep -q " [1-9][0-9]* received" "$WORK/ping.log"

# --- failures -------------------------------------------------------------------------------
# Long enough to outlast the faults before "publish" on a loaded machine: that one needs batches
# (traffic) in its new snapd's first 5 s, or the upgrade just succeeds.
start traffic2 "$TRAFFIC" --socket="$RUN/memif.sock" --id=2 --dst_ip=10.84.0.1 --frames=1000000000 \
  --window=16 --duration_s=30 --timeout_s=40
stream stream2 30
before=$(pid_of_snapd)
# "error": the new snapd fails the first move with an error, and says so. "half" twice: each kill lands at a random point of the new snapd's batches; the second time with
# the NIC moving in the first blackout, which the old snapd must then open again. "publish" dies in a
# worker with a batch's frames passed on but their slots not given back: the old snapd must
# complete that batch from the cursor journal, or the app would get it twice.
for fault in brownout blackout half half,--upgrade_defer_nics publish error; do
  out=$(ctl upgrade --binary="$WORK/snapd-b" --new_args=--upgrade_fault=$fault 2>&1) && status=0 || status=$?
  echo "  $fault: $out"
  check "a new snapd that dies or fails in $fault fails the upgrade, naming the phase" \
    bash -c "[ $status -ne 0 ] && [[ \"$out\" == *'upgrade failed during'* ]]"
  check "the old snapd goes on serving after the $fault failure" [ "$(pid_of_snapd)" = "$before" ]
done
check "a new snapd that fails says why, and the old one passes it on" \
  bash -c "[[ \"\$1\" == *'failed in blackout of vswitch0: refusing the move (--upgrade_fault=error)'* ]]" _ "$out"
check "the NIC path works after the failures (the old snapd reopened the NIC it had closed)" \
  ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 10.84.0.1
out=$(ctl upgrade --binary="$WORK/snapd-b" --new_args=--upgrade_version=99 2>&1) && status=0 || status=$?
echo "  incompatible: $out"
check "an incompatible upgrade protocol version is refused before anything moves" \
  bash -c "[ $status -ne 0 ] && [[ \"$out\" == *'FAILED_PRECONDITION'*'incompatible upgrade protocol version 99'* ]]"
check "an unknown engine in the order is refused" bash -c "ctl upgrade --binary='$WORK/snapd-b' --engines=nope 2>&1 | grep -q \"INVALID_ARGUMENT: engines: no engine named 'nope'\""
check "a missing binary is refused" bash -c "! ctl upgrade --binary=/nonexistent 2>&1 | grep -q upgraded"
wait "$PID_traffic2" || true
wait "$PID_stream2" || true
cat "$WORK/traffic2.log" "$WORK/stream2.log"
# A new snapd killed while it serves the rings dies mid-batch; the old snapd completes the batch
# from the cursor journal (snapd/cursor_journal.h), so no frame is lost nor passed twice.
for log in traffic2 stream2; do
  check "no frame was lost, repeated or reordered through the failed upgrades ($log)" \
    grep -q "lost=0 repeated=0 reordered=0 corrupt=0 seconds" "$WORK/$log.log"
done
completed=$(grep -c 'published [0-9]* ring cursor' "$WORK/snapd.log" || true)
check "the old snapd completed the batch the new one died publishing ($completed from the journal)" \
  [ "$completed" -ge 1 ]
# --- a second upgrade while one runs ----------------------------------------------------------
# The first upgrade's new binary waits for a go file before it starts (30 s at most), so the second
# request certainly arrives while the first runs.
cat >"$WORK/snapd-gated" <<EOF
#!/bin/sh
touch "$WORK/gate.waiting"
for i in \$(seq 600); do [ -e "$WORK/gate.go" ] && break; sleep 0.05; done
exec "$WORK/snapd-b" "\$@"
EOF
chmod +x "$WORK/snapd-gated"
start upgrade1 "$SNAPCTL" --socket="$RUN/control.sock" --timeout_s=60 upgrade --binary="$WORK/snapd-gated"
wait_for 30 "the first upgrade to start its new binary" test -e "$WORK/gate.waiting"
out=$(ctl upgrade --binary="$WORK/snapd-b" 2>&1) && status=0 || status=$?
echo "  second upgrade while one runs: $out"
check "a second upgrade while one runs is refused" \
  bash -c "[ $status -ne 0 ] && [[ \"$out\" == *'FAILED_PRECONDITION'*'an upgrade is already running'* ]]"
check "snapd answers what only reads while the upgrade runs" bash -c "CTL_TIMEOUT_S=5; ctl info && ctl apps && ctl stats" 
out=$(ctl app add 9 --mac=02:00:00:00:84:09 --ip=10.84.0.9 2>&1) && status=0 || status=$?
echo "  a change while the upgrade runs: $out"
check "and refuses a change, saying why" \
  bash -c "[ $status -ne 0 ] && [[ \"$out\" == *'FAILED_PRECONDITION'*'an upgrade is running'* ]]"
touch "$WORK/gate.go"
wait "$PID_upgrade1" && status=0 || status=$?
check "and the first upgrade completes" bash -c "[ $status -eq 0 ] && grep -q upgraded '$WORK/upgrade1.log'"
# Counters carry over: every counter of every engine, port and NIC (workers are the process's
# own) is where the old snapd left it or beyond, after an upgrade that opens the NIC beside the
# old snapd and after one that moves it as a PCI device must.
counters() { ctl --json stats | ctl_json '[(kind + "/" + o["name"] + "/" + k, v)
  for kind in ("engines", "ports", "nics") for o in d.get(kind, [])
  for k, v in {**o.get("stats", {}), **o}.items() if isinstance(v, (int, str)) and str(v).isdigit()]'; }
counters_continue() {  # BEFORE AFTER: each counter in BEFORE is in AFTER, no smaller
  awk 'NR == FNR { before[$1] = $2; next } { after[$1] = $2 }
       END { bad = 0; for (k in before) if (!(k in after) || after[k] + 0 < before[k] + 0) {
               print "  " k ": " before[k] " -> " (k in after ? after[k] : "missing"); bad = 1 }
             exit bad }' "$1" "$2"
}
counters >"$WORK/counters-0"
check "a last upgrade after the failures succeeds" ctl upgrade --binary="$WORK/snapd-b"
counters >"$WORK/counters-1"
check "every engine, port and NIC counter continues across it ($(wc -l <"$WORK/counters-0") counters)" \
  counters_continue "$WORK/counters-0" "$WORK/counters-1"
check "and across one that moves the NIC in the blackout" \
  ctl upgrade --binary="$WORK/snapd-a" --new_args=--upgrade_defer_nics
counters >"$WORK/counters-2"
check "every engine, port and NIC counter continues across that one too" \
  counters_continue "$WORK/counters-1" "$WORK/counters-2"
check "and the new snapd serves the apps it kept" bash -c "ctl apps | grep -qE '^ +1 .* yes '"
finish
