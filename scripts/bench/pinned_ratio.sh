#!/usr/bin/env bash
# Issue 3, with the server on a core of its own: the server and the Argon2 ceiling are pinned to
# CPU 0, PostgreSQL (every process of the running cluster) and the load generator to CPU 1. This is
# the closest this 2-core machine comes to production, where PostgreSQL (Aurora) and the clients
# are on other machines. Prints registrations/s next to the one-core ceilings measured before and
# after the closed loop. PostgreSQL's CPU affinity is put back to every core on exit.
#
#   cargo build --release --examples --bins && bash scripts/bench/pinned_ratio.sh
#
# SECS (30): closed loop (16 users); ARGON_SECONDS (10): each ceiling.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib.sh
source scripts/bench/lib.sh
CEILING=${CEILING:-$PWD/target/release/examples/argon2_ceiling}
SECS=${SECS:-30}
ARGON_SECONDS=${ARGON_SECONDS:-10}
PORT=${PORT:-18497}
DB=nfa_bench_pinned_$$
OUT=$PWD/target/bench/pinned-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
[[ $(nproc) -ge 2 ]] || { echo "needs two cores" >&2; exit 1; }
ALL_CPUS=0-$(($(nproc --all) - 1))

pin_postgres() { # CPU list: every thread of every PostgreSQL process (new backends inherit it)
    local p
    for p in $(pgrep -u postgres); do taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || true; done
}
cleanup() {
    drop_server "$DB"
    pin_postgres "$ALL_CPUS"
}
trap cleanup EXIT

ceiling() { # NAME: one-core ceiling on CPU 0, hashes/s
    taskset -c 0 "$CEILING" --seconds "$ARGON_SECONDS" | tee "$OUT/$1.txt" | sed -n 's/.*-> \([0-9.]*\) hashes\/s.*/\1/p'
}

pin_postgres 1
BEFORE=$(ceiling ceiling-before)
# The server inherits this shell's affinity, so it starts with one tokio worker and one hashing permit.
taskset -p -c 0 $$ >/dev/null
fresh_server "$DB" "$PORT" "$OUT/data" "$OUT/app.log"
taskset -p -c "$ALL_CPUS" $$ >/dev/null

# shellcheck disable=SC2046
S0=$(proc_ticks "$SERVER_PID") P0=$(proc_ticks $(pgrep -u postgres))
taskset -c 1 "$LOADGEN" --base-url "http://127.0.0.1:$PORT" --concurrency 16 --duration "$SECS" --json-file "$OUT/closed.json" >/dev/null
# shellcheck disable=SC2046
S1=$(proc_ticks "$SERVER_PID") P1=$(proc_ticks $(pgrep -u postgres))
AFTER=$(ceiling ceiling-after)

python3 - "$OUT/closed.json" "$BEFORE" "$AFTER" "$((S1 - S0))" "$((P1 - P0))" "$(getconf CLK_TCK)" "$SECS" <<'PY' | tee "$OUT/summary.md"
import json, sys
closed = json.load(open(sys.argv[1]))
before, after = float(sys.argv[2]), float(sys.argv[3])
server, postgres, hz, secs = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
rate, done = closed["registrations_per_s"], closed["completed"]
print(f"server on CPU 0; PostgreSQL and the load generator on CPU 1; closed loop of 16 users, {secs:.0f} s")
print(f"one-core Argon2id ceiling before / after: {before} / {after} hashes/s")
print(f"registrations/s: {rate} ({done} done, errors {closed['errors']}) = {rate * 100 / before:.0f} % / {rate * 100 / after:.0f} % of the ceiling")
print(f"CPU per registration: server {server / hz * 1000 / done:.2f} ms (CPU 0 busy {server / hz * 100 / secs:.0f} %), PostgreSQL {postgres / hz * 1000 / done:.2f} ms")
PY
