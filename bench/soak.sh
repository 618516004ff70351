#!/usr/bin/env bash
# The soak run (issue 16): one release sepia for $DURATION at about 80% of
# the rate it was just measured to reach, on a mix of endpoints: a plain
# one (the load), a merge of a good and a failing backend, a backend that
# answers 500 and one whose port is closed (the injected faults, hit in the
# background). It reports the failed requests of the plain endpoint (target:
# none), the faults' answers (they must stay KrakenD's: 200 incomplete for the
# merge, 500 for the others), and the gateway's RSS over the run (target:
# under 5% growth after warm-up).
#
#   bench/soak.sh [SEPIA]           # default target/release/sepia; 10 minutes
#   DURATION=2m bench/soak.sh
# Needs wrk, nginx and curl. Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SEPIA=${1:-target/release/sepia}
DURATION=${DURATION:-10m}
CONNS=${CONNS:-32}
BACKEND_PORT=18251
PORT=18252
CLOSED_PORT=18253
source bench/lib.sh
bench_require wrk nginx curl
bench_workdir
cat > "$work/data.json" <<'JSON'
{"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]},"items":[1,2,3]}
JSON
bench_nginx $BACKEND_PORT
cat > "$work/soak.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": $PORT, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [
  {"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]},
  {"endpoint": "/merge", "backend": [{"url_pattern": "/data.json", "group": "ok"}, {"url_pattern": "/missing.json", "group": "bad"}]},
  {"endpoint": "/fail", "backend": [{"url_pattern": "/missing.json"}]},
  {"endpoint": "/down", "backend": [{"host": ["http://127.0.0.1:$CLOSED_PORT"], "url_pattern": "/"}]}
 ]}
JSON
RUST_LOG=error "$SEPIA" run -c "$work/soak.json" >"$work/sepia.out" 2>"$work/sepia.log" &
pid=$!
pids+=($pid)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/json" >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

# The maximum, then a per-request pause that brings each connection to
# 80% of it (wrk's delay() hook).
max=$(wrk -t1 -c"$CONNS" -d10s "http://127.0.0.1:$PORT/json" | awk '/Requests\/sec/ {print $2}')
latency_ms=$(awk -v c="$CONNS" -v m="$max" 'BEGIN { printf "%.3f", c / m * 1000 }')
pause_ms=$(awk -v c="$CONNS" -v m="$max" -v l="$latency_ms" 'BEGIN { d = c / (0.8 * m) * 1000 - l; printf "%.3f", (d < 0 ? 0 : d) }')
cat > "$work/pace.lua" <<LUA
function delay() return $pause_ms end
LUA
echo "maximum $max req/s; pacing each of $CONNS connections with a ${pause_ms} ms pause"

# The faults, hit in the background; each answer is checked.
faults() {
    local bad=0 total=0
    while [ ! -f "$work/stop" ]; do
        for path in merge fail down; do
            code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/$path" || echo 000)
            case "$path:$code" in merge:200|fail:500|down:500) ;; *) bad=$((bad + 1)) ;; esac
            total=$((total + 1))
        done
        sleep 0.05
    done
    echo "$total $bad" > "$work/faults"
}
faults &
fault_pid=$!
sleep 5
rss_start=$(rss)
( while [ ! -f "$work/stop" ]; do rss >> "$work/rss"; sleep 10; done ) &
pids+=($!) # stopped before the work directory goes
out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -s "$work/pace.lua" "http://127.0.0.1:$PORT/json")
touch "$work/stop"
wait "$fault_pid"
rss_end=$(rss)
rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
requests=$(echo "$out" | awk '/requests in/ {print $1}')
non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
errors=$(echo "$out" | awk '/Socket errors/ {print $0}')
read -r fault_total fault_bad < "$work/faults"
echo "load: $requests requests at $rate req/s over $DURATION; non-2xx: ${non2xx:-0}; ${errors:-no socket errors}"
echo "faults: $fault_total requests, $fault_bad with an answer other than KrakenD's"
echo "RSS: $rss_start KiB after warm-up, $rss_end KiB at the end, peak $(sort -n "$work/rss" | tail -1) KiB"
awk -v a="$rss_start" -v b="$rss_end" 'BEGIN { printf "RSS growth: %.1f%%\n", (b - a) * 100 / a }'
