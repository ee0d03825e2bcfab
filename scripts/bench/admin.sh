#!/usr/bin/env bash
# Admin console benchmark (issue 6), end to end against a release build and PostgreSQL:
# fresh database, `dev seed --users $USERS`, an operator account, sign-in with password + TOTP
# (computed in python3 from the enrolment page's secret), then p50/p95/p99 of the console's
# pages and the CSV export's throughput and the server's RSS while it streams.
#
#   bash scripts/bench/admin.sh
#   USERS=100000 N=100 bash scripts/bench/admin.sh
#   EXTRA_PATHS="/admin /admin/reviews" bash scripts/bench/admin.sh   # measure more pages
#   REUSE_DB=1 bash scripts/bench/admin.sh                            # keep an already-seeded db
#
# Needs: cargo, psql, curl, python3, PostgreSQL at 127.0.0.1:5432 (user postgres, trust).
# Knobs: USERS (1000000), N requests per page (200), CONC concurrent clients (4),
# DB_NAME (nfa_bench_admin), APP_PORT (18490), EXTRA_PATHS, REUSE_DB (0), SKIP_BUILD (0).
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
USERS=${USERS:-1000000}
N=${N:-200}
CONC=${CONC:-4}
DB_NAME=${DB_NAME:-nfa_bench_admin}
APP_PORT=${APP_PORT:-18490}
EXTRA_PATHS=${EXTRA_PATHS:-}
REUSE_DB=${REUSE_DB:-0}
PG=postgres://postgres@127.0.0.1:5432
OUT=$ROOT/target/bench/admin-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
BIN=$ROOT/target/release/normal-form-app
CLIENT="python3 $ROOT/scripts/bench/admin_client.py"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release
fi

export DATABASE_URL=$PG/$DB_NAME
export DATA_DIR=$OUT/data
export APP_ENV=development
export LOG_FORMAT=json
export RUST_LOG=${RUST_LOG:-warn}
# Fixed, so accounts created by the CLI and the server agree on the TOTP encryption key.
export SECRET_KEY=${SECRET_KEY:-bench-secret-key-bench-secret-key-bench-secret-key}

if [ "$REUSE_DB" != 1 ]; then
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB_NAME" -c "CREATE DATABASE $DB_NAME"
  echo "== seeding $USERS users"
  /usr/bin/time -v "$BIN" dev seed --users "$USERS" 2> >(tee "$OUT/seed.stderr" >&2) | tee "$OUT/seed.txt"
  psql "$DATABASE_URL" -qc "VACUUM ANALYZE"
fi

ADMIN_EMAIL="bench-$(date +%s)@example.jp"
ADMIN_PASSWORD='bench password 12345 long'
printf '%s\n' "$ADMIN_PASSWORD" | "$BIN" admin create "$ADMIN_EMAIL" --role operator

LISTEN_ADDR=127.0.0.1:$APP_PORT RATE_LIMIT_GET_PER_MINUTE=100000000 "$BIN" serve > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$APP_PORT/health/live" > /dev/null && break
  sleep 0.2
done
BASE=http://127.0.0.1:$APP_PORT
COOKIE=$($CLIENT signin "$BASE" "$ADMIN_EMAIL" "$ADMIN_PASSWORD")

# Search values taken from the seeded data (a recent row, so nothing is favoured by caching).
read -r NUMBER EMAIL PHONE < <(psql "$DATABASE_URL" -Atc \
  "SELECT registration_number, email, phone FROM users ORDER BY id DESC LIMIT 1 OFFSET 1234" | tr '|' ' ')
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
SECOND_PAGE=$(curl -fs -H "Cookie: $COOKIE" "$BASE/admin/registrations" | grep -o 'href="[^"]*" rel="next"' | sed 's/href="//; s/" rel="next"//; s/&amp;/\&/g')
PATHS=(
  "/admin/registrations"
  "$SECOND_PAGE"
  "/admin/registrations?email=$(enc "$EMAIL")"
  "/admin/registrations?number=$(enc "$NUMBER")"
  "/admin/registrations?name=$(enc '山田')"
  "/admin/registrations?name=$(enc 'やまだ た')"
  "/admin/registrations?phone=$(enc "$PHONE")"
  "/admin/registrations?inventory=needs_check"
  "/admin/registrations?from=$(date -u -d '-30 days' +%F)&to=$(date -u -d '-29 days' +%F)"
)
for extra in $EXTRA_PATHS; do PATHS+=("$extra"); done

echo "== latency: $N requests per page, $CONC concurrent"
$CLIENT measure "$BASE" "$COOKIE" "$N" "$CONC" "${PATHS[@]}" 2> "$OUT/latency.json" | tee "$OUT/latency.txt"

echo "== export (UTF-8), $USERS rows"
$CLIENT export "$BASE" "$COOKIE" "$SERVER" "/admin/registrations/export.csv" | tee "$OUT/export-utf8.json"
echo "== export (CP932)"
$CLIENT export "$BASE" "$COOKIE" "$SERVER" "/admin/registrations/export.csv?encoding=cp932" | tee "$OUT/export-cp932.json"

echo "== EXPLAIN (PostgreSQL)"
for q in \
  "SELECT id FROM users ORDER BY created_at DESC, id DESC LIMIT 51" \
  "SELECT id FROM users WHERE email = '$EMAIL' ORDER BY created_at DESC, id DESC LIMIT 51" \
  "SELECT id FROM users WHERE ((family_name COLLATE \"C\" >= '山田' AND family_name COLLATE \"C\" < '山由') OR (given_name COLLATE \"C\" >= '山田' AND given_name COLLATE \"C\" < '山由') OR (family_name_kana COLLATE \"C\" >= '山田' AND family_name_kana COLLATE \"C\" < '山由') OR (given_name_kana COLLATE \"C\" >= '山田' AND given_name_kana COLLATE \"C\" < '山由')) ORDER BY created_at DESC, id DESC LIMIT 51"; do
  psql "$DATABASE_URL" -Atc "EXPLAIN (ANALYZE, BUFFERS) $q"
  echo
done | tee "$OUT/explain.txt"
echo "results in $OUT"
