#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests (SQLite and PostgreSQL), the
# monitoring checks (promtool, amtool, dashboard), schemathesis, the deployment checks (container,
# AWS templates, deploy.sh on moto), the PITR drill and the headless-Chromium browser tests. Installs what the tests need and starts PostgreSQL if it is
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
psql "$PGURL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'nfa\_test\_%' OR datname LIKE 'nfa\_browser\_%' OR datname LIKE 'nfa\_verify\_%'" |
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

# Deployment as code: the container (hadolint, compose schema), the AWS templates (cfn-lint,
# checkov), deploy.sh against the moto AWS emulator, and the runbook's aws commands against the
# real CLI (its list of commands that cannot work as written is printed, not failed on).
bash scripts/ci/check-container.sh
bash scripts/ci/check-infra.sh
bash scripts/ci/deploy-moto-test.sh
bash scripts/ci/check-runbook-aws-commands.sh

# Point-in-time recovery on a throw-away PostgreSQL cluster, shortened for CI (the full drill's
# figures are in docs/disaster-recovery.md).
BIN=target/debug/normal-form-app DRILL_LOAD_SECONDS=45 DRILL_TARGET_AT=10 ARCHIVE_TIMEOUT=20 bash scripts/dr/pitr-drill.sh

node --test tests/browser/
