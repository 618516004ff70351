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
#   EXTRA='{"telemetry/opentelemetry": {...}}' bench/ab.sh A B   # both served with this extra_config
#   (@PORT@ in it is a port of each side's own, for a listener it opens)
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bench/ab.sh SEPIA_A SEPIA_B" >&2; exit 2; }
A=$1
B=$2
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
EXTRA=${EXTRA:-"{}"}
BACKEND_PORT=18201
A_PORT=18202
B_PORT=18203
source bench/lib.sh
bench_require wrk nginx curl

bench_workdir

cat > "$work/data.json" <<'JSON'
{"access_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomnbvcx98ertyuiop","roles":["role_a","role_b"],"exp":1735689600},"refresh_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomn12876bvcx98ertyuiop","exp":1735689600},"exp":1735689600,"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]}}
JSON
bench_nginx $BACKEND_PORT

config() {
    cat <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": $1, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "extra_config": ${EXTRA//@PORT@/$2},
 "endpoints": [
   {"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]},
   {"endpoint": "/noop", "output_encoding": "no-op", "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]},
   {"endpoint": "/merge", "backend": [{"url_pattern": "/data.json"}, {"url_pattern": "/data.json"}]}
 ]}
JSON
}
config $A_PORT $((A_PORT + 100)) > "$work/a.json"
config $B_PORT $((B_PORT + 100)) > "$work/b.json"
RUST_LOG=warn "$A" run -c "$work/a.json" >"$work/a.out" 2>"$work/a.log" &
a_pid=$!
pids+=($a_pid)
RUST_LOG=warn "$B" run -c "$work/b.json" >"$work/b.out" 2>"$work/b.log" &
b_pid=$!
pids+=($b_pid)
for port in $BACKEND_PORT $A_PORT $B_PORT; do
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/__health" >/dev/null 2>&1 && break
        curl -fs "http://127.0.0.1:$port/data.json" >/dev/null 2>&1 && break
        sleep 0.1
    done
done




printf '%-8s %10s %10s %7s %12s %12s\n' scenario "A req/s" "B req/s" "B/A" "A µs/req" "B µs/req"
for path in /json /noop /merge; do
    : > "$work/a.rps"; : > "$work/b.rps"; : > "$work/a.cpu"; : > "$work/b.cpu"
    for round in $(seq "$ROUNDS"); do
        # Alternate which goes first, so neither always runs on a warmer machine.
        if [ $((round % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
        for side in $order; do
            if [ "$side" = a ]; then set -- $(bench_measure $a_pid "http://127.0.0.1:$A_PORT$path"); else set -- $(bench_measure $b_pid "http://127.0.0.1:$B_PORT$path"); fi
            echo "$1" >> "$work/$side.rps"
            echo "$2" >> "$work/$side.cpu"
        done
    done
    a_rps=$(bench_median < "$work/a.rps"); b_rps=$(bench_median < "$work/b.rps")
    a_cpu=$(bench_median < "$work/a.cpu"); b_cpu=$(bench_median < "$work/b.cpu")
    awk -v p="$path" -v a="$a_rps" -v b="$b_rps" -v ac="$a_cpu" -v bc="$b_cpu" \
        'BEGIN { printf "%-8s %10.0f %10.0f %7.3f %12.2f %12.2f\n", p, a, b, b / a, ac, bc }'
done
