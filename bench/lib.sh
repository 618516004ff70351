# What the benchmark scripts share, sourced by them: the tools check, a
# work folder cleaned up on exit (with the processes started), nginx
# serving that folder as the backend, and the measurement of one wrk run
# as req/s and the CPU a process spent per request (from /proc).

bench_require() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "bench: needs $tool (apt-get install wrk nginx-light)" >&2; exit 1; }
    done
}

# Makes $work (readable by nginx's workers) and kills $pids and nginx on exit.
bench_workdir() {
    work=$(mktemp -d)
    chmod 755 "$work"
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}

# nginx on 127.0.0.1:PORT serving $work as JSON, one worker, no logs.
bench_nginx() {
    cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$1;
        location / { root $work; default_type application/json; }
        # An OTLP/HTTP collector that takes every export.
        location /v1/ { return 200 ""; }
    }
}
NGINX
    nginx -c "$work/nginx.conf" -p "$work"
}

# The user + system ticks process PID has spent.
bench_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One wrk run of $DURATION with $CONNS connections against URL, with any
# further wrk arguments, measuring process PID: prints "req/s µs-per-request".
# A run with non-2xx answers stops the benchmark.
bench_measure() {
    local pid=$1 url=$2 before after out requests rps hz
    shift 2
    hz=$(getconf CLK_TCK)
    before=$(bench_ticks "$pid")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" "$@" "$url")
    after=$(bench_ticks "$pid")
    if echo "$out" | grep -q "Non-2xx"; then echo "bench: $url answered errors" >&2; exit 1; fi
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    awk -v r="$requests" -v t=$((after - before)) -v hz="$hz" -v rps="$rps" \
        'BEGIN { printf "%.0f %.2f\n", rps, (t / hz) * 1e6 / r }'
}

# $ROUNDS rounds over the scenarios named in the array `names`, their order
# rotated each round so that none always runs first; `MEASURE NAME` prints
# "req/s µs-per-request" (bench_measure's line). The results go to
# $work/NAME.rps and $work/NAME.cpu, one line a round.
bench_rounds() {
    local measure=$1 count=${#names[@]} round i name
    for name in "${names[@]}"; do : > "$work/$name.rps"; : > "$work/$name.cpu"; done
    for round in $(seq "$ROUNDS"); do
        for i in $(seq 0 $((count - 1))); do
            name=${names[$(( (i + round) % count ))]}
            set -- $($measure "$name")
            echo "$1" >> "$work/$name.rps"
            echo "$2" >> "$work/$name.cpu"
        done
    done
}

# The median of the numbers on stdin.
bench_median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
