#!/usr/bin/env bash
# What the edge plugins cost: the same endpoint served by sepia processes,
# one plain and one each with CORS, the bot detector and the HTTP security
# headers at the top level, and with a rate limit that never rejects at the
# endpoint (in process, and shared through a local redis-server when one is
# installed), all on loopback against nginx.
# Rounds rotate the order; each scenario reports the median req/s, its
# ratio to the plain gateway, and the CPU per request from /proc.
#
#   bench/edge.sh [SEPIA]          # default target/release/sepia; 5 rounds of 10 s
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SEPIA=${1:-target/release/sepia}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
BACKEND_PORT=18231
source bench/lib.sh
bench_require wrk nginx curl
bench_workdir
cat > "$work/data.json" <<'JSON'
{"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]},"items":[1,2,3]}
JSON
bench_nginx $BACKEND_PORT

names=(plain cors bot httpsec ratelimit)
extras=(
  '{}'
  '{"security/cors": {"allow_origins": ["https://app.example.com"], "allow_methods": ["GET"], "expose_headers": ["Content-Length"], "max_age": "12h"}}'
  '{"security/bot-detector": {"deny": ["a", "b"], "allow": ["c"], "patterns": ["(Pingdom.com_bot_version_).*", "(facebookexternalhit)/.*", "(?i)crawler"]}}'
  '{"security/http": {"frame_deny": true, "content_type_nosniff": true, "browser_xss_filter": true, "referrer_policy": "same-origin", "content_security_policy": "default-src '"'"'self'"'"'"}}'
  '{}'
)
# The endpoint's own extra_config; the limits are far above any rate here.
limit='"max_rate": 1000000000, "capacity": 1000000000, "client_max_rate": 1000000000, "client_capacity": 1000000000, "strategy": "ip"'
endpoint_extras=('{}' '{}' '{}' '{}' "{\"qos/ratelimit/router\": {$limit}}")
REDIS_PORT=18240
if command -v redis-server >/dev/null; then
    redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
    names+=(redis)
    extras+=('{}')
    endpoint_extras+=("{\"qos/ratelimit/router\": {$limit, \"redis\": {\"url\": \"redis://127.0.0.1:$REDIS_PORT\"}}}")
fi
count=${#names[@]}
declare -A port pid
for i in $(seq 0 $((count - 1))); do
    name=${names[$i]}
    port[$name]=$((18232 + i))
    cat > "$work/$name.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": ${port[$name]}, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "extra_config": ${extras[$i]},
 "endpoints": [{"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}], "extra_config": ${endpoint_extras[$i]}}]}
JSON
    RUST_LOG=warn "$SEPIA" run -c "$work/$name.json" >"$work/$name.out" 2>"$work/$name.log" &
    pid[$name]=$!
    pids+=(${pid[$name]})
done
for name in "${names[@]}"; do
    for _ in $(seq 100); do
        curl -fs -A bench "http://127.0.0.1:${port[$name]}/json" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
# A browser-like request: an Origin (CORS works on it) and a user agent.
measure() {
    bench_measure "${pid[$1]}" "http://127.0.0.1:${port[$1]}/json" \
        -H "Origin: https://app.example.com" -H "User-Agent: Mozilla/5.0 (X11; Linux x86_64)"
}
bench_rounds measure
plain=$(bench_median < "$work/plain.rps")
printf '%-9s %10s %10s %12s\n' scenario "req/s" "vs plain" "µs/req"
for name in "${names[@]}"; do
    rps=$(bench_median < "$work/$name.rps"); cpu=$(bench_median < "$work/$name.cpu")
    awk -v n="$name" -v r="$rps" -v o="$plain" -v c="$cpu" \
        'BEGIN { printf "%-9s %10.0f %10.3f %12.2f\n", n, r, r / o, c }'
done
