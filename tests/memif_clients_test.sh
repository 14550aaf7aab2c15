#!/usr/bin/env bash
# Sixteen memif clients (separate processes) on one memif_echo, each with its own regions; one is
# killed with SIGKILL mid-traffic. The server notices the hang-up, frees the client, and the other
# fifteen finish with every frame back in order.
source "$(dirname "$0")/lib.sh"
ECHO=$(bin tools/memif_echo)
TRAFFIC=$(bin tools/memif_traffic)
SOCK="$WORK/echo.sock"

start echo "$ECHO" --socket="$SOCK" --stats_interval_ms=50
wait_for 10 "memif_echo listening" test -S "$SOCK"

VICTIM=4
for id in $(seq 0 15); do
  frames=300000
  [ "$id" -eq "$VICTIM" ] && frames=1000000000  # never finishes on its own
  start "client$id" "$TRAFFIC" --socket="$SOCK" --id="$id" --frames=$frames --window=32 --timeout_s=60
done
wait_for 30 "16 clients connected" grep -q "connections=16" "$WORK/echo.log"
echo_rx_above() { [ "$(field "$WORK/echo.log" rx_frames)" -gt "$1" ]; }
wait_for 30 "traffic flowing on all clients" echo_rx_above 100000
kill -9 "$PID_client4"
wait_for 10 "server saw the kill" grep -q "disconnected id=$VICTIM: peer closed" "$WORK/echo.log"

failed=0
for id in $(seq 0 15); do
  [ "$id" -eq "$VICTIM" ] && continue
  pid_var="PID_client$id"
  if ! wait "${!pid_var}"; then failed=$((failed + 1)); fi
done
check "15 surviving clients got every frame back in order" [ "$failed" -eq 0 ]
check "each survivor reports lost=0" [ "$(grep -l 'lost=0 repeated=0 reordered=0 corrupt=0' "$WORK"/client*.log | wc -l)" -eq 15 ]

# The victim's id is free again and the server still serves.
"$TRAFFIC" --socket="$SOCK" --id=$VICTIM --frames=10000 >"$WORK/again.log" 2>&1
check "a new client on the freed id works" grep -q "lost=0 repeated=0 reordered=0" "$WORK/again.log"
wait_for 10 "all clients gone" grep -q "connections=0 .*disconnected=17" "$WORK/echo.log"
check "server counted no bad descriptors" [ "$(field "$WORK/echo.log" bad_descriptors)" -eq 0 ]
check "server is still alive" kill -0 "$PID_echo"
finish
