#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests (SQLite and PostgreSQL), the
# monitoring checks (promtool, amtool, dashboard) and the headless-Chromium browser tests. Installs what the tests need and starts PostgreSQL if it is
# down; the PostgreSQL tests are never skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PGURL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export TEST_DATABASE_URL="$PGURL"

bash scripts/install-test-deps.sh

if ! psql "$PGURL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  echo "test.sh: PostgreSQL is not answering at $PGURL; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do
    psql "$PGURL" -Atqc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
fi
if ! psql "$PGURL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  echo "test.sh: FATAL: cannot connect to PostgreSQL at $PGURL; the PostgreSQL tests must run" >&2
  exit 1
fi

# Throw-away databases of earlier runs.
psql "$PGURL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'nfa\_test\_%' OR datname LIKE 'nfa\_browser\_%'" |
  while read -r db; do psql "$PGURL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true; done

cargo build --locked
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

# Monitoring as code: alert rules and their promtool tests, Alertmanager, and the Grafana
# dashboard checked against a scrape of the running app.
bash scripts/monitoring/scrape-live.sh target/live-metrics.txt
bash scripts/check-monitoring.sh --scrape target/live-metrics.txt

# The JSON API against its committed OpenAPI description.
bash scripts/api/schemathesis.sh

node --test tests/browser/
