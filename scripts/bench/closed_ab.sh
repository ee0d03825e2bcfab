#!/usr/bin/env bash
# Issue 3, for comparing two builds or settings: one closed loop (16 users, SECS seconds) against a
# fresh PostgreSQL database, with the CPU time of the server, of PostgreSQL (all its processes) and
# of the load generator divided by the registrations done. CPU per registration is steadier than
# registrations/s on a machine whose speed drifts; alternate the variants round by round.
#
#   cargo build --release --examples --bins
#   for r in 1 2 3; do
#     LABEL=a BIN=/path/to/old/normal-form-app bash scripts/bench/closed_ab.sh
#     LABEL=b bash scripts/bench/closed_ab.sh
#   done
#
# EXTRA="NAME=value ..." adds environment variables for the server; LOADGEN= another load generator.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib.sh
source scripts/bench/lib.sh
SECS=${SECS:-20}
PORT=${PORT:-18490}
DB=nfa_bench_ab_$$
OUT=$(mktemp -d)
cleanup() {
    drop_server "$DB"
    rm -rf "$OUT"
}
trap cleanup EXIT
# shellcheck disable=SC2086
fresh_server "$DB" "$PORT" "$OUT" "$OUT/app.log" ${EXTRA:-}
PID=$SERVER_PID

# shellcheck disable=SC2046
S0=$(proc_ticks "$PID") P0=$(proc_ticks $(pgrep -u postgres))
/usr/bin/time -f "%U %S" -o "$OUT/loadgen.time" "$LOADGEN" --base-url "http://127.0.0.1:$PORT" --concurrency 16 \
    --duration "$SECS" --json-file "$OUT/closed.json" >/dev/null
# shellcheck disable=SC2046
S1=$(proc_ticks "$PID") P1=$(proc_ticks $(pgrep -u postgres))
python3 - "$OUT/closed.json" "$((S1 - S0))" "$((P1 - P0))" "$(cat "$OUT/loadgen.time")" "$(getconf CLK_TCK)" "${LABEL:-}" <<'PY'
import json, sys
closed = json.load(open(sys.argv[1]))
server, postgres, hz = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[5])
loadgen = sum(float(x) for x in sys.argv[4].split())
done = closed["completed"]
per = lambda seconds: round(seconds * 1000 / max(done, 1), 2)
print(json.dumps({"label": sys.argv[6], "registrations_per_s": closed["registrations_per_s"], "completed": done,
                  "errors": closed["errors"], "server_ms": per(server / hz), "postgres_ms": per(postgres / hz),
                  "loadgen_ms": per(loadgen)}))
PY
