#!/usr/bin/env bash
# Throughput benchmark, all on loopback in one run (ratios matter, not
# absolute numbers: the machines are shared and noisy):
#   backend direct       nginx serving a static JSON file
#   nginx proxy_pass     nginx proxying to that backend (keep-alive upstream)
#   sepia json           sepia in front of it, decoding and re-encoding JSON
#   sepia no-op          sepia in front of it, passing the body through
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
#
#   bench/run.sh                  # 10 s a scenario, 64 connections
#   DURATION=30s CONNS=128 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
BACKEND_PORT=18101
NGINX_PROXY_PORT=18102
SEPIA_PORT=18103

for tool in wrk nginx; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool (apt-get install wrk nginx-light)" >&2; exit 1; }
done

cargo build --release --workspace >&2

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A typical token-issuing backend answer, ~0.5 KiB.
cat > "$work/data.json" <<'JSON'
{"access_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomnbvcx98ertyuiop","roles":["role_a","role_b"],"exp":1735689600},"refresh_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomn12876bvcx98ertyuiop","exp":1735689600},"exp":1735689600,"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]}}
JSON

cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
    server {
        listen 127.0.0.1:$BACKEND_PORT;
        location / { root $work; default_type application/json; }
    }
    server {
        listen 127.0.0.1:$NGINX_PROXY_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"

cat > "$work/sepia.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": $SEPIA_PORT, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [
   {"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]},
   {"endpoint": "/noop", "output_encoding": "no-op", "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]}
 ]}
JSON
RUST_LOG=warn target/release/sepia run -c "$work/sepia.json" 2>"$work/sepia.log" &
pids+=($!)

for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$SEPIA_PORT/__health" >/dev/null 2>&1 && break
    sleep 0.1
done

measure() {
    local url=$1
    wrk -t"$WRK_THREADS" -c"$CONNS" -d2s "$url" >/dev/null  # warm the pools
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" |
        awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} END {printf "%s %s\n", rps, p99}'
}

printf '%-20s %12s %10s %14s\n' scenario "req/s" "p99" "vs proxy_pass"
declare -A results
for scenario in "backend direct|http://127.0.0.1:$BACKEND_PORT/data.json" \
                "nginx proxy_pass|http://127.0.0.1:$NGINX_PROXY_PORT/data.json" \
                "sepia json|http://127.0.0.1:$SEPIA_PORT/json" \
                "sepia no-op|http://127.0.0.1:$SEPIA_PORT/noop"; do
    name=${scenario%%|*}
    url=${scenario#*|}
    read -r rps p99 < <(measure "$url")
    results[$name]=$rps
    base=${results["nginx proxy_pass"]:-$rps}
    printf '%-20s %12s %10s %14s\n' "$name" "$rps" "$p99" "$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2f", a/b}')"
done
