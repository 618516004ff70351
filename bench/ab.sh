#!/usr/bin/env bash
# A/B of two sepia binaries on the same endpoints, all on loopback: what a
# change to the gateway costs. Rounds alternate A and B so that drift of the
# machine hits both; each scenario reports the median req/s of each, B/A,
# and the CPU each process spent per request (user + system time from
# /proc/PID/stat over the round, divided by the requests wrk counted), which
# is steadier here than req/s.
#
#   bench/ab.sh OLD_SEPIA NEW_SEPIA            # 5 rounds of 10 s a scenario
#   ROUNDS=7 DURATION=15s bench/ab.sh A B
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bench/ab.sh SEPIA_A SEPIA_B" >&2; exit 2; }
A=$1
B=$2
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
BACKEND_PORT=18201
A_PORT=18202
B_PORT=18203
for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

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
    server { listen 127.0.0.1:$BACKEND_PORT; location / { root $work; default_type application/json; } }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"

config() {
    cat <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": $1, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [
   {"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]},
   {"endpoint": "/noop", "output_encoding": "no-op", "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]},
   {"endpoint": "/merge", "backend": [{"url_pattern": "/data.json"}, {"url_pattern": "/data.json"}]}
 ]}
JSON
}
config $A_PORT > "$work/a.json"
config $B_PORT > "$work/b.json"
RUST_LOG=warn "$A" run -c "$work/a.json" 2>"$work/a.log" &
a_pid=$!
pids+=($a_pid)
RUST_LOG=warn "$B" run -c "$work/b.json" 2>"$work/b.log" &
b_pid=$!
pids+=($b_pid)
for port in $BACKEND_PORT $A_PORT $B_PORT; do
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/__health" >/dev/null 2>&1 && break
        curl -fs "http://127.0.0.1:$port/data.json" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# One wrk run against PORT/PATH of process PID: "req/s µs-per-request".
measure() {
    local pid=$1 port=$2 path=$3 before after out requests rps
    before=$(ticks "$pid")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$port$path")
    after=$(ticks "$pid")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    awk -v r="$requests" -v t=$((after - before)) -v hz="$hz" -v rps="$rps" \
        'BEGIN { printf "%.0f %.2f\n", rps, (t / hz) * 1e6 / r }'
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

printf '%-8s %10s %10s %7s %12s %12s\n' scenario "A req/s" "B req/s" "B/A" "A µs/req" "B µs/req"
for path in /json /noop /merge; do
    : > "$work/a.rps"; : > "$work/b.rps"; : > "$work/a.cpu"; : > "$work/b.cpu"
    for round in $(seq "$ROUNDS"); do
        # Alternate which goes first, so neither always runs on a warmer machine.
        if [ $((round % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
        for side in $order; do
            if [ "$side" = a ]; then set -- $(measure $a_pid $A_PORT $path); else set -- $(measure $b_pid $B_PORT $path); fi
            echo "$1" >> "$work/$side.rps"
            echo "$2" >> "$work/$side.cpu"
        done
    done
    a_rps=$(median < "$work/a.rps"); b_rps=$(median < "$work/b.rps")
    a_cpu=$(median < "$work/a.cpu"); b_cpu=$(median < "$work/b.cpu")
    awk -v p="$path" -v a="$a_rps" -v b="$b_rps" -v ac="$a_cpu" -v bc="$b_cpu" \
        'BEGIN { printf "%-8s %10.0f %10.0f %7.3f %12.2f %12.2f\n", p, a, b, b / a, ac, bc }'
done
