#!/usr/bin/env bash
# The pony transport engine between two hosts. Each host is a network namespace with its own snapd
# (its own run directory) whose pony engine owns one end of a veth (an af_packet: NIC); a third
# namespace is the wire between them: tools/impair relays frames between A's and B's veths and can
# lose, reorder, duplicate and delay them (tc netem would, but this kernel is built without
# sch_netem; and snapd sends past its own qdisc). pony_echo runs on host B, pony_bench on host A.
#  - Messages of random sizes (1 byte to 300 kB), each checked (small ones come back whole, large
#    ones as a digest): every one arrives once, in order, intact; on a clean wire, then with 1% and
#    5% loss, reordering, duplication and 1 ms of delay each way.
#  - A receiver app that stops reading (SIGSTOP) slows its sender: nothing is dropped, and every
#    message arrives once it reads again.
#  - kill -9 of the receiving app resets its peer: pony_bench is told the peer app went away.
#  - A silent host (its snapd stopped) times out: pony_bench is told.
#  - snapctl lists the connections.
#  - kill -9 of host A's snapd (under a supervisor that keeps its fds) under traffic: its pony
#    connections come back from the engine's journal (RESYNC), no message lost or repeated.
source "$(dirname "$0")/lib.sh"
need_root
SNAPD=$(bin snapd/snapd)
ECHO=$(bin clients/pony_echo)
IMPAIR=$(bin tools/impair)
BENCH=$(bin clients/pony_bench)
tag=$$
NSA="snapd-pya-$tag" NSB="snapd-pyb-$tag" NSM="snapd-pym-$tag"
for ns in "$NSA" "$NSB" "$NSM"; do
  ip netns add "$ns"
  _netns+=("$ns")
  ip netns exec "$ns" ip link set lo up
done
# A's veth (hosta), and B's (hostb), each with its other end (swa, swb) in M, where impair relays.
for h in a b; do
  ns=$([ $h = a ] && echo "$NSA" || echo "$NSB")
  ip netns exec "$NSM" ip link add "sw$h" type veth peer name "host$h"
  ip netns exec "$NSM" ip link set "host$h" netns "$ns"
  ip netns exec "$NSM" ethtool -K "sw$h" tso off gso off gro off tx off >/dev/null
  ip netns exec "$NSM" ip link set "sw$h" up
  ip netns exec "$ns" ethtool -K "host$h" tso off gso off gro off tx off >/dev/null
  ip netns exec "$ns" ip link set "host$h" up
done
export CTL_TIMEOUT_S=60
# wire ARGS...: (re)starts the relay between A and B with impair's ARGS (none: a clean wire).
wire() {
  pkill -f "impair --a=swa --b=swb" 2>/dev/null && sleep 0.2 || true
  start wire ip netns exec "$NSM" "$IMPAIR" --a=swa --b=swb "$@"
  wait_for 10 "the wire up" grep -q "impair: swa" "$WORK/wire.log"
}
wire

# start_host H ADDR: snapd for host H (a or b) with a pony engine at ADDR on its veth, apps 1 and 2.
start_host() {
  local h=$1 addr=$2 ns
  ns=$([ "$h" = a ] && echo "$NSA" || echo "$NSB")
  mkdir -p "$WORK/run_$h"
  cat >"$WORK/snapd_$h.conf" <<EOF
engines { name: "pony0" kind: "pony" config: "address: '$addr/24'" }
nics { devargs: "af_packet:host$h" engines: "pony0" }
apps { id: 1 mac: "02:00:00:00:77:01" ipv4: "10.77.1.1" engine: "pony0" }
apps { id: 2 mac: "02:00:00:00:77:02" ipv4: "10.77.1.2" engine: "pony0" }
apps { id: 3 mac: "02:00:00:00:77:03" ipv4: "10.77.1.3" engine: "pony0" }
EOF
  cp "$SNAPD" "$WORK/snapd-$h"
  start "snapd_$h" ip netns exec "$ns" "$WORK/snapd-$h" --run_dir="$WORK/run_$h" \
    --config="$WORK/snapd_$h.conf"
  wait_for 30 "snapd on host $h ready" grep -q "control API" "$WORK/snapd_$h.log"
}
start_host a 10.77.0.11
start_host b 10.77.0.12
ctl_on() { local h=$1; shift; "$SNAPCTL" --socket="$WORK/run_$h/control.sock" --timeout_s=60 "$@"; }
export WORK
export -f ctl_on
counter() {  # counter HOST NAME: the pony engine's kind counter
  ctl_on "$1" --json stats | ctl_json "d['engines'][0]['stats']['kind_counters'].get('$2', 0)"
}

start echo "$ECHO" --socket="$WORK/run_b/memif.sock" --id=2
wait_for 10 "pony_echo attached" grep -q attached "$WORK/echo.log"

bench() {  # bench NAME ARGS...: pony_bench from A's app 1 to B's app 2, output in NAME.log
  local name=$1; shift
  "$BENCH" --socket="$WORK/run_a/memif.sock" --id=1 --peer=10.77.0.12 --peer_app=2 "$@" \
    >"$WORK/$name.log" 2>&1
}

check "300 messages of 1 byte to 300 kB arrive once, in order, intact" \
  bench clean --mode=check --count=300 --size=300000 --window=8
check "... all of them" grep -q "check sent=300 received=300 errors=0" "$WORK/clean.log"
check "pony_echo saw the connection from A's app 1" grep -q "from 10.77.0.11 app 1" "$WORK/echo.log"

for loss in 1 5; do
  wire --loss=$loss --dup=1 --reorder=10 --delay_us=1000 --seed=$loss
  before=$(counter a retransmits)
  check "with $loss% loss, reordering, duplication and 1 ms delay: 200 messages arrive once, in order, intact" \
    bench loss$loss --mode=check --count=200 --size=300000 --window=8 --timeout_s=30
  check "... all of them" grep -q "check sent=200 received=200 errors=0" "$WORK/loss$loss.log"
  after=$(counter a retransmits)
  check "... and A retransmitted what was lost ($before -> $after)" test "$after" -gt "$before"
done
wire

check "each bench closed its connection cleanly: snapctl lists none on either host" \
  bash -c "ctl_on a connections | grep -q 'no connections' && ctl_on b connections | grep -q 'no connections'"
check "... and pony_echo was told of clean closes" grep -q "closed: closed" "$WORK/echo.log"

# A slow receiver: pony_echo stops reading for a second while A sends.
drops_before=$(ctl_on b --json stats | ctl_json "d['engines'][0]['stats'].get('drops', 0)")
start slow "$BENCH" --socket="$WORK/run_a/memif.sock" --id=1 --peer=10.77.0.12 --peer_app=2 \
  --mode=check --duration_s=3 --size=200000 --window=16 --timeout_s=20
sleep 1
echo_pid=$(pgrep -f "pony_echo --socket=$WORK/run_b" | head -1)
kill -STOP "$echo_pid"
check "while the receiver does not read, snapctl shows the connection open on both hosts" \
  bash -c "ctl_on a connections | grep -q open && ctl_on b connections | grep -q open"
sleep 1
kill -CONT "$echo_pid"
wait_for 30 "the bench across the stopped receiver finished" grep -q "check sent=" "$WORK/slow.log"
check "... every message arrived, intact" grep -qE "check sent=([0-9]+) received=\1 errors=0" "$WORK/slow.log"
drops_after=$(ctl_on b --json stats | ctl_json "d['engines'][0]['stats'].get('drops', 0)")
check "... and B's engine dropped nothing ($drops_before -> $drops_after)" test "$drops_after" = "$drops_before"
check "... nor refused a segment for lack of credit" test "$(counter b drop_over_credit)" = 0

# 20 live upgrades of host A's snapd under round trips (app 1: 2 kB messages, one at a time) and
# bulk traffic (app 3: up to 1 MiB, four in flight), both checked message by message.
cp "$SNAPD" "$WORK/snapd-a2"
for app in 1 3; do
  size=$([ $app = 1 ] && echo 2000 || echo 1048576)
  window=$([ $app = 1 ] && echo 1 || echo 4)
  start "traffic$app" "$BENCH" --socket="$WORK/run_a/memif.sock" --id=$app --peer=10.77.0.12 \
    --peer_app=2 --mode=check --count=1000000000 --size=$size --window=$window \
    --stop_file="$WORK/stop" --timeout_s=30
done
wait_for 10 "both connections open" bash -c "[ \$(ctl_on a connections | grep -c open) = 2 ]"
ok=0
for i in $(seq 1 20); do
  bin_i=$([ $((i % 2)) -eq 1 ] && echo snapd-a2 || echo snapd-a)
  if ctl_on a upgrade --binary="$WORK/$bin_i" >"$WORK/upgrade-$i.log" 2>&1; then
    ok=$((ok + 1))
  else
    cat "$WORK/upgrade-$i.log"
  fi
done
check "20 live upgrades of host A under traffic succeeded" [ "$ok" -eq 20 ]
grep -h "^pony0 " "$WORK"/upgrade-*.log | awk '{print $2}' | sort -n | tr '\n' ' ' | sed "s/^/pony0 blackouts (us): /"; echo
touch "$WORK/stop"
for app in 1 3; do
  wait_for 60 "app $app's traffic finished" grep -q "check sent=" "$WORK/traffic$app.log"
  check "... app $app's messages across the upgrades: none lost, repeated or reordered ($(grep 'check sent' "$WORK/traffic$app.log"))" \
    grep -qE "check sent=([0-9]+) received=\1 errors=0" "$WORK/traffic$app.log"
done
check "... and the connections stayed up: no app was told of a close" \
  bash -c "! grep -q 'connection closed' '$WORK/traffic1.log' '$WORK/traffic3.log'"
# Both close their connections and exit (app 1's id is free again for the next bench).
check "... and both closed cleanly after" wait "$PID_traffic1" "$PID_traffic3"

# kill -9 of the receiving app resets its peer.
start victim "$BENCH" --socket="$WORK/run_a/memif.sock" --id=1 --peer=10.77.0.12 --peer_app=2 \
  --mode=check --duration_s=30 --size=1000 --window=4
wait_for 10 "the victim's connection open" bash -c "ctl_on a connections | grep -q open"
kill -9 "$echo_pid"
wait_for 15 "pony_bench told that the peer app went away" \
  grep -q "connection closed: the peer app went away" "$WORK/victim.log"
check "... and B reset it (resets_sent > 0)" test "$(counter b resets_sent)" -gt 0

# A silent host: B's snapd stops; A's connection times out.
start echo2 "$ECHO" --socket="$WORK/run_b/memif.sock" --id=2
wait_for 10 "pony_echo attached again" grep -q attached "$WORK/echo2.log"
# Messages up to 100 kB: A has data in flight nearly always when B stops, and that is what times
# out. (A connection with nothing in flight, all acked, its app awaiting B's replies, has nothing
# to time out, as TCP without keepalives: with 1 kB messages, the likely cause of a CI failure.)
start silent "$BENCH" --socket="$WORK/run_a/memif.sock" --id=1 --peer=10.77.0.12 --peer_app=2 \
  --mode=check --duration_s=60 --size=100000 --window=4 --timeout_s=60
wait_for 10 "the connection to B open" bash -c "ctl_on a connections | grep -q open"
snapd_b=$(pgrep -f "snapd-b --run_dir" | head -1)
kill -STOP "$snapd_b"
wait_for 20 "pony_bench told that B stopped answering" grep -q "timed out" "$WORK/silent.log"
kill -CONT "$snapd_b"
check "... and A counted the timeout" test "$(counter a timeouts)" -gt 0

# kill -9 of host A's snapd under pony traffic, five times, with a supervisor that keeps its fds
# (tests/supervisor.py; systemd's store is the same protocol, tests/snapd_systemd_test): the
# restarted snapd takes its pony connections back from the engine's journal and asks B to RESYNC.
# Round trips (app 1) and bulk (app 3) checked message by message: every message arrives once, in
# order, intact, and no connection is reset.
snapd_a=$(ctl_on a --json info | ctl_json 'd["pid"]')  # the last upgrade's
kill -TERM "$snapd_a"
wait_for 20 "host A's snapd stopped" bash -c "! kill -0 $snapd_a 2>/dev/null"
start supervised_a ip netns exec "$NSA" python3 "$(dirname "$0")/supervisor.py" \
  "$WORK/notify_a.sock" "$WORK/store_a" -- "$WORK/snapd-a" --run_dir="$WORK/run_a" \
  --config="$WORK/snapd_a.conf"
wait_for 30 "host A's snapd ready under the supervisor" grep -q "READY=1" "$WORK/store_a"
resyncs_before=$(counter b resyncs_answered)
resets_before=$(counter b resets_sent)
for app in 1 3; do
  size=$([ $app = 1 ] && echo 2000 || echo 1048576)
  window=$([ $app = 1 ] && echo 1 || echo 4)
  start "crash$app" "$BENCH" --socket="$WORK/run_a/memif.sock" --id=$app --peer=10.77.0.12 \
    --peer_app=2 --mode=check --count=1000000000 --size=$size --window=$window \
    --stop_file="$WORK/stop_crash" --timeout_s=30
done
wait_for 10 "both connections open" bash -c "[ \$(ctl_on a connections | grep -c open) = 2 ]"
for i in 1 2 3 4 5; do
  sleep 1
  old=$(ctl_on a --json info | ctl_json 'd["pid"]')
  kill -9 "$old"
  wait_for 10 "host A's snapd back after kill $i" \
    bash -c "[ \"\$(ctl_on a --json info 2>/dev/null | ctl_json 'd[\"pid\"]')\" != '$old' ]"
done
sleep 1
touch "$WORK/stop_crash"
for app in 1 3; do
  wait_for 60 "app $app's traffic finished" grep -q "check sent=" "$WORK/crash$app.log"
  check "... app $app's messages across five crashes of A's snapd: none lost, repeated or reordered ($(grep 'check sent' "$WORK/crash$app.log"))" \
    grep -qE "check sent=([0-9]+) received=\1 errors=0" "$WORK/crash$app.log"
done
check "... no connection was closed under its app" \
  bash -c "! grep -q 'connection closed' '$WORK/crash1.log' '$WORK/crash3.log'"
check "... each restarted snapd picked both connections up from its journal" \
  test "$(grep -c 'picked up 2 connection' "$WORK/supervised_a.log")" -ge 5
check "... B answered their RESYNCs ($resyncs_before -> $(counter b resyncs_answered)) and reset nothing" \
  bash -c "[ $(counter b resyncs_answered) -ge $((resyncs_before + 10)) ] && [ $(counter b resets_sent) = $resets_before ]"

finish
