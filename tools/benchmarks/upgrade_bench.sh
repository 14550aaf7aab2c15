#!/usr/bin/env bash
# upgrade_bench: N live upgrades of snapd under traffic, run by `tools/bench upgrade [N]`.
# snapd drives a veth (af_packet) into a namespace and runs two engines: a vswitch serving two apps
# (snap_traffic exchanges sequenced UDP with udp_echo: the app path; the namespace pings udp_echo
# through the NIC: the NIC path), and an echo engine that memif_traffic streams sequenced frames
# through (an app path too). snapd is upgraded N times, alternating two copies of the binary. Prints each
# engine's blackout distribution, then:
#   upgrade blackout_p50_us=<n> blackout_p99_us=<n> app_frames_lost=<n> nic_frames_lost=<n> upgrades=<n>
# KEEP_WORK=1 keeps the run's logs (both snapds log to snapd.log) and says where, as in tests/.
set -euo pipefail
source "$(dirname "$0")/../../tests/json.sh"  # ctl_json
source "$(dirname "$0")/../../tests/netns.sh"  # veth_host
bin=$1
n=${2:-20}
mode=${3:-spreading}  # the engine group's mode: spreading (a blocking worker per engine) or dedicated
[ "$(id -u)" -eq 0 ] || { echo "upgrade_bench: needs root (a network namespace)" >&2; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
# Not under /tmp (anyone may write there) nor /run (a nosuid mount on most hosts): an upgrade runs
# only a binary in directories no one else can write to, on a mount that is not nosuid.
mkdir -p -m 0755 /var/lib/snapd-test
work=$(mktemp -d /var/lib/snapd-test/upgrade-bench.XXXXXX)
tag=$$
ns="snapd-ub-$tag"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pkill -9 -f "^$work/" 2>/dev/null || true  # the upgraded snapd is a child of the old one, not ours
  ip link del "ub${tag}h" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "upgrade_bench: logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
veth_host "$ns" "ub${tag}h" "ub${tag}n" 10.85.0.100/24
cp "$bin/snapd/snapd" "$work/snapd-a"
cp "$bin/snapd/snapd" "$work/snapd-b"
ctl() { "$bin/tools/snapctl" --socket="$work/run/control.sock" --timeout_s=60 "$@"; }

"$work/snapd-a" --run_dir="$work/run" --nic="net_af_packet0,iface=ub${tag}h" \
  --app=id=1,mac=02:00:00:00:85:01,ip=10.85.0.1 --app=id=2,mac=02:00:00:00:85:02,ip=10.85.0.2 \
  >"$work/snapd.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do ctl info >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/clients/udp_echo" --socket="$work/run/memif.sock" --id=1 >"$work/echo.log" 2>&1 &
pids+=($!)
ctl engine create echo1 echo >/dev/null
if [ "$mode" = dedicated ]; then
  ctl mode default dedicated --cores=0,1 >/dev/null  # a spinning worker per engine, one per core
fi
ctl app add 3 --mac=02:00:00:00:85:03 --ip=10.85.0.3 --engine=echo1 >/dev/null
sleep 0.3
duration=$(( n * 3 / 4 + 4 ))
"$bin/tools/memif_traffic" --socket="$work/run/memif.sock" --id=3 --frames=1000000000 --window=16 \
  --duration_s="$duration" --timeout_s=30 >"$work/stream.log" 2>&1 &
stream=$!
pids+=($stream)
"$bin/clients/snap_traffic" --socket="$work/run/memif.sock" --id=2 --dst_ip=10.85.0.1 \
  --frames=1000000000 --window=16 --duration_s="$duration" --timeout_s=30 >"$work/traffic.log" 2>&1 &
traffic=$!
pids+=($traffic)
ip netns exec "$ns" ping -i 0.01 -w "$duration" 10.85.0.1 >"$work/ping.log" 2>&1 &
ping_pid=$!
pids+=($ping_pid)
sleep 1

: >"$work/blackouts"
done_n=0
for i in $(seq 1 "$n"); do
  next=$([ $((i % 2)) -eq 1 ] && echo snapd-b || echo snapd-a)
  if out=$(ctl --json upgrade --binary="$work/$next"); then
    done_n=$((done_n + 1))
    echo "$out" | ctl_json '[(e["name"], e["blackout_us"], e["handover_us"]) for e in d["engines"]]' >>"$work/blackouts"
  else
    echo "upgrade_bench: upgrade $i failed: $out" >&2
  fi
done
wait "$traffic" || true
wait "$stream" || true
wait "$ping_pid" || true

python3 - "$work" "$done_n" "$mode" <<'PY'
import re, sys
work, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
per = {}
for line in open(f"{work}/blackouts"):
    name, us, handover = line.split()
    per.setdefault(name, []).append((int(us), int(handover)))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else -1
# The summary takes the worst engine: the targets hold per engine.
worst_p50 = max((pct([x[0] for x in v], 50) for v in per.values()), default=-1)
worst_p99 = max((pct([x[0] for x in v], 99) for v in per.values()), default=-1)
# blackout: no snapd polls the engine (old worker's last poll to new worker's first). handover: the
# control plane's view of the move (asking the old worker to stop to the new snapd's ack).
print(f"{'engine':<12} {'upgrades':>8} {'p50_us':>8} {'p99_us':>8} {'min_us':>8} {'max_us':>8}"
      f" {'handover_p50_us':>16} {'handover_p99_us':>16}")
for name, v in per.items():
    b = [x[0] for x in v]
    h = [x[1] for x in v]
    print(f"{name:<12} {len(v):>8} {pct(b, 50):>8} {pct(b, 99):>8} {min(b):>8} {max(b):>8}"
          f" {pct(h, 50):>16} {pct(h, 99):>16}")
# Where a blackout goes (both snapds log to snapd.log): saving and sending the state; the new
# snapd's main thread reading it (a wake-up), restoring it, and its worker taking the engine (another).
log = open(f"{work}/snapd.log", errors="replace").read()
for name in per:
    parts = re.findall(rf"upgrade: {name} blackout \d+ us \(save\+send (\d+), new snapd (-?\d+)\)", log)
    new = re.findall(rf"upgrade: {name} read (-?\d+) us after it was sent, restored in (\d+) us,"
                     rf" polled (-?\d+) us later", log)
    if parts and new:
        cols = list(zip(*[[int(x) for x in p] for p in parts]))
        ncols = list(zip(*[[int(x) for x in p] for p in new]))
        print(f"{name} blackout parts (p50/p99 us): save+send={pct(cols[0], 50)}/{pct(cols[0], 99)}"
              f" read={pct(ncols[0], 50)}/{pct(ncols[0], 99)}"
              f" restore={pct(ncols[1], 50)}/{pct(ncols[1], 99)}"
              f" worker={pct(ncols[2], 50)}/{pct(ncols[2], 99)}")
app_lost = 0
for name in ("traffic", "stream"):
    t = open(f"{work}/{name}.log").read()
    m = re.search(r"sent=(\d+) received=(\d+) lost=(\d+) repeated=(\d+) reordered=(\d+)", t)
    # Any frame an app would notice: missing, repeated or out of order.
    app_lost = app_lost + int(m.group(3)) + int(m.group(4)) + int(m.group(5)) if m and app_lost >= 0 else -1
    print("app path:", t.strip())
p = open(f"{work}/ping.log").read()
m = re.search(r"(\d+) packets transmitted, (\d+) received", p)
nic_lost = int(m.group(1)) - int(m.group(2)) if m else -1
print(f"NIC path: ping every 10 ms through af_packet: {m.group(0) if m else '?'}")
print(f"engines on {mode} workers")
print(f"upgrade blackout_p50_us={worst_p50} blackout_p99_us={worst_p99} "
      f"app_frames_lost={app_lost} nic_frames_lost={nic_lost} upgrades={n}")
PY
