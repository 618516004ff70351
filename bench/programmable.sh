#!/usr/bin/env bash
# What the programmable plugins cost: the same POST endpoint served by sepia
# processes, one plain and one each with a small JSON Schema over the body,
# a CEL check on the request, and a one-line Lua post hook (setting a
# header; setting a member of the data, which re-encodes the answer), all
# on loopback against nginx (the backend
# is called with GET: nginx serves no POST to a file).
# Rounds rotate the order; each scenario reports the median req/s, its
# ratio to the plain gateway, and the CPU per request from /proc.
#
#   bench/programmable.sh [SEPIA]   # default target/release/sepia; 5 rounds of 10 s
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SEPIA=${1:-target/release/sepia}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
BACKEND_PORT=18251
source bench/lib.sh
bench_require wrk nginx curl
bench_workdir
cat > "$work/data.json" <<'JSON'
{"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]},"items":[1,2,3]}
JSON
bench_nginx $BACKEND_PORT
BODY='{"user":"alice","age":30,"tags":["a","b"]}'
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Tenant"] = "acme"
LUA

names=(plain jsonschema cel lua_header lua_data)
schema='{"type": "object", "required": ["user"], "properties": {"user": {"type": "string", "minLength": 3}, "age": {"type": "integer", "minimum": 0}, "tags": {"type": "array", "items": {"type": "string"}}}}'
extras=(
  '{}'
  "{\"validation/json-schema\": $schema}"
  '{"validation/cel": [{"check_expr": "req_headers['"'"'X-Tenant'"'"'][0] == '"'"'acme'"'"' && req_method == '"'"'POST'"'"'"}]}'
  '{"modifier/lua-proxy": {"post": "response.load():headers(\"X-Lua\", \"yes\")"}}'
  '{"modifier/lua-proxy": {"post": "response.load():data():set(\"seen\", true)"}}'
)
count=${#names[@]}
declare -A port pid
for i in $(seq 0 $((count - 1))); do
    name=${names[$i]}
    port[$name]=$((18252 + i))
    cat > "$work/$name.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": ${port[$name]}, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [{"endpoint": "/json", "method": "POST", "input_headers": ["X-Tenant", "Content-Type"],
   "backend": [{"url_pattern": "/data.json", "method": "GET"}], "extra_config": ${extras[$i]}}]}
JSON
    RUST_LOG=warn "$SEPIA" run -c "$work/$name.json" >"$work/$name.out" 2>"$work/$name.log" &
    pid[$name]=$!
    pids+=(${pid[$name]})
done
for name in "${names[@]}"; do
    for _ in $(seq 100); do
        curl -fs -X POST -H "X-Tenant: acme" -d "$BODY" "http://127.0.0.1:${port[$name]}/json" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
measure() { bench_measure "${pid[$1]}" "http://127.0.0.1:${port[$1]}/json" -s "$work/post.lua"; }
bench_rounds measure
plain=$(bench_median < "$work/plain.rps")
printf '%-11s %10s %10s %12s\n' scenario "req/s" "vs plain" "µs/req"
for name in "${names[@]}"; do
    rps=$(bench_median < "$work/$name.rps"); cpu=$(bench_median < "$work/$name.cpu")
    awk -v n="$name" -v r="$rps" -v o="$plain" -v c="$cpu" \
        'BEGIN { printf "%-11s %10.0f %10.3f %12.2f\n", n, r, r / o, c }'
done
