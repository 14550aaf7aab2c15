#!/usr/bin/env bash
# Scheduling modes, live:
#  - the default group goes dedicated -> spreading -> compacting -> dedicated -> spreading while
#    two apps exchange sequenced UDP through the vswitch: no frame lost, none reordered;
#  - an idle snapd uses < 2% of a core in spreading and in compacting mode; in dedicated mode the
#    engine's core is busy;
#  - compacting: a load step on one engine scales it out to a worker of its own; without the load
#    the group packs back onto one worker.
source "$(dirname "$0")/lib.sh"
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
RUN="$RUN"

start_snapd "$SNAPD" --app=id=1,mac=02:00:00:00:81:01,ip=10.81.0.1 \
  --app=id=2,mac=02:00:00:00:81:02,ip=10.81.0.2
start echo "$UDP_ECHO" --socket="$RUN/memif.sock" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"

engine_frames() { ctl --json engines | ctl_json 'd["engines"][0]["stats"].get("frames", 0)'; }
frames_past() { [ "$(engine_frames)" -gt "$1" ]; }

# 1. Modes switched under traffic.
start traffic "$TRAFFIC" --socket="$RUN/memif.sock" --id=2 --dst_ip=10.81.0.1 --frames=3000000 \
  --window=32 --timeout_s=30
seen=0
for mode in "dedicated --cores=1" spreading compacting "dedicated --cores=1" "spreading --cores="; do
  wait_for 30 "traffic flowing" frames_past $((seen + 100000))
  seen=$(engine_frames)
  # shellcheck disable=SC2086
  ctl mode default $mode
done
wait "$PID_traffic" || true
cat "$WORK/traffic.log"
check "3000000 datagrams through five live mode changes, none lost or reordered" \
  grep -q "sent=3000000 received=3000000 lost=0 repeated=0 reordered=0 corrupt=0" "$WORK/traffic.log"

# 2. CPU: snapd's share of a core over windows of 1.5 s, all threads, from the scheduler's accounting
# (/proc/PID/task/*/schedstat, in ns: /proc/PID/stat counts clock ticks, which over-charge a thread
# that wakes on a timer, since it is running when the tick samples).
cpu_ns() { cat /proc/$PID_snapd/task/*/schedstat 2>/dev/null | awk '{ns += $1} END {printf "%.0f", ns}'; }
cpu_percent() {  # over 1.5 s
  local t0 t1
  t0=$(cpu_ns)
  sleep 1.5
  t1=$(cpu_ns)
  echo $(( (t1 - t0) * 100 / 1500000000 ))
}
# Other work on the machine can only add to what a window measures: idle takes the least of three,
# busy the most.
least_of_3() { printf '%s\n' "$(cpu_percent)" "$(cpu_percent)" "$(cpu_percent)" | sort -n | head -1; }
most_of_3() { printf '%s\n' "$(cpu_percent)" "$(cpu_percent)" "$(cpu_percent)" | sort -n | tail -1; }
ctl mode default spreading --cores= >/dev/null
sleep 0.5
idle_spreading=$(least_of_3)
ctl mode default compacting >/dev/null
sleep 0.5
idle_compacting=$(least_of_3)
ctl mode default dedicated --cores=1 >/dev/null
sleep 0.5
busy_dedicated=$(most_of_3)
echo "snapd CPU: idle spreading ${idle_spreading}%, idle compacting ${idle_compacting}%, dedicated ${busy_dedicated}%"
check "idle in spreading mode: under 2% of a core" [ "$idle_spreading" -lt 2 ]
check "idle in compacting mode: under 2% of a core" [ "$idle_compacting" -lt 2 ]
check "dedicated mode keeps its core busy" [ "$busy_dedicated" -ge 80 ]

# 3. Compacting: two engines, a load step on one.
ctl mode default compacting --cores= --slo=20us >/dev/null
ctl engine create quiet echo >/dev/null
workers() { ctl --json groups | ctl_json 'tuple(find(d["groups"], name="default").get(k, 0) for k in ("workers", "scale_outs", "scale_ins"))'; }
workers_are() { [ "$(workers | cut -d' ' -f1)" -eq "$1" ]; }
check "idle: both engines packed on one worker" wait_for 10 "one worker" workers_are 1
start load "$TRAFFIC" --socket="$RUN/memif.sock" --id=2 --dst_ip=10.81.0.1 --frames=50000000 \
  --window=256 --poll --timeout_s=30
check "a load step scales the loaded engine out" wait_for 20 "two workers" workers_are 2
kill "$PID_load"
check "without the load the group packs back in" wait_for 20 "one worker again" workers_are 1
read -r _ outs ins <<<"$(workers)"
echo "compacting: scale_outs=$outs scale_ins=$ins"
grep "rebalanced" "$WORK/snapd.log" | tail -4
check "the rebalances were counted" [ "$outs" -ge 1 -a "$ins" -ge 1 ]
finish
