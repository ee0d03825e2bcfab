# Shared by the bench scripts (source it from the repository root; not run on its own).

# The builds and the PostgreSQL server the one-loop scripts (closed_ab, cpu_profile, pinned_ratio) use.
BIN=${BIN:-$PWD/target/release/normal-form-app}
LOADGEN=${LOADGEN:-$PWD/target/release/examples/loadgen}
PGURL=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}

# start_server BIN DB_URL PORT DATA_DIR LOG [VAR=VALUE...]: the server with the bench settings
# (JSON logs, no practical rate limit, 20 connections) in the background, extra variables last.
# Sets SERVER_PID; returns once /health/live answers, fails (with the log's tail) if it never does.
start_server() {
    local bin=$1 db_url=$2 port=$3 data_dir=$4 log=$5
    shift 5
    mkdir -p "$data_dir"
    env DATABASE_URL="$db_url" LISTEN_ADDR="127.0.0.1:$port" DATA_DIR="$data_dir" LOG_FORMAT=json \
        RATE_LIMIT_PER_MINUTE=100000000 RATE_LIMIT_GET_PER_MINUTE=100000000 DB_MAX_CONNECTIONS=20 "$@" "$bin" serve >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 120); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/health/live" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
    done
    echo "the server did not come up:" >&2
    tail -20 "$log" >&2
    return 1
}

# proc_ticks PID...: user + system clock ticks used so far by those processes.
proc_ticks() {
    local total=0 p
    for p in "$@"; do
        if [[ -r /proc/$p/stat ]]; then total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); fi
    done
    echo "$total"
}

# fresh_server DB PORT DATA_DIR LOG [VAR=VALUE...]: a new database DB on $PGURL and $BIN serving it
# (start_server), with every plan's stock raised so that no loop sells out. Pair with drop_server.
fresh_server() {
    local db=$1
    shift
    psql -q "$PGURL/postgres" -c "CREATE DATABASE $db"
    start_server "$BIN" "$PGURL/$db" "$@"
    psql -q "$PGURL/$db" -c "UPDATE plan_stock SET stock = 1000000000"
}

# drop_server DB: stops the server fresh_server started, if it did, and drops its database.
drop_server() {
    if [[ -n ${SERVER_PID:-} ]]; then kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; fi
    psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
}
