#!/usr/bin/env bash
# What the token validator costs: one sepia serving the same endpoint open,
# behind an HS256 validator and behind an RS256 validator (RSA-2048), each
# with its verified-token cache (a client reusing its token, the common
# case) and without it (`token_cache_size: 0`: every request pays the
# signature check and the parse), all on loopback against nginx. Rounds alternate the scenarios; each reports the
# median req/s, its ratio to the open endpoint, and the gateway's CPU per
# request from /proc (user + system time over the round / requests).
#
#   bench/validator.sh [SEPIA]          # default target/release/sepia; 5 rounds of 10 s
#   ROUNDS=7 DURATION=15s bench/validator.sh
# Needs wrk and nginx (apt-get install wrk nginx-light). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SEPIA=${1:-target/release/sepia}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
BACKEND_PORT=18211
PORT=18212
source bench/lib.sh
bench_require wrk nginx curl

bench_workdir

# The claims the gateway signs into the benchmark's tokens (exp in 2100).
cat > "$work/claims.json" <<'JSON'
{"access_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomnbvcx98ertyuiop","roles":["role_a","role_b"],"exp":4102444800}}
JSON
cat > "$work/data.json" <<'JSON'
{"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]},"items":[1,2,3]}
JSON
bench_nginx $BACKEND_PORT

"$SEPIA" keygen --alg HS256 --kid hs > "$work/hs.json"
"$SEPIA" keygen --alg RS256 --kid rs --public "$work/rs-public.json" > "$work/rs.json"
validator() {
    echo "{\"alg\": \"$1\", \"jwk_local_path\": \"$2\", \"disable_jwk_security\": true, \"audience\": [\"https://api.example.com\"], \"roles\": [\"role_a\"], \"token_cache_size\": ${3:-1024}}"
}
signer() {
    echo "{\"alg\": \"$1\", \"kid\": \"$2\", \"keys_to_sign\": [\"access_token\"], \"jwk_local_path\": \"$3\", \"disable_jwk_security\": true}"
}
cat > "$work/sepia.json" <<JSON
{"version": 3, "listen_ip": "127.0.0.1", "port": $PORT, "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [
   {"endpoint": "/open", "backend": [{"url_pattern": "/data.json"}]},
   {"endpoint": "/hs256", "backend": [{"url_pattern": "/data.json"}],
    "extra_config": {"auth/validator": $(validator HS256 "$work/hs.json")}},
   {"endpoint": "/rs256", "backend": [{"url_pattern": "/data.json"}],
    "extra_config": {"auth/validator": $(validator RS256 "$work/rs-public.json")}},
   {"endpoint": "/hs256-cold", "backend": [{"url_pattern": "/data.json"}],
    "extra_config": {"auth/validator": $(validator HS256 "$work/hs.json" 0)}},
   {"endpoint": "/rs256-cold", "backend": [{"url_pattern": "/data.json"}],
    "extra_config": {"auth/validator": $(validator RS256 "$work/rs-public.json" 0)}},
   {"endpoint": "/token/hs", "backend": [{"url_pattern": "/claims.json"}],
    "extra_config": {"auth/signer": $(signer HS256 hs "$work/hs.json")}},
   {"endpoint": "/token/rs", "backend": [{"url_pattern": "/claims.json"}],
    "extra_config": {"auth/signer": $(signer RS256 rs "$work/rs.json")}}
 ]}
JSON
RUST_LOG=warn "$SEPIA" run -c "$work/sepia.json" >"$work/sepia.out" 2>"$work/sepia.log" &
pid=$!
pids+=($pid)
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/__health" >/dev/null 2>&1 && break
    sleep 0.1
done
token() { curl -fs "http://127.0.0.1:$PORT/token/$1" | sed 's/.*"access_token":"\([^"]*\)".*/\1/'; }
hs_token=$(token hs)
rs_token=$(token rs)
for check in "/hs256 $hs_token" "/rs256 $rs_token"; do
    set -- $check
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "http://127.0.0.1:$PORT$1")
    [ "$code" = 200 ] || { echo "bench: $1 answers $code" >&2; cat "$work/sepia.log" >&2; exit 1; }
done


# One wrk run against PATH with TOKEN (or none): "req/s µs-per-request".
measure() {
    if [ -n "$2" ]; then
        bench_measure "$pid" "http://127.0.0.1:$PORT$1" -H "Authorization: Bearer $2"
    else
        bench_measure "$pid" "http://127.0.0.1:$PORT$1"
    fi
}

scenarios=("open /open -" "hs256 /hs256 $hs_token" "rs256 /rs256 $rs_token"
           "hs256-cold /hs256-cold $hs_token" "rs256-cold /rs256-cold $rs_token")
count=${#scenarios[@]}
for s in "${scenarios[@]}"; do set -- $s; : > "$work/$1.rps"; : > "$work/$1.cpu"; done
for round in $(seq "$ROUNDS"); do
    # Rotate the order so that no scenario always runs first.
    for i in $(seq 0 $((count - 1))); do
        set -- ${scenarios[$(( (i + round) % count ))]}
        name=$1 path=$2 token=$3
        [ "$token" = - ] && token=""
        set -- $(measure "$path" "$token")
        echo "$1" >> "$work/$name.rps"
        echo "$2" >> "$work/$name.cpu"
    done
done
open_rps=$(bench_median < "$work/open.rps")
printf '%-11s %10s %10s %12s\n' scenario "req/s" "vs open" "µs/req"
for name in open hs256 rs256 hs256-cold rs256-cold; do
    rps=$(bench_median < "$work/$name.rps"); cpu=$(bench_median < "$work/$name.cpu")
    awk -v n="$name" -v r="$rps" -v o="$open_rps" -v c="$cpu" \
        'BEGIN { printf "%-11s %10.0f %10.3f %12.2f\n", n, r, r / o, c }'
done
