#!/usr/bin/env bash
# observe_bench: what watching snapd costs its data path, run by `tools/bench observe`. A real
# snapd with one vswitch engine on a dedicated (spinning) worker pinned to core 1; app A floods app
# B through it with 64-byte frames (observe_flood, both apps in one process pinned to core 0), the
# engines benchmark's app_to_app through a whole snapd. Three ways, interleaved over ROUNDS rounds
# (the median of each is reported, so that a drift of the shared host's load hits all three):
#   plain      nothing else
#   scraped    a GET /metrics every 100 ms (one Python process on a plain socket, started half
#              a second before; as a Prometheus at scrape_interval: 100ms would)
#   capturing  `snapctl capture --port=app2` (both directions, no filter) written to /dev/null
# The shared host's noise moves single runs by up to 2x: the median of the interleaved rounds is
# what to read, and a ratio within a few percent of 1 is within that noise. A last plain run ends
# the rounds, so that every scraped and capturing run has a plain one on either side.
# Then the idle capture hook's cost a burst (tap_bench). Ends with:
#   observe plain_mpps= scraped_mpps= capturing_mpps= idle_hook_ns_per_burst=
set -euo pipefail
bin=$1
rounds=${2:-7}
seconds=${SECONDS_PER_RUN:-1.5}
source "$(dirname "$0")/workdir.sh"
bench_workdir observe-bench
ctl() { "$bin/tools/snapctl" --socket="$work/run/control.sock" "$@"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/snapd.conf" <<CONF
groups { name: "bench" mode: "dedicated" cores: 1 }
engines { name: "vswitch0" kind: "vswitch" group: "bench" }
apps { id: 1 mac: "02:00:00:00:9a:01" ipv4: "10.94.0.1" engine: "vswitch0" }
apps { id: 2 mac: "02:00:00:00:9a:02" ipv4: "10.94.0.2" engine: "vswitch0" }
metrics_address: "127.0.0.1:$port"
CONF
"$bin/snapd/snapd" --config="$work/snapd.conf" --run_dir="$work/run" >"$work/snapd.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do ctl info >/dev/null 2>&1 && break; sleep 0.05; done

flood() {  # one run: Mpps app B received
  taskset -c 0 "$bin/tools/benchmarks/observe_flood" --socket="$work/run/memif.sock" \
    --seconds="$seconds" --core=0 | grep -o "mpps=[0-9.]*" | cut -d= -f2
}
# Warm up (the apps' first attach, the vswitch learning the MACs).
flood >/dev/null

declare -a plain scraped capturing
for r in $(seq 1 "$rounds"); do
  plain+=("$(flood)")

  # A plain socket, not urllib: the scraper's own CPU is not what is measured. Started, then
  # given half a second: a Python starting up beside the flood costs it far more than scrapes do.
  python3 - "$port" "$work/stop_scrape" "$work/scrapes.$r" <<'PY' &
import os, socket, sys, time
port, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n = failed = 0
next_at = time.monotonic()
while not os.path.exists(stop):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            body += b
        s.close()
        if body.startswith(b"HTTP/1.1 200"):
            n += 1
        else:
            failed += 1
    except OSError:
        failed += 1
    next_at += 0.1
    time.sleep(max(0, next_at - time.monotonic()))
open(out, "w").write("%d %d\n" % (n, failed))
PY
  scraper=$!
  sleep 0.5
  scraped+=("$(flood)")
  touch "$work/stop_scrape"
  wait "$scraper" || true
  rm -f "$work/stop_scrape"
  read -r n_scrapes n_failed <"$work/scrapes.$r"
  [ "$n_failed" = 0 ] || echo "observe_bench: $n_failed of the scrapes failed" >&2

  # snapctl itself in the background (not through the ctl function: a signal to the subshell
  # running a function does not reach the command it runs).
  "$bin/tools/snapctl" --socket="$work/run/control.sock" capture --port=app2 --output=/dev/null \
    2>"$work/capture.$r.log" &
  cap=$!
  # (The log read whole, then searched: under pipefail `ctl events | grep -q` can fail on a match.)
  for _ in $(seq 100); do
    ctl events >"$work/events" 2>/dev/null || true
    grep -q "capture .*port app2 .*started" "$work/events" && break
    sleep 0.02
  done
  capturing+=("$(flood)")
  kill -TERM "$cap" 2>/dev/null || true
  wait "$cap" || true
  # Wait for the capture's end in the log before the next round (its taps are off then).
  for _ in $(seq 100); do
    [ "$(ctl events | grep -c 'capture .*port app2 .*ended')" -ge "$r" ] && break
    sleep 0.05
  done
  printf "  round %d: plain %.2f  scraped %.2f  capturing %.2f Mpps\n" "$r" "${plain[-1]}" \
    "${scraped[-1]}" "${capturing[-1]}"
done
plain+=("$(flood)")  # one more: each round's runs lie between two plain ones
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${plain[@]}")
s=$(median "${scraped[@]}")
c=$(median "${capturing[@]}")
captured=$(ctl events | grep "capture .*port app2 .*ended" | tail -1 | sed 's/.*ended/ended/')
hook=$(taskset -c 1 "$bin/tools/benchmarks/tap_bench")
echo
echo "64-byte frames app A -> vswitch (dedicated worker, core 1) -> app B (core 0), median of $rounds:"
printf "  %-10s %8s %8s\n" "" "Mpps" "x plain"
for k in plain:$p scraped:$s capturing:$c; do
  printf "  %-10s %8.3f %8.3f\n" "${k%%:*}" "${k#*:}" "$(python3 -c "print(${k#*:} / $p if $p > 0 else 0)")"
done
# The host's load drifts, by a third within minutes at times: each scraped and capturing run is
# set against the mean of the plain runs just before and after it (seconds apart), and the
# median of those ratios is the steadier figure.
ratios() { python3 -c "
import sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
r = sorted(y / ((a[i] + a[i + 1]) / 2) for i, y in enumerate(b) if a[i] + a[i + 1] > 0)
print('%.3f' % r[len(r) // 2])" "$1" "$2"; }
echo "  median of the runs' ratios to the plain runs beside them: scraped $(ratios "${plain[*]}" "${scraped[*]}")x, capturing $(ratios "${plain[*]}" "${capturing[*]}")x"
echo "  the last capture: $captured"
echo "  $hook"
echo "observe plain_mpps=$p scraped_mpps=$s capturing_mpps=$c idle_hook_ns_per_burst=$(echo "$hook" | grep -o 'idle_hook_ns_per_burst=[0-9.]*' | cut -d= -f2)"
