#!/usr/bin/env bash
# Interop with a memif peer no one here wrote: DPDK's net_memif PMD inside dpdk-testpmd.
#  1. testpmd as client (io forwarding, port looped onto itself, one burst sent first) against our
#     memif_echo: the burst bounces between the two; counts on both sides must add up.
#  2. Our client (memif_traffic) against testpmd as server (io, looped): every sequenced frame
#     comes back, in order, single-buffer and chained; testpmd's counters agree.
# testpmd polls a core; memif_echo and memif_traffic sleep on interrupts when idle.
source "$(dirname "$0")/lib.sh"
ECHO=$(bin tools/memif_echo)
TRAFFIC=$(bin tools/memif_traffic)
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd missing: run tools/setup" >&2; exit 1; }

testpmd() {  # testpmd NAME VDEV-ARGS EXTRA...
  local name=$1 vdev=$2; shift 2
  start "$name" dpdk-testpmd -l 0,1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry \
    --vdev="$vdev" -- --total-num-mbufs=16384 --forward-mode=io --port-topology=loop \
    --stats-period=1 "$@"
}

# The RX/TX totals of port 0 from testpmd's final forward statistics.
testpmd_count() {  # FILE RX|TX
  grep -A2 "Forward statistics for port 0" "$1" | grep -o "$2-packets: *[0-9]*" | tail -1 | grep -o "[0-9]*$"
}

stop_testpmd() {  # NAME: SIGINT, then wait for its final statistics
  local pid_var="PID_${1//-/_}"
  kill -INT "${!pid_var}"
  wait "${!pid_var}" || true
}

# --- 1. testpmd client <-> memif_echo --------------------------------------------------------
SOCK="$WORK/echo.sock"
start echo "$ECHO" --socket="$SOCK" --stats_interval_ms=50
wait_for 10 "memif_echo listening" test -S "$SOCK"
testpmd tpc "net_memif0,role=client,socket=$SOCK,socket-abstract=no,id=3" --tx-first
wait_for 30 "testpmd connected to memif_echo" grep -q "connected id=3 app='DPDK" "$WORK/echo.log"
echo_rx_above() { [ "$(field "$WORK/echo.log" rx_frames)" -gt "$1" ]; }
wait_for 30 "200000 frames echoed" echo_rx_above 200000
stop_testpmd tpc
wait_for 10 "memif_echo saw testpmd leave" grep -q "connections=0" "$WORK/echo.log"
tp_rx=$(testpmd_count "$WORK/tpc.log" RX)
tp_tx=$(testpmd_count "$WORK/tpc.log" TX)
e_rx=$(field "$WORK/echo.log" rx_frames)
e_tx=$(field "$WORK/echo.log" tx_frames)
e_drop=$(field "$WORK/echo.log" dropped)
echo "testpmd rx=$tp_rx tx=$tp_tx; memif_echo rx=$e_rx tx=$e_tx dropped=$e_drop"
check "testpmd received more than 200000 frames back" [ "$tp_rx" -gt 200000 ]
check "memif_echo received no more than testpmd sent, and at most one burst less" \
  [ "$e_rx" -le "$tp_tx" -a "$e_rx" -ge $((tp_tx - 32)) ]
check "memif_echo sent back all it received" [ $((e_tx + e_drop)) -eq "$e_rx" -a "$e_drop" -eq 0 ]
check "testpmd received no more than memif_echo sent" [ "$tp_rx" -le "$e_tx" ]
check "exactly the first burst is in flight at the end" [ $((tp_tx - tp_rx)) -eq 32 ]
check "no bad descriptors from DPDK" [ "$(field "$WORK/echo.log" bad_descriptors)" -eq 0 ]

# --- 2. memif_traffic <-> testpmd server ------------------------------------------------------
# A fresh testpmd per client: DPDK 22.11's memif server can fault when a client leaves while its
# forwarding core is mid-burst, which is testpmd's problem, not the one under test.
run_against_server() {  # NAME FRAMES SIZE WINDOW
  local name=$1 frames=$2 size=$3 window=$4
  local sock="$WORK/$name.sock"
  testpmd "$name" "net_memif0,role=server,socket=$sock,socket-abstract=no" --auto-start
  wait_for 30 "testpmd $name forwarding" grep -q "Port statistics" "$WORK/$name.log"
  # --hold keeps the client connected after its run: DPDK's memif PMD zeroes its counters when
  # the peer leaves, so testpmd's periodic statistics are read while it is still there.
  start "$name-client" "$TRAFFIC" --socket="$sock" --frames="$frames" --size="$size" \
    --window="$window" --hold
  wait_for 60 "$name: client finished" grep -q "seconds=" "$WORK/$name-client.log"
  cat "$WORK/$name-client.log"
  check "$name: every frame came back in order" \
    grep -q "sent=$frames received=$frames lost=0 repeated=0 reordered=0 corrupt=0" "$WORK/$name-client.log"
  wait_for 10 "$name: testpmd counted $frames each way" \
    grep -q "TX-packets: $frames " "$WORK/$name.log"
  check "$name: testpmd received $frames" grep -q "RX-packets: $frames " "$WORK/$name.log"
  local pid_var="PID_${name//-/_}_client"
  kill -TERM "${!pid_var}"
  stop_testpmd "$name"
}
run_against_server tps-small 200000 64 32
run_against_server tps-chained 20000 5000 8
finish
