#!/usr/bin/env bash
# crash_bench: snapd under a real systemd (tests/systemd.sh), killed N times (kill -9) under
# traffic; run by `tools/bench crash [N]`. snapd drives a veth through DPDK's af_packet PMD into a
# namespace and serves two apps on a vswitch: snap_traffic exchanges sequenced UDP with udp_echo
# (the app path), and the namespace pings udp_echo every 10 ms (the NIC path). Each kill is spaced
# at least 2 s after the snapd before it served again. Per crash: the time from the kill to the
# first frame back on each path (snap_traffic's gaps, ping's timestamps), and what the apps saw.
# Last line:
#   crash restore_p50_ms= restore_p99_ms= crashes= apps_kept= apps_total= app_reconnects= app_frames_lost=
# restore: the later of the two paths. app_frames_lost: frames of the app path that never came back.
# KEEP_WORK=1 keeps the run's files and says where.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../tests/json.sh"  # ctl_json
source "$here/../../tests/systemd.sh"
source "$here/../../tests/netns.sh"  # veth_host
bin=$1
n=${2:-10}
[ "$(id -u)" -eq 0 ] || { echo "crash_bench: needs root (namespaces, systemd)" >&2; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
mkdir -p -m 0755 /var/lib/snapd-test
work=$(mktemp -d /var/lib/snapd-test/crash-bench.XXXXXX)
run="$work/run"
tag=$$
netns="snapd-cb-$tag"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  kill_systemd
  pkill -9 -f "^$work/" 2>/dev/null || true
  ip link del "cb${tag}h" 2>/dev/null || true
  ip netns del "$netns" 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "crash_bench: files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
veth_host "$netns" "cb${tag}h" "cb${tag}n" 10.85.0.100/24

cp "$bin/snapd/snapd" "$bin/tools/snapctl" "$work/"
cat >"$work/snapd.textproto" <<EOF
run_dir: "$run"
nics { devargs: "net_af_packet0,iface=cb${tag}h" }
apps { id: 1 mac: "02:00:00:00:85:01" ipv4: "10.85.0.1" }
apps { id: 2 mac: "02:00:00:00:85:02" ipv4: "10.85.0.2" }
EOF
snapd_unit "$work" "$run" >"$work/snapd.service"
ctl() { "$work/snapctl" --socket="$run/control.sock" --timeout_s=20 "$@"; }
main_pid() { ns systemctl show -p MainPID --value snapd; }
serving_after() {
  local p
  p=$(main_pid)
  [ "$p" != 0 ] && [ "$p" != "$1" ] && [ "$(ns systemctl is-active snapd)" = active ]
}

boot_systemd "$work" "$work/snapd.service"
ns systemctl start snapd
"$bin/clients/udp_echo" --socket="$run/memif.sock" --id=1 >"$work/echo.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q attached "$work/echo.log" && break; sleep 0.05; done
duration=$((n * 3 + 6))
# Frames in flight for 100 ms without any coming back are given up on (and counted late if they
# come after all), so that a lost window does not hold the stream up.
"$bin/clients/snap_traffic" --socket="$run/memif.sock" --id=2 --dst_ip=10.85.0.1 \
  --frames=1000000000 --window=16 --duration_s="$duration" --timeout_s=30 --lost_after_ms=100 \
  --gaps_over_ms=20 >"$work/traffic.log" 2>&1 &
traffic=$!
pids+=($traffic)
ip netns exec "$netns" ping -D -i 0.01 -w "$duration" 10.85.0.1 >"$work/ping.log" 2>&1 &
ping_pid=$!
pids+=($ping_pid)
sleep 2

: >"$work/kills"
for i in $(seq 1 "$n"); do
  old=$(main_pid)
  # Ten restarts inside StartLimitIntervalSec would pass the unit's StartLimitBurst: this is a
  # benchmark, not a snapd that cannot stay up.
  ns systemctl reset-failed snapd 2>/dev/null || true
  date +%s%N >>"$work/kills"
  ns kill -9 "$old"
  for _ in $(seq 200); do serving_after "$old" && break; sleep 0.02; done
  serving_after "$old" || echo "crash_bench: crash $i: no snapd serving 4 s after the kill" >&2
  sleep 2
done
apps_attached=$(ctl apps 2>/dev/null | grep -c ' yes ' || true)
restarts=$(ctl --json info | ctl_json 'd.get("restarts", 0)')
wait "$traffic" || true
wait "$ping_pid" || true
ns journalctl -u snapd --no-pager >"$work/journal.log" 2>&1 || true

python3 - "$work" "$n" "$apps_attached" "$restarts" <<'PY'
import re, sys
work, n, attached, restarts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
kills = [int(x) for x in open(f"{work}/kills").read().split()]
traffic = open(f"{work}/traffic.log").read()
gaps = [(int(a), int(b), int(g)) for a, b, g in
        re.findall(r"gap: [\d.]+ ms from (\d+) to (\d+), (\d+) given up", traffic)]
replies = [int(float(t) * 1e9) for t in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", open(f"{work}/ping.log").read(), re.M)]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else -1
# The gap a kill opened: the first that ends after the kill and began no later than 50 ms after it.
def app_restore(k):
    for a, b, g in gaps:
        if b > k and a <= k + 50_000_000:
            return (b - k) / 1e6, g
    return None, 0
def nic_restore(k):
    prev = None
    for r in replies:
        if r > k and prev is not None and r - prev > 50_000_000:
            return (r - k) / 1e6
        if r > k + 5_000_000_000:
            break
        prev = r
    return None
journal = open(f"{work}/journal.log", errors="replace").read()
# glog's line: I20261202 00:55:05.474720    34 main.cc:215] snapd restarted ... in 546 ms: wall clock
# time of the line, less the time the restart took, is when the new snapd began to restart.
import datetime
begun, starts = [], []
for day, clock, ms in re.findall(r"I(\d{8}) (\d\d:\d\d:\d\d\.\d{6}) +\d+ main\.cc:\d+\] snapd restarted "
                                 r"from the fd store \(\d+ fds\) in (\d+) ms", journal):
    t = datetime.datetime.strptime(day + clock, "%Y%m%d%H:%M:%S.%f").timestamp()
    starts.append(int(ms))
    begun.append(int(t * 1e9) - int(ms) * 1_000_000)
def to_restart(k):
    later = [b for b in begun if b > k]
    return f"{(min(later) - k) / 1e6:.0f}" if later else "?"
print(f"{'crash':>5} {'app_path_ms':>12} {'nic_path_ms':>12} {'given_up':>9} {'to_main_ms':>11}"
      f" {'snapd_start_ms':>15}")
restores = []
for i, k in enumerate(kills):
    a, g = app_restore(k)
    nr = nic_restore(k)
    both = [x for x in (a, nr) if x is not None]
    restores.append(max(both) if len(both) == 2 else 1e9)
    fmt = lambda x: f"{x:.0f}" if x is not None else "none"
    print(f"{i + 1:>5} {fmt(a):>12} {fmt(nr):>12} {g:>9} {to_restart(k):>11}"
          f" {starts[i] if i < len(starts) else '?':>15}")
m = re.search(r"sent=(\d+) received=(\d+) lost=(\d+) repeated=(\d+) reordered=(\d+)", traffic)
lost = int(m.group(3)) if m else -1
late = re.search(r"late=(\d+)", traffic)
print("app path (snap_traffic <-> udp_echo):", traffic.splitlines()[0] if traffic else "?")
print(f"  frames given up on at a kill that came after all: {late.group(1) if late else 0};"
      f" repeated: {m.group(4) if m else '?'}; reordered: {m.group(5) if m else '?'}")
p = re.search(r"(\d+) packets transmitted, (\d+) received", open(f"{work}/ping.log").read())
print(f"NIC path (ping every 10 ms through DPDK's af_packet PMD): {p.group(0) if p else '?'}")
echo = open(f"{work}/echo.log", errors="replace").read()
logs = traffic + echo
# libsnap says "attaching again" when its connection dropped and it tries again (a crash that apps
# noticed); none should.
reconnects = len(re.findall(r"attaching again|reconnected", logs))
dropped = len(re.findall(r"disconnect|detached|server closed", logs, re.I))
kept = attached if dropped == 0 else min(attached, 2 - dropped)
print(f"apps: {attached} of 2 attached at the end, {dropped} disconnect(s) seen in their logs;"
      f" service restarts counted by snapd: {restarts}")
print(f"crash restore_p50_ms={pct(restores, 50):.0f} restore_p99_ms={pct(restores, 99):.0f} "
      f"crashes={len(kills)} apps_kept={kept} apps_total=2 app_reconnects={reconnects} "
      f"app_frames_lost={lost}")
PY
