#!/usr/bin/env bash
# Benchmarks for issues 3, 4, 5 and 7 in one run, against a release build, a fresh PostgreSQL
# database and only 127.0.0.1. Prints everything and keeps it under target/bench/<timestamp>/
# (target/bench/latest points at the last run); docs/BENCHMARKS.md explains the figures.
#
#   bash scripts/bench/run.sh
#
# Needs: cargo, wrk, nginx, psql/createdb, curl, jq, python3, PostgreSQL at 127.0.0.1:5432.
# Knobs (environment): PG_ADMIN_URL, APP_PORT (18480), WRK_ARGS ("-t2 -c64 -d15s"),
# LOAD_SECONDS (30), CONCURRENCY (16), ARGON_SECONDS (10), DUP_PAIRS (200), OVERHEAD_ROUNDS (3),
# OVERHEAD_VARIANTS ("on off"; also "metrics", "logs"), SETTLE_SECONDS (30), BENCH_KEEP_DB (0),
# BENCH_ONLY (all sections; or a comma-separated subset of registrations, duplicates, postal,
# overhead, malloc, e.g. BENCH_ONLY=overhead,duplicates). The build, the machine facts and the fresh
# database are always part of a run.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=scripts/bench/lib.sh
source scripts/bench/lib.sh
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
APP_PORT=${APP_PORT:-18480}
NGINX_PORT=18481 # fixed in scripts/bench/nginx.conf
WRK_ARGS=${WRK_ARGS:-"-t2 -c64 -d15s"}
LOAD_SECONDS=${LOAD_SECONDS:-30}
CONCURRENCY=${CONCURRENCY:-16}
ARGON_SECONDS=${ARGON_SECONDS:-10}
DUP_PAIRS=${DUP_PAIRS:-200}
OVERHEAD_ROUNDS=${OVERHEAD_ROUNDS:-3}
OVERHEAD_VARIANTS=${OVERHEAD_VARIANTS:-"on off"}
SETTLE_SECONDS=${SETTLE_SECONDS:-30}
BENCH_ONLY=${BENCH_ONLY:-registrations,duplicates,postal,overhead,malloc}
# want SECTION: whether BENCH_ONLY asks for that section.
want() { [[ ,$BENCH_ONLY, == *,$1,* ]]; }
for only in ${BENCH_ONLY//,/ }; do
    case $only in
        registrations | duplicates | postal | overhead | malloc) ;;
        *) echo "BENCH_ONLY: unknown section $only" >&2; exit 1 ;;
    esac
done
BASE="http://127.0.0.1:$APP_PORT"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/target/bench/$STAMP"
mkdir -p "$OUT"
ln -sfn "$STAMP" "$ROOT/target/bench/latest"
exec > >(tee -a "$OUT/run.log") 2>&1

DB="nfa_bench_$(date -u +%Y%m%d%H%M%S)"
DB_URL="${PG_ADMIN_URL%/*}/$DB"
APP_PID=""
NGINX_PID=""

stop_app() {
    if [[ -n $APP_PID ]]; then
        kill -TERM "$APP_PID" 2>/dev/null || true
        wait "$APP_PID" 2>/dev/null || true
        APP_PID=""
    fi
}
cleanup() {
    stop_app
    if [[ -n $NGINX_PID ]]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ ${BENCH_KEEP_DB:-0} != 1 ]]; then
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

section() { printf '\n=== %s ===  (load average: %s)\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

# start_app NAME [VAR=VALUE...]: starts the release server in the background, waits for liveness.
start_app() {
    local name=$1
    shift
    start_server "$SERVER" "$DB_URL" "$APP_PORT" "$OUT/data-$name" "$OUT/app-$name.log" "$@" || exit 1
    APP_PID=$SERVER_PID
    echo "app ($name) up, pid $APP_PID"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# cpu_snapshot: machine busy and steal ticks, the server's and all PostgreSQL processes' ticks.
cpu_snapshot() {
    # shellcheck disable=SC2046
    awk '/^cpu / {printf "busy=%d steal=%d ", $2+$3+$4+$7+$8, $9}' /proc/stat
    echo "server=$(proc_ticks "$APP_PID") postgres=$(proc_ticks $(pgrep -u postgres)) wall=$(date +%s%3N) cores=$(nproc)"
}
rss_phase() { printf '%-48s %s\n' "$1" "$(rss_kib "$APP_PID")" | tee -a "$OUT/rss_phases.txt"; }

# flow_cookie: a new registration flow's cookie (nf_flow=...), from the first step's page.
flow_cookie() {
    local cookie
    cookie=$(curl -fsS -D - -o /dev/null "$BASE/register/customer" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(nf_flow=[^;]*\).*/\1/p')
    [[ -n $cookie ]] || { echo "no nf_flow cookie" >&2; exit 1; }
    echo "$cookie"
}

# run_wrk NAME URL [wrk options...]: wrk with the common settings, output kept as NAME.wrk.txt.
run_wrk() {
    local name=$1 url=$2
    shift 2
    # shellcheck disable=SC2086
    timeout 120 wrk $WRK_ARGS --latency "$@" "$url" | tee "$OUT/$name.wrk.txt"
}

section "build (release)"
cargo build --release --examples --bins

# The server runs from a copy under its own name: another process on a shared machine stopping
# "normal-form-app" by name (this happened) would otherwise end the benchmark's server mid-run.
SERVER="$OUT/nfa-bench-server"
cp "$ROOT/target/release/normal-form-app" "$SERVER"

section "machine"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!target' 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "postgres: $(psql -tA "$PG_ADMIN_URL" -c 'SHOW server_version')"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    echo "nginx: $(nginx -v 2>&1)"
    echo "load average at start: $(cat /proc/loadavg)"
    echo "sections: $BENCH_ONLY"
} | tee "$OUT/machine.txt"

section "database"
createdb -h 127.0.0.1 -U postgres "$DB"
echo "fresh database $DB"

# ---------------------------------------------------------------- issue 3: registration throughput
# argon2_ceiling NAME: the ceiling, with its CPU time (user + system) in NAME.time, so the CPU cost of
# one hash can be read even when other processes take part of the cores.
argon2_ceiling() {
    /usr/bin/time -f "%U %S" -o "$OUT/$1.time" \
        "$ROOT/target/release/examples/argon2_ceiling" --seconds "$ARGON_SECONDS" --json | tee "$OUT/$1.json"
}
if want registrations; then
section "issue 3: Argon2id ceiling (all cores, ${ARGON_SECONDS}s)"
argon2_ceiling argon2
fi

if want registrations || want duplicates || want postal; then
start_app main
# The catalogue's stock (500 of "standard") would sell out within the first run; the benchmark
# measures registrations, not the sold-out page.
psql -q "$DB_URL" -c "UPDATE plan_stock SET stock = 1000000000"
sleep 1
rss_phase "after start"
fi

if want registrations; then
section "issue 3: closed loop, $CONCURRENCY users, ${LOAD_SECONDS}s"
# Where the CPU goes during the closed loop: server, PostgreSQL, load generator, everything else.
CPU0=$(cpu_snapshot)
/usr/bin/time -f "%U %S" -o "$OUT/closed.time" \
    "$ROOT/target/release/examples/loadgen" --base-url "$BASE" --concurrency "$CONCURRENCY" --duration "$LOAD_SECONDS" \
    --json-file "$OUT/closed.json"
CPU1=$(cpu_snapshot)
python3 - "$CPU0" "$CPU1" "$(cat "$OUT/closed.time")" "$(getconf CLK_TCK)" <<'PY' | tee "$OUT/cpu.json"
import json, sys
a, b = (dict(kv.split("=") for kv in s.split()) for s in sys.argv[1:3])
user, system = (float(x) for x in sys.argv[3].split()[-2:])
hz = float(sys.argv[4])
diff = {k: int(b[k]) - int(a[k]) for k in a}
wall = diff["wall"] / 1000
print(json.dumps({"wall_s": round(wall, 2), "cpu_s_available": round(wall * int(a["cores"]), 2),
                  **{f"{k}_s": round(diff[k] / hz, 2) for k in ("busy", "steal", "server", "postgres")},
                  "loadgen_s": round(user + system, 2)}))
PY
rss_phase "after the closed loop"
CLOSED_DONE=$(date +%s)
section "issue 3: Argon2id ceiling again, right after the closed loop (${ARGON_SECONDS}s)"
argon2_ceiling argon2_after
# The server is idle during the ceiling (another process); RSS again once it has had time to
# give memory back.
WAIT_S=$((CLOSED_DONE + SETTLE_SECONDS - $(date +%s)))
if ((WAIT_S > 0)); then sleep "$WAIT_S"; fi
rss_phase "${SETTLE_SECONDS} s after the closed loop (idle)"
CAPACITY=$(jq -r '.registrations_per_s' "$OUT/closed.json")
HALF=$(python3 -c "print(max(0.5, round($CAPACITY / 2, 2)))")

section "issue 3: open loop at half capacity ($HALF registrations/s), ${LOAD_SECONDS}s"
"$ROOT/target/release/examples/loadgen" --base-url "$BASE" --rate "$HALF" --duration "$LOAD_SECONDS" \
    --json-file "$OUT/open.json"
rss_phase "after the open loop"

section "issue 3: wrk GET /register/customer, fixed cookie (one flow)"
COOKIE=$(flow_cookie)
run_wrk customer_cookie "$BASE/register/customer" -H "Cookie: $COOKIE"
rss_phase "after wrk /register/customer (cookie)"

section "issue 3: wrk GET /register/customer, no cookie (every request starts a flow row)"
run_wrk customer_nocookie "$BASE/register/customer"
psql -tA "$DB_URL" -c "SELECT 'flow rows after wrk: ' || count(*) FROM user_sessions" | tee -a "$OUT/customer_nocookie.wrk.txt"
rss_phase "after wrk /register/customer (no cookie)"
fi

# -------------------------------------------------------------------- issue 5: duplicate timing
if want duplicates; then
section "issue 5: $DUP_PAIRS fresh and $DUP_PAIRS duplicate sign-ups, interleaved, one at a time"
"$ROOT/target/release/examples/loadgen" --base-url "$BASE" --concurrency 1 --count $((DUP_PAIRS * 2)) \
    --alternate-duplicate "dup-$STAMP@example.jp" --json-file "$OUT/duplicate.json"
rss_phase "after the duplicate timing"
fi

# ------------------------------------------------------------------- issue 4: postal-code lookups
if want postal; then
section "issue 4: static copies of the app's postal-code answers for nginx"
NGX="$OUT/nginx"
mkdir -p "$NGX/html/api/v1/postal-codes" "$NGX/logs" "$NGX/temp"
# A spread of real codes from the bundled table (every 600th line), plus 1500002.
"$ROOT/target/release/examples/postal_dump" | awk -F'\t' 'NR % 600 == 2 && $1 ~ /^[0-9]{7}$/ {print $1}' | sort -u >"$OUT/codes.txt"
grep -qx 1500002 "$OUT/codes.txt" || echo 1500002 >>"$OUT/codes.txt"
while read -r code; do
    curl -fsS -o "$NGX/html/api/v1/postal-codes/$code" "$BASE/api/v1/postal-codes/$code"
done <"$OUT/codes.txt"
chmod -R a+rX "$NGX/html"
echo "$(wc -l <"$OUT/codes.txt") codes; 1500002 is $(stat -c %s "$NGX/html/api/v1/postal-codes/1500002") bytes"
nginx -p "$NGX/" -c "$ROOT/scripts/bench/nginx.conf" -e stderr &
NGINX_PID=$!
sleep 1
cmp <(curl -fsS "http://127.0.0.1:$NGINX_PORT/api/v1/postal-codes/1500002") <(curl -fsS "$BASE/api/v1/postal-codes/1500002") &&
    echo "nginx serves the same bytes as the app"

section "issue 4: wrk app GET /api/v1/postal-codes/1500002"
run_wrk postal_app "$BASE/api/v1/postal-codes/1500002"
section "issue 4: wrk nginx GET /api/v1/postal-codes/1500002"
run_wrk postal_nginx "http://127.0.0.1:$NGINX_PORT/api/v1/postal-codes/1500002"
section "issue 4: wrk app, mix of $(wc -l <"$OUT/codes.txt") codes"
POSTAL_CODES_FILE="$OUT/codes.txt" run_wrk postal_mix_app "$BASE" -s "$ROOT/scripts/bench/postal_mix.lua"
section "issue 4: wrk nginx, same mix"
POSTAL_CODES_FILE="$OUT/codes.txt" run_wrk postal_mix_nginx "http://127.0.0.1:$NGINX_PORT" -s "$ROOT/scripts/bench/postal_mix.lua"
rss_phase "after wrk on postal codes"
RSS_LOADED_AFTER=$(rss_kib "$APP_PID")
echo "app RSS after all the load: $RSS_LOADED_AFTER KiB"
kill -TERM "$NGINX_PID" && wait "$NGINX_PID" 2>/dev/null || true
NGINX_PID=""

section "issue 4: RSS of the embedded postal table"
"$ROOT/target/release/examples/postal_dump" --stats | tee "$OUT/postal_stats.txt"
stop_app
start_app table-loaded
sleep 2
RSS_TABLE=$(rss_kib "$APP_PID")
curl -fsS -o /dev/null "$BASE/api/v1/postal-codes/1500002"
sleep 1
RSS_TABLE_USED=$(rss_kib "$APP_PID")
stop_app
# Nothing listens on port 9 (discard): with an ADDRESS_API_URL the embedded table is never loaded.
start_app table-not-loaded ADDRESS_API_URL=http://127.0.0.1:9/address
sleep 2
RSS_NO_TABLE=$(rss_kib "$APP_PID")
stop_app
jq -n --argjson loaded "$RSS_TABLE" --argjson loaded_used "$RSS_TABLE_USED" --argjson none "$RSS_NO_TABLE" \
    --argjson after_load "$RSS_LOADED_AFTER" \
    '{rss_kib_idle_table_loaded: $loaded, rss_kib_after_one_lookup: $loaded_used, rss_kib_idle_no_table: $none,
      table_cost_kib: ($loaded - $none), rss_kib_after_whole_run: $after_load}' | tee "$OUT/rss.json"
fi
stop_app

# ------------------------------------------------------- issue 7: cost of metrics and logging
# The fixed-cookie GET of issue 3, against servers started in turn with the defaults ("on":
# metrics on, JSON access log to a file) and with METRICS_ENABLED=0 RUST_LOG=off ("off"), and, if
# asked for, with only one of the two ("metrics": RUST_LOG=off; "logs": METRICS_ENABLED=0). A fresh
# process each time, a 2 s warm-up (not kept), then the same wrk settings as above.
if want overhead; then
section "issue 7: metrics and logging ($OVERHEAD_VARIANTS), wrk GET /register/customer (fixed cookie), $OVERHEAD_ROUNDS rounds"
for round in $(seq 1 "$OVERHEAD_ROUNDS"); do
    for variant in $OVERHEAD_VARIANTS; do
        case $variant in
            on) start_app "overhead-on-$round" ;;
            off) start_app "overhead-off-$round" METRICS_ENABLED=0 RUST_LOG=off ;;
            metrics) start_app "overhead-metrics-$round" RUST_LOG=off ;;
            logs) start_app "overhead-logs-$round" METRICS_ENABLED=0 ;;
            *) echo "OVERHEAD_VARIANTS: unknown variant $variant" >&2; exit 1 ;;
        esac
        COOKIE=$(flow_cookie)
        timeout 30 wrk -t2 -c16 -d2s -H "Cookie: $COOKIE" "$BASE/register/customer" >/dev/null
        section "issue 7: round $round, variant $variant"
        # The server's own CPU time (user + system) over the measured wrk run: per request, it does
        # not depend on how much of the cores other processes take, unlike req/s.
        TICKS0=$(proc_ticks "$APP_PID")
        run_wrk "overhead_${variant}_$round" "$BASE/register/customer" -H "Cookie: $COOKIE"
        echo "server_ticks=$(($(proc_ticks "$APP_PID") - TICKS0)) hz=$(getconf CLK_TCK)" | tee "$OUT/overhead_${variant}_$round.cpu"
        stop_app
        echo "log: $(wc -l <"$OUT/app-overhead-$variant-$round.log") lines, $(stat -c %s "$OUT/app-overhead-$variant-$round.log") bytes"
    done
done
fi

# Before 4e889a7 the RSS after sign-ups was glibc keeping freed 19 MiB Argon2 blocks, and a fixed
# mmap threshold gave each block back to the kernel (at a cost in throughput). Now the hasher keeps
# one work area per core; same load, shorter, to check that the setting no longer matters.
if want malloc; then
section "allocator check: MALLOC_MMAP_THRESHOLD_=131072, $CONCURRENCY users, 10s"
start_app malloc-check MALLOC_MMAP_THRESHOLD_=131072
"$ROOT/target/release/examples/loadgen" --base-url "$BASE" --concurrency "$CONCURRENCY" --duration 10 \
    --json-file "$OUT/malloc_check.json"
rss_kib "$APP_PID" | tee "$OUT/malloc_check_rss.txt"
stop_app
fi

section "summary"
python3 "$ROOT/scripts/bench/summary.py" "$OUT" | tee "$OUT/summary.md"
echo
echo "results in $OUT (target/bench/latest)"
