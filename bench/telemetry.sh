#!/usr/bin/env bash
# What telemetry costs: the same GET endpoint served by sepia processes,
# one with the access log off (`router.disable_access_log`), one with gin's
# access line written to a file, one with the JSON access line
# (`--log-format json`), one with KrakenD's telemetry/logging pattern as
# well, and one with the access log off and telemetry/opentelemetry's
# metrics on (a Prometheus exporter nobody scrapes), one with traces
# sampled at 100% and pushed over OTLP/HTTP (to nginx, answering 200),
# and one with everything on (access log to a file, metrics, traces), all
# on loopback against nginx.
# Rounds rotate the order; each scenario reports the median req/s, its
# ratio to the quiet gateway, and the CPU per request from /proc.
#
#   bench/telemetry.sh [SEPIA]       # default target/release/sepia; 5 rounds of 10 s
#   ONLY="quiet metrics" bench/telemetry.sh   # some scenarios only
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SEPIA=${1:-target/release/sepia}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
BACKEND_PORT=18261
source bench/lib.sh
bench_require wrk nginx curl
bench_workdir
cat > "$work/data.json" <<'JSON'
{"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]},"items":[1,2,3]}
JSON
bench_nginx $BACKEND_PORT

otlp='{"name": "sink", "host": "http://127.0.0.1", "port": '$BACKEND_PORT', "use_http": true, "disable_metrics": true}'
names=(quiet access access_json krakend_log metrics traces everything)
extras=(
  '{"router": {"disable_access_log": true}}'
  '{}'
  '{}'
  '{"telemetry/logging": {"level": "INFO", "prefix": "[KRAKEND]", "stdout": true}}'
  '{"router": {"disable_access_log": true}, "telemetry/opentelemetry": {"exporters": {"prometheus": [{"name": "bench", "host": "127.0.0.1", "port": 18270}]}}}'
  '{"router": {"disable_access_log": true}, "telemetry/opentelemetry": {"exporters": {"otlp": ['"$otlp"']}}}'
  '{"telemetry/opentelemetry": {"exporters": {"prometheus": [{"name": "bench", "host": "127.0.0.1", "port": 18271}], "otlp": ['"$otlp"']}}}'
)
args=("" "" "--log-format json" "" "" "" "")
# ONLY="quiet metrics" runs just those scenarios.
if [ -n "${ONLY:-}" ]; then
    kept_names=(); kept_extras=(); kept_args=()
    for i in "${!names[@]}"; do
        case " $ONLY " in *" ${names[$i]} "*)
            kept_names+=("${names[$i]}"); kept_extras+=("${extras[$i]}"); kept_args+=("${args[$i]}");;
        esac
    done
    names=("${kept_names[@]}"); extras=("${kept_extras[@]}"); args=("${kept_args[@]}")
fi
count=${#names[@]}
declare -A port pid
for i in $(seq 0 $((count - 1))); do
    name=${names[$i]}
    port[$name]=$((18262 + i))
    cat > "$work/$name.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": ${port[$name]}, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "extra_config": ${extras[$i]},
 "endpoints": [{"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]}]}
JSON
    # shellcheck disable=SC2086
    RUST_LOG=warn "$SEPIA" run -c "$work/$name.json" ${args[$i]} >"$work/$name.out" 2>"$work/$name.log" &
    pid[$name]=$!
    pids+=(${pid[$name]})
done
for name in "${names[@]}"; do
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:${port[$name]}/json" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
measure() { bench_measure "${pid[$1]}" "http://127.0.0.1:${port[$1]}/json"; }
bench_rounds measure
quiet=$(bench_median < "$work/quiet.rps")
printf '%-12s %10s %10s %12s %12s\n' scenario "req/s" "vs quiet" "µs/req" "log lines"
for name in "${names[@]}"; do
    rps=$(bench_median < "$work/$name.rps"); cpu=$(bench_median < "$work/$name.cpu")
    lines=$(wc -l < "$work/$name.out")
    awk -v n="$name" -v r="$rps" -v o="$quiet" -v c="$cpu" -v l="$lines" \
        'BEGIN { printf "%-12s %10.0f %10.3f %12.2f %12d\n", n, r, r / o, c, l }'
done
