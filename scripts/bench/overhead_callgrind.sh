#!/usr/bin/env bash
# Issue 7, counted instead of timed: instructions the release server executes per
# `GET /register/customer` (fixed flow cookie, keep-alive, one client) with metrics and the JSON
# access log on (defaults) and off (METRICS_ENABLED=0 RUST_LOG=off), under valgrind's callgrind.
# Instruction counts do not depend on what else the machine is doing. Start-up is cancelled out by
# running each variant twice (N1 and N2 requests) and dividing the difference by N2 - N1.
#
#   cargo build --release && bash scripts/bench/overhead_callgrind.sh
#
# REQUEST_PATH=/api/v1/postal-codes/1500002 counts another GET instead (still with the cookie).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/target/release/normal-form-app
N1=${N1:-200}
N2=${N2:-1200}
REQUEST_PATH=${REQUEST_PATH:-/register/customer}
OUT=$PWD/target/bench/callgrind-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

drive() { # PORT N
    python3 - "$1" "$2" "$REQUEST_PATH" <<'PY'
import http.client, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30); c.request("GET", "/health/live"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.request("GET", "/register/customer"); r = c.getresponse(); r.read()
cookie = r.getheader("set-cookie").split(";")[0]
for _ in range(50 + n):
    c.request("GET", path, headers={"Cookie": cookie}); r = c.getresponse(); r.read(); assert r.status == 200
PY
}

run() { # NAME PORT N [ENV=VALUE ...]
    local name=$1 port=$2 n=$3 data
    shift 3
    data=$(mktemp -d)
    env "$@" DATA_DIR="$data" LISTEN_ADDR=127.0.0.1:$port LOG_FORMAT=json \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.out" "$BIN" serve >"$OUT/$name.log" 2>"$OUT/$name.err" &
    local pid=$!
    drive "$port" "$n"
    kill -TERM $pid
    wait $pid || true
    rm -rf "$data"
}

total() { grep -h '^summary' "$OUT/$1.out" | awk '{print $2}'; }

run on1 18701 "$N1" & run on2 18702 "$N2" & run off1 18703 "$N1" METRICS_ENABLED=0 RUST_LOG=off & run off2 18704 "$N2" METRICS_ENABLED=0 RUST_LOG=off & wait
on=$(( ($(total on2) - $(total on1)) / (N2 - N1) ))
off=$(( ($(total off2) - $(total off1)) / (N2 - N1) ))
echo "instructions per GET $REQUEST_PATH: on=$on off=$off extra=$((on - off)) ($(python3 -c "print(f'{($on-$off)*100/$off:.1f}')") %)"
echo "callgrind files: $OUT (callgrind_annotate FILE for the functions)"
