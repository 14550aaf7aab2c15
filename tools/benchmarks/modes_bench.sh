#!/usr/bin/env bash
# modes_bench: snapd's scheduling modes measured end to end, run by `tools/bench modes`.
# An app (snap_traffic, spinning, pinned to core 0) ping-pongs 64-byte frames through an echo engine
# in group "bench" (its workers pinned to core 1); for each mode (dedicated, spreading, compacting)
# it reports the round
# trip p50/p99 and snapd's CPU during the ping-pong; snapd's CPU at idle in each mode; and for
# compacting, the time from a load step (a second app flooding) to the scale-out.
# Ends with:
#   modes dedicated_p50_ns=<n> spreading_p50_ns=<n> compacting_p50_ns=<n> idle_cpu_spreading=<percent> rebalance_ms=<n>
set -euo pipefail
source "$(dirname "$0")/../../tests/json.sh"  # ctl_json
bin=$1  # bazel-bin of the optimized build
SNAPD="$bin/snapd/snapd"
SNAPCTL="$bin/tools/snapctl"
TRAFFIC="$bin/clients/snap_traffic"
source "$(dirname "$0")/workdir.sh"
bench_workdir modes-bench
ctl() { "$SNAPCTL" --socket="$work/run/control.sock" "$@"; }

cat >"$work/snapd.conf" <<'CONF'
groups { name: "bench" mode: "spreading" }
engines { name: "vswitch0" kind: "vswitch" }
engines { name: "echo0" kind: "echo" group: "bench" }
apps { id: 1 mac: "02:00:00:00:82:01" ipv4: "10.82.0.1" engine: "echo0" }
apps { id: 2 mac: "02:00:00:00:82:02" ipv4: "10.82.0.2" engine: "echo0" }
CONF
"$SNAPD" --config="$work/snapd.conf" --run_dir="$work/run" >"$work/snapd.log" 2>&1 &
snapd_pid=$!
pids+=($snapd_pid)
for _ in $(seq 200); do ctl info >/dev/null 2>&1 && break; sleep 0.05; done

# snapd's CPU time in ns, all threads, from the scheduler's own accounting (/proc/PID/stat counts
# clock ticks, which over-charge a thread that wakes on a timer: it runs when the tick samples).
ticks() { cat /proc/$snapd_pid/task/*/schedstat 2>/dev/null | awk '{ns += $1} END {printf "%.0f", ns}'; }
hz=1000000000
# cpu_over SECONDS: snapd's CPU, percent of one core, over that long.
cpu_over() {
  local t0 t1
  t0=$(ticks); sleep "$1"; t1=$(ticks)
  python3 -c "print(round(($t1 - $t0) * 100 / ($hz * $1), 1))"
}
field() { grep -o "$1=[0-9]*" | cut -d= -f2; }

declare -A p50 p99 load_cpu idle_cpu
for mode in dedicated spreading compacting; do
  # The group's (first) worker on core 1 in every mode, the app pinned to core 0: the two pollers
  # never share a core.
  ctl mode bench "$mode" --cores=1 >/dev/null
  sleep 0.5
  idle_cpu[$mode]=$(cpu_over 2)
  t0=$(ticks); s0=$(date +%s.%N)
  out=$(taskset -c 0 "$TRAFFIC" --socket="$work/run/memif.sock" --id=1 --dst_ip=10.82.0.9 \
        --dst_mac=02:00:00:00:82:09 --frames=200000 --poll)
  t1=$(ticks); s1=$(date +%s.%N)
  p50[$mode]=$(echo "$out" | field rtt_p50_ns)
  p99[$mode]=$(echo "$out" | field rtt_p99_ns)
  load_cpu[$mode]=$(python3 -c "print(round(($t1 - $t0) * 100 / ($hz * ($s1 - $s0)), 1))")
  echo "$out" | grep -q "lost=0 repeated=0 reordered=0" || { echo "modes_bench: frames lost in $mode mode: $out" >&2; exit 1; }
done

# Compacting: a second engine in the group, both packed on one worker; then a load step.
ctl engine create echo1 echo --group=bench >/dev/null
ctl mode bench compacting --cores=1 --slo=20us >/dev/null
for _ in $(seq 200); do
  [ "$(ctl --json groups | ctl_json 'find(d["groups"], name="bench").get("workers", 0)')" = 1 ] && break
  sleep 0.05
done
before=$(grep -c "group bench rebalanced: 1 -> 2" "$work/snapd.log" || true)
taskset -c 0 "$TRAFFIC" --socket="$work/run/memif.sock" --id=2 --dst_ip=10.82.0.9 \
  --dst_mac=02:00:00:00:82:09 --frames=20000000 --window=256 --poll --timeout_s=5 --print_start \
  >/dev/null 2>"$work/load.err" &
load_pid=$!
pids+=($load_pid)
for _ in $(seq 400); do
  [ "$(grep -c "group bench rebalanced: 1 -> 2" "$work/snapd.log" || true)" -gt "$before" ] && break
  sleep 0.01
done
kill "$load_pid" 2>/dev/null || true
step_at=$(python3 -c "import re; print(int(re.search(r'unix_ns=([0-9]+)', open('$work/load.err').read()).group(1)) / 1e9)")
line=$(grep "group bench rebalanced: 1 -> 2" "$work/snapd.log" | tail -1)
rebalance_ms=$(python3 - "$step_at" "$line" <<'PY'
import sys, datetime
step = float(sys.argv[1])
line = sys.argv[2]
if not line:
    print(-1); sys.exit()
# glog: I20261126 12:37:19.182709 ...
stamp = line.split()[0][1:] + " " + line.split()[1]
t = datetime.datetime.strptime(stamp, "%Y%m%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
print(round((t - step) * 1000, 1))
PY
)

printf "%-12s %12s %12s %16s %16s\n" "mode" "rtt_p50_ns" "rtt_p99_ns" "cpu_idle_%core" "cpu_pingpong_%"
for mode in dedicated spreading compacting; do
  printf "%-12s %12s %12s %16s %16s\n" "$mode" "${p50[$mode]}" "${p99[$mode]}" "${idle_cpu[$mode]}" "${load_cpu[$mode]}"
done
echo "compacting: ${rebalance_ms} ms from the loading app's first frame to the scale-out (snapd's log)"
echo "modes dedicated_p50_ns=${p50[dedicated]} spreading_p50_ns=${p50[spreading]} compacting_p50_ns=${p50[compacting]} idle_cpu_spreading=${idle_cpu[spreading]} rebalance_ms=${rebalance_ms}"
