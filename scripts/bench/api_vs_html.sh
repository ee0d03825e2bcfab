#!/usr/bin/env bash
# Issue 8: registrations/s through the HTML form and through the JSON API, in one run against one
# server (release build, fresh PostgreSQL database), alternating, 16 virtual users, 20 s each.
# Needs `cargo build --release --example loadgen --bin normal-form-app` first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
db="nfa_bench_api_$(date +%s)"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
work=$(mktemp -d)
cp target/release/normal-form-app "$work/nfa-bench-server"  # own process name: nothing else stops it by name
DATA_DIR="$work" LISTEN_ADDR=127.0.0.1:18490 DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" LOG_FORMAT=json \
  RATE_LIMIT_PER_MINUTE=100000000 RATE_LIMIT_GET_PER_MINUTE=100000000 DB_MAX_CONNECTIONS=20 "$work/nfa-bench-server" serve > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18490/health >/dev/null && break; sleep 0.2; done
psql -h 127.0.0.1 -U postgres -d "$db" -qc "UPDATE plan_stock SET stock = 1000000000"
for round in 1 2; do
  for face in html api; do
    flag=""; [ "$face" = api ] && flag="--api"
    ./target/release/examples/loadgen --base-url http://127.0.0.1:18490 --concurrency 16 --duration 20 $flag --json-file "$work/lg-$face-$round.json" >/dev/null
    python3 -c "import json;r=json.load(open('$work/lg-$face-$round.json'));print('$face round $round', r['registrations_per_s'],'reg/s', r['completed'],'done', r['failed'],'failed')"
  done
done
./target/release/examples/argon2_ceiling
kill $pid; wait $pid 2>/dev/null || true
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE $db WITH (FORCE)"
rm -rf "$work"
