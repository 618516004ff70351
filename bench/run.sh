#!/usr/bin/env bash
# Throughput benchmark, all on loopback in one run (ratios matter, not
# absolute numbers: the machines are shared and noisy):
#   backend direct       nginx serving a static JSON file
#   nginx proxy_pass     nginx proxying to that backend (keep-alive upstream),
#                        in the backend's own process and worker
#   nginx proxy_pass, own process
#                        the same proxy in a process of its own with one
#                        worker a core, as sepia runs: the like-for-like peer
#   bare hyper           hyper's server and sepia's backend client with no
#                        gateway logic (gateway/examples/bare_hyper_proxy.rs):
#                        the floor the HTTP library sets under sepia
#   sepia json           sepia in front of it, decoding and re-encoding JSON
#   sepia no-op          sepia in front of it, passing the body through
#   sepia merge          two backends merged (both the same nginx file)
#   sepia HS256/ES256/RS256 signing two tokens a response, against sepia json
#   RS256 vs openssl     `openssl speed rsa2048` signs/s on 2 cores, halved
#                        (two tokens a response): the RS256 ceiling, measured
#                        in every round like the scenarios
#   latency under load   p99 of a plain endpoint at light load, alone and
#                        while RS256 signing saturates the gateway
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
#
#   bench/run.sh                  # 3 interleaved rounds of 10 s a scenario, 64 connections
#   DURATION=30s CONNS=128 ROUNDS=5 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
ROUNDS=${ROUNDS:-3}
BACKEND_PORT=18101
NGINX_PROXY_PORT=18102
NGINX_OWN_PROXY_PORT=18105
SEPIA_PORT=18103
COMPILED_IN_PORT=18104
BARE_HYPER_PORT=18106

for tool in wrk nginx; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool (apt-get install wrk nginx-light)" >&2; exit 1; }
done

cargo build --release --workspace >&2
cargo build --release -p sepia --example compiled_in --example bare_hyper_proxy >&2

work=$(mktemp -d)
# nginx workers run as another user: they must read the served file.
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    [ -f "$work/proxy/nginx.pid" ] && kill "$(cat "$work/proxy/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A typical token-issuing backend answer, ~0.5 KiB.
cat > "$work/data.json" <<'JSON'
{"access_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomnbvcx98ertyuiop","roles":["role_a","role_b"],"exp":1735689600},"refresh_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomn12876bvcx98ertyuiop","exp":1735689600},"exp":1735689600,"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]}}
JSON

# One nginx configuration: WORKERS worker processes, files under DIR, and
# the given server blocks, proxying to the backend with keep-alive.
nginx_conf() {
    local workers=$1 dir=$2 servers=$3
    cat <<NGINX
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 128; }
$servers
}
NGINX
}
proxy_server() {
    cat <<NGINX
    server {
        listen $1;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
NGINX
}
backend_server="    server {
        listen 127.0.0.1:$BACKEND_PORT;
        location / { root $work; default_type application/json; }
    }"
nginx_conf 1 "$work" "$backend_server
$(proxy_server "127.0.0.1:$NGINX_PROXY_PORT")" > "$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work"
mkdir -p "$work/proxy"
nginx_conf "$(nproc)" "$work/proxy" "$(proxy_server "127.0.0.1:$NGINX_OWN_PROXY_PORT reuseport")" > "$work/proxy/nginx.conf"
nginx -c "$work/proxy/nginx.conf" -p "$work/proxy"

for alg in HS256 ES256 RS256; do
    target/release/sepia keygen --alg "$alg" --kid "bench-$alg" > "$work/$alg.json"
done
signer() {
    printf '{"auth/signer": {"alg": "%s", "kid": "bench-%s", "keys_to_sign": ["access_token", "refresh_token"], "jwk_local_path": "%s", "disable_jwk_security": true, "jwk_refresh_interval": "0s"}}' "$1" "$1" "$work/$1.json"
}
cat > "$work/sepia.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": $SEPIA_PORT, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [
   {"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]},
   {"endpoint": "/noop", "output_encoding": "no-op", "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]},
   {"endpoint": "/merge", "backend": [{"url_pattern": "/data.json"}, {"url_pattern": "/data.json"}]},
   {"endpoint": "/hs256", "backend": [{"url_pattern": "/data.json"}], "extra_config": $(signer HS256)},
   {"endpoint": "/es256", "backend": [{"url_pattern": "/data.json"}], "extra_config": $(signer ES256)},
   {"endpoint": "/rs256", "backend": [{"url_pattern": "/data.json"}], "extra_config": $(signer RS256)},
   {"endpoint": "/modifier", "backend": [{"url_pattern": "/data.json"}], "extra_config": {"sepia/header-modifier": {"response_set": {"x-bench": "1"}}}}
 ]}
JSON
# The same header-modifier compiled into the binary instead of loaded.
cat > "$work/compiled-in.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": $COMPILED_IN_PORT, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [
   {"endpoint": "/modifier", "backend": [{"url_pattern": "/data.json"}], "extra_config": {"sepia/header-modifier": {"response_set": {"x-bench": "1"}}}}
 ]}
JSON
RUST_LOG=warn target/release/examples/compiled_in run -c "$work/compiled-in.json" >"$work/compiled-in.out" 2>"$work/compiled-in.log" &
pids+=($!)
RUST_LOG=warn target/release/sepia run -c "$work/sepia.json" >"$work/sepia.out" 2>"$work/sepia.log" &
pids+=($!)
target/release/examples/bare_hyper_proxy "127.0.0.1:$BARE_HYPER_PORT" "http://127.0.0.1:$BACKEND_PORT" 2>"$work/bare.log" &
pids+=($!)

# Up to 10 s for a server to answer.
wait_for() {
    for _ in $(seq 100); do
        curl -fs "$1" >/dev/null 2>&1 && return
        sleep 0.1
    done
}
wait_for "http://127.0.0.1:$SEPIA_PORT/__health"

measure() {
    local url=$1
    wrk -t"$WRK_THREADS" -c"$CONNS" -d2s "$url" >/dev/null  # warm the pools
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" |
        awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
             END {if (bad > 0) {print "bench: " bad " non-2xx answers" > "/dev/stderr"; exit 1}; printf "%s %s\n", rps, p99}'
}

# Every scenario must answer 200 before it is measured: a fast error is no
# benchmark.
wait_for "http://127.0.0.1:$COMPILED_IN_PORT/__health"
wait_for "http://127.0.0.1:$BARE_HYPER_PORT/data.json"
for path in json noop merge hs256 es256 rs256 modifier; do
    code=$(curl -s -o "$work/check.out" -w '%{http_code}' "http://127.0.0.1:$SEPIA_PORT/$path")
    if [ "$code" != 200 ]; then
        echo "bench: /$path answered $code: $(cat "$work/check.out")" >&2
        cat "$work/sepia.log" >&2
        exit 1
    fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
row() { printf '%-24s %12s %10s %16s\n' "$@"; }
# Interleaved rounds, median of each: the machines are shared and one run
# of one scenario can be 25% off.
declare -A samples p99
scenarios=(
    "backend direct|http://127.0.0.1:$BACKEND_PORT/data.json"
    "nginx proxy_pass|http://127.0.0.1:$NGINX_PROXY_PORT/data.json"
    "nginx proxy_pass, own process|http://127.0.0.1:$NGINX_OWN_PROXY_PORT/data.json"
    "bare hyper|http://127.0.0.1:$BARE_HYPER_PORT/data.json"
    "sepia json|http://127.0.0.1:$SEPIA_PORT/json"
    "sepia no-op|http://127.0.0.1:$SEPIA_PORT/noop"
    "sepia merge (2 backends)|http://127.0.0.1:$SEPIA_PORT/merge"
    "sepia hs256|http://127.0.0.1:$SEPIA_PORT/hs256"
    "sepia es256|http://127.0.0.1:$SEPIA_PORT/es256"
    "sepia rs256|http://127.0.0.1:$SEPIA_PORT/rs256"
    "modifier, plugin .so|http://127.0.0.1:$SEPIA_PORT/modifier"
    "modifier, compiled in|http://127.0.0.1:$COMPILED_IN_PORT/modifier"
)
for round in $(seq "$ROUNDS"); do
    echo "bench: round $round of $ROUNDS" >&2
    for scenario in "${scenarios[@]}"; do
        name=${scenario%%|*}
        read -r r l < <(measure "${scenario#*|}")
        samples[$name]="${samples[$name]:-} $r"
        p99[$name]=$l
    done
    # The RS256 ceiling in every round too, so that it drifts with the
    # scenarios instead of being caught once in a busy moment.
    signs=$(openssl speed -seconds 3 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}' | tail -1)
    if [ -n "$signs" ]; then ceilings="${ceilings:-} $signs"; fi
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
declare -A rps
for scenario in "${scenarios[@]}"; do
    name=${scenario%%|*}
    rps[$name]=$(median "${samples[$name]}")
done

row scenario "median req/s" "last p99" ratio
for name in "backend direct" "nginx proxy_pass" "nginx proxy_pass, own process" "bare hyper" "sepia json" "sepia no-op"; do
    row "$name" "${rps[$name]}" "${p99[$name]}" "$(ratio "${rps[$name]}" "${rps[nginx proxy_pass]}") of nginx"
done
for name in "bare hyper" "sepia json" "sepia no-op"; do
    row "$name" "${rps[$name]}" "${p99[$name]}" "$(ratio "${rps[$name]}" "${rps[nginx proxy_pass, own process]}") of own nginx"
done
for name in "sepia json" "sepia no-op"; do
    row "$name" "${rps[$name]}" "${p99[$name]}" "$(ratio "${rps[$name]}" "${rps[bare hyper]}") of bare hyper"
done
row "sepia merge (2 backends)" "${rps[sepia merge (2 backends)]}" "${p99[sepia merge (2 backends)]}" "$(ratio "${rps[sepia merge (2 backends)]}" "${rps[sepia json]}") of json"
for alg in hs256 es256 rs256; do
    row "sepia $alg" "${rps[sepia $alg]}" "${p99[sepia $alg]}" "$(ratio "${rps[sepia $alg]}" "${rps[sepia json]}") of json"
done

for name in "modifier, plugin .so" "modifier, compiled in"; do
    row "$name" "${rps[$name]}" "${p99[$name]}" "$(ratio "${rps[$name]}" "${rps[modifier, compiled in]}") of compiled in"
done

# The RS256 ceiling: what OpenSSL signs on two cores, two tokens a response
# (median of the rounds).
if [ -n "${ceilings:-}" ]; then
    ceiling=$(awk -v s="$(median "$ceilings")" 'BEGIN {printf "%.0f", s/2}')
    row "openssl rsa2048 / 2" "$ceiling" "-" "$(ratio "${rps[sepia rs256]}" "$ceiling") reached"
fi

# Does signing stall other connections? p99 of /json at light load, alone
# and while RS256 saturates the gateway.
light() { wrk -t1 -c4 -d"$DURATION" --latency "http://127.0.0.1:$SEPIA_PORT/json" | awk '/^ +99%/ {print $2}'; }
alone=$(light)
wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$SEPIA_PORT/rs256" >/dev/null &
loader=$!
sleep 1
loaded=$(light)
wait "$loader"
row "json p99, 4 conns" "-" "$alone" "alone"
row "json p99 under RS256" "-" "$loaded" "while RS256 loads"
