#!/usr/bin/env bash
# EXPLAIN (ANALYZE, BUFFERS) of the manual-review queue's first page at 1 M reviews, without and
# with migration 0012's manual_reviews (status, id) index, in a throw-away database.
#
#   bash scripts/bench/review_queue_explain.sh          (from the repository root; debug build is fine)
#
# Needs psql. Prints both plans; the database (nfa_bench_reviews_<time>) is dropped afterwards
# unless BENCH_KEEP_DB=1.
set -euo pipefail
PGURL=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
BIN=${BIN:-$PWD/target/debug/normal-form-app}
DB=nfa_bench_reviews_$(date -u +%Y%m%d%H%M%S)
URL=$PGURL/$DB
psql -q "$PGURL/postgres" -c "CREATE DATABASE $DB"
[[ ${BENCH_KEEP_DB:-0} == 1 ]] || trap 'psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DB"' EXIT
DATABASE_URL=$URL DATA_DIR=$(mktemp -d) "$BIN" migrate >/dev/null

# 1 M registrations over two years, one review each (in id order, as the app creates them);
# 2 % still pending (the newest ones mostly, as in a queue that is being worked), the rest decided.
psql -q "$URL" -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana,
                   given_name_kana, phone, birth_date, postal_code, prefecture, city, street, plan_id, created_at,
                   inventory_status)
SELECT 'R' || g, 'u' || g || '@example.jp', 'x', '山田', '太郎', 'ヤマダ', 'タロウ', '09012345678', DATE '1990-01-01',
       '1500002', '東京都', '渋谷区', '1-1', (ARRAY['basic', 'standard', 'premium'])[1 + g % 3],
       TIMESTAMPTZ '2025-01-01' + g * INTERVAL '63 seconds', 'needs_check'
FROM generate_series(1, 1000000) AS g;
INSERT INTO manual_reviews (user_id, kind, reason, status, created_at, decided_at, decided_by)
SELECT id, CASE WHEN id % 5 = 0 THEN 'region' ELSE 'inventory' END, 'InventoryAPI unavailable',
       CASE WHEN id > 985000 OR id % 1000 = 0 THEN 'pending' WHEN id % 7 = 0 THEN 'rejected' ELSE 'approved' END,
       created_at, CASE WHEN id > 985000 OR id % 1000 = 0 THEN NULL ELSE created_at + INTERVAL '1 hour' END,
       CASE WHEN id > 985000 OR id % 1000 = 0 THEN NULL ELSE 'op@example.jp' END
FROM users ORDER BY id;
VACUUM ANALYZE users;
VACUUM ANALYZE manual_reviews;
SQL
psql -At "$URL" -c "SELECT status, COUNT(*) FROM manual_reviews GROUP BY status ORDER BY status"

# The queue's query exactly as src/admin/reviews/queries.rs sends it (a prepared statement, as sqlx
# prepares it), run with the parameters the page binds. PLAN_CACHE_MODE=force_generic_plan shows
# the plan PostgreSQL would use if it switched the prepared statement to a generic plan.
QUERY="PREPARE queue(text, text, text, text, timestamptz, timestamptz, bigint, bigint) AS
SELECT r.id, r.kind, r.reason, r.status, r.created_at, r.decided_at, r.decided_by, r.comment,
  u.id AS user_id, u.registration_number, u.family_name, u.given_name, u.family_name_kana, u.given_name_kana, u.plan_id,
  u.prefecture, u.postal_code, u.city, u.inventory_status, u.region_status, u.created_at AS registered_at
FROM manual_reviews r JOIN users u ON u.id = r.user_id
WHERE (\$1 IS NULL OR r.kind = \$1) AND (\$2 IS NULL OR r.status = \$2 OR r.status = \$3)
  AND (\$4 IS NULL OR u.plan_id = \$4) AND (\$5 IS NULL OR r.created_at >= \$5) AND (\$6 IS NULL OR r.created_at < \$6)
  AND (\$7 IS NULL OR r.id > \$7) ORDER BY r.id LIMIT \$8;"
explain() {
    psql -q "$URL" -v ON_ERROR_STOP=1 <<SQL
SET plan_cache_mode = ${PLAN_CACHE_MODE:-auto};
${QUERY}
-- The default page (未対応, every kind and plan, no dates), then its second page.
EXPLAIN (ANALYZE, BUFFERS) EXECUTE queue(NULL, 'pending', 'pending', NULL, NULL, NULL, NULL, 51);
EXPLAIN (ANALYZE, BUFFERS) EXECUTE queue(NULL, 'pending', 'pending', NULL, NULL, NULL, 985050, 51);
SQL
}
echo "== before: without manual_reviews_queue_idx"
psql -q "$URL" -c "DROP INDEX IF EXISTS manual_reviews_queue_idx"
explain
echo "== after: with migration 0012's index"
grep '^CREATE INDEX manual_reviews_queue_idx' migrations/postgres/0012_*.sql | psql -q "$URL" -v ON_ERROR_STOP=1
psql -q "$URL" -c "ANALYZE manual_reviews"
explain
