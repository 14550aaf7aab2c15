#!/usr/bin/env bash
# snapd's Prometheus endpoint, scraped by a real Prometheus (Debian's prometheus, run here on
# loopback with its own config and storage) under app traffic and across a live upgrade:
#  - GET /metrics answers in the text format promtool accepts;
#  - Prometheus scrapes it every second and a PromQL rate() of the app ports' frames is positive;
#  - after `snapctl upgrade` the endpoint answers again (the new snapd's), the counters went on
#    from where they were (no reset), snapd_upgrades_total says 1 and the blackout histogram
#    holds each engine's blackout;
#  - `snapctl events --follow` (the Events stream) tells of the apps attached, an app refused
#    (with the reason), the upgrade's phases and a mode changed after it, numbered without a gap
#    across the upgrade (the new snapd carries the log on; snapctl asks it from where it was);
#  - through the upgrade, a scrape every 20 ms never fails and never sees a counter go back (the
#    listening socket moves to the new snapd; the old one stops taking scrapes as its counters
#    stop).
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

# Scrapes every 20 ms until told to stop: each must answer 200, and the engine's frame counter
# never go back.
cat >"$WORK/scraper.py" <<'PY'
import os, sys, time, urllib.request
url, stop, out = sys.argv[1:4]
scrapes = failed = back = 0
last = -1
slowest = 0.0
while not os.path.exists(stop):
    scrapes += 1
    try:
        t0 = time.monotonic()
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        slowest = max(slowest, time.monotonic() - t0)
        v = sum(int(l.split()[-1]) for l in body.splitlines()
                if l.startswith("snapd_engine_frames_total{"))
        if v < last:
            back += 1
        last = max(last, v)
    except Exception as e:
        failed += 1
        print(time.strftime("%H:%M:%S"), "%.6f" % (time.time() % 1), "scrape failed:", e,
              flush=True)
    time.sleep(0.02)
open(out, "w").write("scrapes=%d failed=%d went_back=%d slowest_ms=%d\n" %
                     (scrapes, failed, back, slowest * 1000))
PY
start scraper python3 "$WORK/scraper.py" "$url" "$WORK/stop_scraper" "$WORK/scraper.txt"
start follow bash -c "ctl --json events --follow 2>'$WORK/follow.err'"
"$TRAFFIC" --socket="$SOCK" --id=9 --dst_ip=10.88.0.1 >"$WORK/t9.log" 2>&1 || true
wait_for 10 "the follower saw the refusal" grep -q '"app_refused"' "$WORK/follow.log"
before=$(curl -sf "$url" | awk '/^snapd_engine_frames_total/ {print $2}')
check "a live upgrade under scraping succeeds" bash -c "CTL_TIMEOUT_S=60 ctl upgrade --binary='$WORK/snapd-new' >'$WORK/upgrade.log' 2>&1"
wait_for 15 "the new snapd's metrics endpoint" \
  bash -c "curl -sf '$url' | grep -q '^snapd_upgrades_total 1$'"
check "... which answers again after the upgrade" bash -c "curl -sf '$url' >'$WORK/scrape2.txt'"
after=$(awk '/^snapd_engine_frames_total/ {print $2}' "$WORK/scrape2.txt")
check "... with counters that went on ($before -> $after frames)" test "$after" -ge "$before"
check "... and snapd_upgrades_total 1" grep -q "^snapd_upgrades_total 1$" "$WORK/scrape2.txt"
engines=$(grep -c '^snapd_engine_frames_total{' "$WORK/scrape2.txt")
check "... and each engine's blackout in snapd_upgrade_blackout_seconds ($engines)" \
  grep -q "^snapd_upgrade_blackout_seconds_count $engines$" "$WORK/scrape2.txt"
check "... which promtool takes" \
  bash -c "promtool check metrics <'$WORK/scrape2.txt' >'$WORK/promtool2.log' 2>&1 && [ ! -s '$WORK/promtool2.log' ]"
ctl mode default compacting >/dev/null
wait_for 10 "the follower saw the mode change after the upgrade" grep -q '"kind":"mode"' "$WORK/follow.log"
events_say() { python3 - "$WORK/follow.log" "$@" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
want = sys.argv[2:]
seqs = [int(e["seq"]) for e in events]
if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
    sys.exit("sequence with a gap or a repeat: %s" % seqs)
text = [" ".join([e["kind"], e.get("subject", ""), e.get("message", "")]) for e in events]
for w in want:
    if not any(w in t for t in text):
        sys.exit("no event says %r in:\n%s" % (w, "\n".join(text)))
PY
}
check "events: apps attached, the refusal with its reason, the upgrade's phases, the mode, no gap" \
  events_say "app_attached app 1" "app_attached app 2" "app_refused" "unknown interface id 9" \
  "upgrade" "brownout done" "moved to pid" "took over" "mode group default compacting"
echo "  events seen by one follower across the upgrade: $(grep -c '^{' "$WORK/follow.log")"
touch "$WORK/stop_scraper"
wait_for 15 "the scraper's count" test -s "$WORK/scraper.txt"
echo "  scraping every 20 ms through the upgrade: $(cat "$WORK/scraper.txt")"
check "... no scrape failed through the upgrade" grep -q " failed=0 " "$WORK/scraper.txt"
check "... and none saw the counter go back" grep -q " went_back=0 " "$WORK/scraper.txt"
check "... and the old snapd handed its socket over" \
  grep -q "metrics: http://$target/metrics (the socket the old snapd handed over)" "$WORK/snapd.log"
wait_for 20 "Prometheus scraped the new snapd" \
  bash -c "[ \"\$(query 'snapd_upgrades_total')\" = 1 ]"
check "Prometheus saw no counter reset across the upgrade" \
  bash -c "[ \"\$(query 'resets(snapd_engine_frames_total[1m])')\" = 0 ]"
# Prometheus's own view, told not asserted: its scrape timeout cannot exceed its interval (1 s
# here), and on a loaded machine a scrape that waits in the backlog through the hand-over can take
# longer. That every scrape is answered is the 10 s scraper's check above.
echo "  Prometheus's min_over_time(up[1m]) after the upgrade: $(query 'min_over_time(up[1m])')"
finish
