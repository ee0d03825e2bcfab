#!/usr/bin/env bash
# Issue 3, counted instead of timed: the release server's instructions per complete registration
# (the loadgen's nine requests through the HTML form), split into the Argon2id hash and everything
# else, under valgrind's callgrind. Runs with N1 and N2 registrations (one user, one at a time) on
# fresh PostgreSQL databases cancel out start-up. PostgreSQL's own work is not counted here.
#
#   cargo build --release --examples --bins && bash scripts/bench/registration_callgrind.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/target/release/normal-form-app
LOADGEN=$PWD/target/release/examples/loadgen
N1=${N1:-5}
N2=${N2:-25}
PGURL=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
OUT=$PWD/target/bench/callgrind-registration-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

run() { # NAME PORT N
    local name=$1 port=$2 n=$3 db="nfa_bench_cg_$1_$$"
    psql "$PGURL/postgres" -qc "CREATE DATABASE $db" >/dev/null
    DATABASE_URL="$PGURL/$db" LISTEN_ADDR=127.0.0.1:$port LOG_FORMAT=json RATE_LIMIT_PER_MINUTE=100000000 RATE_LIMIT_GET_PER_MINUTE=100000000 \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.out" "$BIN" serve >"$OUT/$name.log" 2>"$OUT/$name.err" &
    local pid=$!
    for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.5; done
    "$LOADGEN" --base-url "http://127.0.0.1:$port" --concurrency 1 --count "$n" --timeout 600 --json-file "$OUT/$name.json" >/dev/null
    kill -TERM $pid
    wait $pid || true
    psql "$PGURL/postgres" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
}

total() { grep -h '^summary' "$OUT/$1.out" | awk '{print $2}'; }
# Inclusive instructions of the Argon2 hashing (the blocking-pool closure that hashes).
argon() { callgrind_annotate --inclusive=yes --threshold=100 "$OUT/$1.out" 2>/dev/null |
    grep -E 'normal_form_app::password::hash_into' | head -1 | awk '{gsub(",","",$1); print $1}'; }

run r1 18711 "$N1" & run r2 18712 "$N2" & wait
per=$(( ($(total r2) - $(total r1)) / (N2 - N1) ))
hash=$(( ($(argon r2) - $(argon r1)) / (N2 - N1) ))
echo "instructions per registration: total=$per argon2=$hash other=$((per - hash)) ($(python3 -c "print(f'{($per-$hash)*100/$per:.1f}')") % outside the hash)"
echo "callgrind files: $OUT (callgrind_annotate FILE for the functions)"
