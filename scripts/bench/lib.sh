# Shared by the bench scripts (source it; not run on its own).

# start_server BIN DB_URL PORT DATA_DIR LOG [VAR=VALUE...]: the server with the bench settings
# (JSON logs, no practical rate limit, 20 connections) in the background, extra variables last.
# Sets SERVER_PID; returns once /health/live answers, fails (with the log's tail) if it never does.
start_server() {
    local bin=$1 db_url=$2 port=$3 data_dir=$4 log=$5
    shift 5
    mkdir -p "$data_dir"
    env DATABASE_URL="$db_url" LISTEN_ADDR="127.0.0.1:$port" DATA_DIR="$data_dir" LOG_FORMAT=json \
        RATE_LIMIT_PER_MINUTE=100000000 DB_MAX_CONNECTIONS=20 "$@" "$bin" serve >"$log" 2>&1 &
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
