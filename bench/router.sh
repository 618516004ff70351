#!/usr/bin/env bash
# What routing costs as the configuration grows: one gateway serving 5 000
# endpoints (`/svcN/items/{id}`, N from 0) against nginx, and one serving
# only the first. Reports, for the first and the last endpoint, the median
# req/s and CPU per request (from /proc) over the rounds; the time from
# start to a listening port; the RSS at rest of both gateways and so the
# memory an endpoint costs.
#
#   bench/router.sh [SEPIA]        # default target/release/sepia; 5 rounds of 10 s
#   ENDPOINTS=20000 bench/router.sh
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SEPIA=${1:-target/release/sepia}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
ENDPOINTS=${ENDPOINTS:-5000}
BACKEND_PORT=18251
LARGE_PORT=18252
SMALL_PORT=18253
source bench/lib.sh
bench_require wrk nginx curl python3
bench_workdir
echo '{"id":7,"name":"item"}' > "$work/data.json"
bench_nginx $BACKEND_PORT

# A file of COUNT endpoints on PORT.
config() {
    python3 - "$1" "$2" "$BACKEND_PORT" <<'PY'
import json, sys
count, port, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(json.dumps({"version": 3, "listen_ip": "127.0.0.1", "port": port,
                  "host": [f"http://127.0.0.1:{backend}"],
                  "endpoints": [{"endpoint": f"/svc{n}/items/{{id}}",
                                 "backend": [{"url_pattern": "/data.json"}]}
                                for n in range(count)]}))
PY
}
config "$ENDPOINTS" $LARGE_PORT > "$work/large.json"
config 1 $SMALL_PORT > "$work/small.json"

# Starts a gateway; prints its pid and the milliseconds until its port
# answered.
start() {
    local file=$1 port=$2 started pid
    started=$(date +%s%N)
    RUST_LOG=warn "$SEPIA" run -c "$file" >"$file.out" 2>"$file.log" &
    pid=$!
    until curl -s -o /dev/null "http://127.0.0.1:$port/__health"; do
        kill -0 "$pid" 2>/dev/null || { echo "bench: $file did not start" >&2; cat "$file.log" >&2; exit 1; }
        sleep 0.002
    done
    echo "$pid $(( ($(date +%s%N) - started) / 1000000 ))"
}
read -r large listening <<<"$(start "$work/large.json" $LARGE_PORT)"
pids+=("$large")
read -r small small_listening <<<"$(start "$work/small.json" $SMALL_PORT)"
pids+=("$small")
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
sleep 1
large_rss=$(rss "$large")
small_rss=$(rss "$small")

first="http://127.0.0.1:$LARGE_PORT/svc0/items/7"
last="http://127.0.0.1:$LARGE_PORT/svc$((ENDPOINTS - 1))/items/7"
for url in "$first" "$last"; do
    curl -sf "$url" >/dev/null || { echo "bench: $url does not answer" >&2; exit 1; }
    wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null # warm the pools
done
names=(first last)
measure() {
    case $1 in
        first) bench_measure "$large" "$first" ;;
        last) bench_measure "$large" "$last" ;;
    esac
}
bench_rounds measure

median() { bench_median < "$work/$1"; }
first_rps=$(median first.rps)
last_rps=$(median last.rps)
echo "sepia: $SEPIA, $ENDPOINTS endpoints, $ROUNDS rounds of $DURATION, $CONNS connections"
printf '%-28s %10s %8s %12s\n' endpoint req/s ratio "CPU µs/req"
printf '%-28s %10s %8s %12s\n' "first (/svc0/items/7)" "$first_rps" 1.00 "$(median first.cpu)"
printf '%-28s %10s %8.2f %12s\n' "last (/svc$((ENDPOINTS - 1))/items/7)" "$last_rps" \
    "$(awk -v a="$last_rps" -v b="$first_rps" 'BEGIN {print a / b}')" "$(median last.cpu)"
echo "listening after: $listening ms ($ENDPOINTS endpoints), $small_listening ms (1)"
echo "RSS at rest: $large_rss KiB ($ENDPOINTS endpoints), $small_rss KiB (1):" \
    "$(awk -v a="$large_rss" -v b="$small_rss" -v n="$ENDPOINTS" 'BEGIN {printf "%.2f", (a - b) / (n - 1)}') KiB an endpoint"
