#!/usr/bin/env bash
# Issue 3: where the whole machine's CPU goes during the closed loop (16 users, PostgreSQL), by
# sampling every core with `perf record -a` (Debian package linux-perf). Every sample is put in one
# bucket: the Argon2id hash (an `argon2::` frame in its call chain, including interrupts taken
# while hashing), the rest of the server, PostgreSQL, the load generator, or anything else.
# The ratio "registrations/s ÷ Argon2 ceiling" cannot be higher than the hash's share of all CPU.
#
#   cargo build --release --examples --bins && bash scripts/bench/cpu_profile.sh
#
# SECS (25): length of the closed loop; perf samples PERF_SECS (15) of it at FREQ (499) Hz per core.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib.sh
source scripts/bench/lib.sh
SECS=${SECS:-25}
PERF_SECS=${PERF_SECS:-15}
FREQ=${FREQ:-499}
PORT=${PORT:-18496}
DB=nfa_bench_perf_$$
OUT=$PWD/target/bench/cpu-profile-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "perf is missing: apt-get install -y linux-perf" >&2; exit 1; }

trap 'drop_server "$DB"' EXIT
fresh_server "$DB" "$PORT" "$OUT/data" "$OUT/app.log"
PID=$SERVER_PID

"$LOADGEN" --base-url "http://127.0.0.1:$PORT" --concurrency 16 --duration "$SECS" --json-file "$OUT/closed.json" >/dev/null &
LG=$!
sleep $(((SECS - PERF_SECS) / 2))
perf record -q -F "$FREQ" -e cpu-clock -a -g -o "$OUT/perf.data" -- sleep "$PERF_SECS" 2>/dev/null
wait "$LG"

perf script -i "$OUT/perf.data" -F pid,comm,ip,sym 2>/dev/null | python3 -c '
import json, sys
server, loadgen, secs, hz = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
closed = json.load(open(sys.argv[5]))
buckets = dict.fromkeys(["argon2 hash (server)", "server, everything else", "PostgreSQL", "load generator", "other (kernel threads, idle)"], 0)
def close(head, frames):
    if head is None:
        return
    pid, comm = head
    if pid == server:
        key = "argon2 hash (server)" if any("argon2::" in f for f in frames) else "server, everything else"
    elif comm == "postgres":
        key = "PostgreSQL"
    elif pid == loadgen:
        key = "load generator"
    else:
        key = "other (kernel threads, idle)"
    buckets[key] += 1
head, frames = None, []
for line in sys.stdin:
    if not line.strip():
        close(head, frames); head, frames = None, []
    elif line[0] == "\t":
        frames.append(line)
    else:
        comm, pid = line.split()[:2]
        head, frames = (int(pid.rstrip(":")), comm), []
close(head, frames)
total = sum(buckets.values())
rate = closed["registrations_per_s"]
regs = rate * secs
print(f"closed loop: {rate} registrations/s; perf: {total} samples over {secs:.0f} s")
print("| where | share of all CPU | ms per registration |")
print("| --- | ---: | ---: |")
for key, n in buckets.items():
    print(f"| {key} | {n * 100 / total:.1f} % | {n / hz * 1000 / regs:.2f} |")
' "$PID" "$LG" "$PERF_SECS" "$FREQ" "$OUT/closed.json" | tee "$OUT/summary.md"
echo "perf data: $OUT/perf.data (perf report -i it for the functions)"
