#!/usr/bin/env bash
# snapd's Prometheus endpoint, scraped by a real Prometheus (Debian's prometheus, run here on
# loopback with its own config and storage) under app traffic and across a live upgrade:
#  - GET /metrics answers in the text format promtool accepts;
#  - Prometheus scrapes it every second and a PromQL rate() of the app ports' frames is positive;
#  - after `snapctl upgrade` the endpoint answers again (the new snapd's), the counters went on
#    from where they were (no reset), and snapd_upgrades_total says 1.
source "$(dirname "$0")/lib.sh"
SNAPD=$(bin snapd/snapd)
UDP_ECHO=$(bin clients/udp_echo)
TRAFFIC=$(bin clients/snap_traffic)
SOCK="$RUN/memif.sock"
cp "$SNAPD" "$WORK/snapd"
cp "$SNAPD" "$WORK/snapd-new"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A fixed port: the new snapd of an upgrade listens where the old one did.
metrics_port=$(free_port)
start_snapd "$WORK/snapd" --metrics_address=127.0.0.1:$metrics_port \
  --app=id=1,mac=02:00:00:00:88:01,ip=10.88.0.1 --app=id=2,mac=02:00:00:00:88:02,ip=10.88.0.2
wait_for 10 "the metrics endpoint" grep -q "metrics: http://" "$WORK/snapd.log"
url=$(grep -o "http://[0-9.:]*/metrics" "$WORK/snapd.log" | tail -1)
target=${url#http://}
target=${target%/metrics}
check "GET /metrics answers" bash -c "curl -sf '$url' >'$WORK/scrape1.txt'"
check "... in the text format promtool accepts, without warnings" \
  bash -c "promtool check metrics <'$WORK/scrape1.txt' >'$WORK/promtool.log' 2>&1 && [ ! -s '$WORK/promtool.log' ]"
check "... with the engine's counters" grep -q '^snapd_engine_frames_total{engine="vswitch0"' "$WORK/scrape1.txt"

start echo "$UDP_ECHO" --socket="$SOCK" --id=1
wait_for 10 "udp_echo attached" grep -q attached "$WORK/echo.log"
start traffic "$TRAFFIC" --socket="$SOCK" --id=2 --dst_ip=10.88.0.1 --frames=1000000000 \
  --window=8 --duration_s=60 --timeout_s=70 --lost_after_ms=1000

# Prometheus on a free loopback port, scraping snapd every second.
prom_port=$(free_port)
cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: snapd
    static_configs:
      - targets: ['$target']
YML
start prometheus /usr/bin/prometheus --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/prometheus-data" --web.listen-address="127.0.0.1:$prom_port"
query() {  # query PROMQL: the first result's value, or nothing
  curl -sf --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
export -f query
export prom_port
rate_q='sum(rate(snapd_port_rx_frames_total{kind="app"}[5s]))'
wait_for 40 "Prometheus has a rate of the apps' frames" \
  bash -c "v=\$(query '$rate_q'); [ -n \"\$v\" ] && python3 -c \"import sys; sys.exit(0 if float('\$v') > 0 else 1)\""
echo "  rate of app frames per second (PromQL): $(query "$rate_q")"

before=$(curl -sf "$url" | awk '/^snapd_engine_frames_total/ {print $2}')
check "a live upgrade under scraping succeeds" bash -c "CTL_TIMEOUT_S=60 ctl upgrade --binary='$WORK/snapd-new' >'$WORK/upgrade.log' 2>&1"
wait_for 15 "the new snapd's metrics endpoint" \
  bash -c "curl -sf '$url' | grep -q '^snapd_upgrades_total 1$'"
check "... which answers again after the upgrade" bash -c "curl -sf '$url' >'$WORK/scrape2.txt'"
after=$(awk '/^snapd_engine_frames_total/ {print $2}' "$WORK/scrape2.txt")
check "... with counters that went on ($before -> $after frames)" test "$after" -ge "$before"
check "... and snapd_upgrades_total 1" grep -q "^snapd_upgrades_total 1$" "$WORK/scrape2.txt"
wait_for 20 "Prometheus scraped the new snapd" \
  bash -c "[ \"\$(query 'snapd_upgrades_total')\" = 1 ]"
check "Prometheus saw no counter reset across the upgrade" \
  bash -c "[ \"\$(query 'resets(snapd_engine_frames_total[1m])')\" = 0 ]"
finish
