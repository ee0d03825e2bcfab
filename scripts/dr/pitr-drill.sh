#!/usr/bin/env bash
# Point-in-time recovery drill on real PostgreSQL (issue 17; docs/disaster-recovery.md).
#
# On a throw-away cluster of its own (another port, its own folder): WAL archiving with
# archive_timeout, a base backup, the service registering people through its JSON API, then the
# cluster is "lost" (stopped hard and its data folder, pg_wal included, deleted). Two restores from
# the base backup and the archive:
#   1. to the end of the archive, as after a real loss: the measured RPO is the window of
#      confirmed registrations lost (loss time minus the newest recovered registration), the RTO
#      the time from the loss until the service's own /health answers 200 again;
#   2. to a target time in the middle of the load: every registration confirmed (the person saw a
#      受付番号) before that time must be there, and none committed after it.
# Prints the figures and exits non-zero when a check fails; cleans up after itself.
#
# usage: scripts/dr/pitr-drill.sh            (run as root or as the postgres user)
# env:   DRILL_LOAD_SECONDS (150)  how long registrations are driven
#        DRILL_TARGET_AT    (60)   seconds into the load of the point-in-time target
#        ARCHIVE_TIMEOUT    (60)   archive_timeout in seconds (the RPO bound; ≤ 60)
#        DRILL_WORKERS      (4)    concurrent registering clients
#        DRILL_PAUSE        (0)    seconds each client waits between registrations (a light load
#                                  writes little WAL, so the RPO approaches archive_timeout)
#        BIN                       the normal-form-app binary (default: target/release, else debug)
#        DRILL_JSON                also write the figures as JSON to this file
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOAD=${DRILL_LOAD_SECONDS:-150}
TARGET_AT=${DRILL_TARGET_AT:-60}
ARCHIVE_TIMEOUT=${ARCHIVE_TIMEOUT:-60}
WORKERS=${DRILL_WORKERS:-4}
PAUSE=${DRILL_PAUSE:-0}
if [[ -z ${BIN:-} ]]; then
  BIN="$ROOT/target/release/normal-form-app"
  [[ -x $BIN ]] || BIN="$ROOT/target/debug/normal-form-app"
fi
[[ -x $BIN ]] || { echo "pitr-drill: build the service first (cargo build): $BIN not found" >&2; exit 2; }
(( ARCHIVE_TIMEOUT <= 60 )) || { echo "pitr-drill: ARCHIVE_TIMEOUT must be at most 60 s" >&2; exit 2; }
(( TARGET_AT + ARCHIVE_TIMEOUT + 10 < LOAD )) || {
  echo "pitr-drill: DRILL_TARGET_AT + ARCHIVE_TIMEOUT + 10 must be below DRILL_LOAD_SECONDS (the target must be archived by the loss)" >&2
  exit 2
}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PGBIN/initdb ]] || { echo "pitr-drill: PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

WORK=$(mktemp -d /tmp/nfa-pitr-XXXXXX)
AS_PG=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres:postgres "$WORK"
  AS_PG=(runuser -u postgres --)
elif [[ $(id -un) != postgres ]]; then
  echo "pitr-drill: run as root or as the postgres user" >&2
  exit 2
fi
pg() { "${AS_PG[@]}" "$PGBIN/$1" "${@:2}"; }
PORT=$(free_port)
APP_PORT=$(free_port)
DATA=$WORK/data
URL="postgres://postgres@127.0.0.1:$PORT/app"
APP_PID=""
DRIVER_PID=""

cleanup() {
  [[ -n $DRIVER_PID ]] && kill "$DRIVER_PID" 2>/dev/null || true
  [[ -n $APP_PID ]] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  pg pg_ctl -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql_app() { "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d app -Atqc "$1"; }

start_cluster() {
  pg pg_ctl -D "$DATA" -l "$WORK/postgres.log" -w -t 300 start >/dev/null
}

configure() {
  cat >>"$DATA/postgresql.auto.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $WORK/archive/%f && cp %p $WORK/archive/%f'
archive_timeout = ${ARCHIVE_TIMEOUT}s
CONF
}

echo "== PITR drill: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), archive_timeout ${ARCHIVE_TIMEOUT}s, load ${LOAD}s, $WORKERS clients, pause ${PAUSE}s"
"${AS_PG[@]}" mkdir -p "$WORK/archive"
pg initdb -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
configure
start_cluster
"$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE app"

mkdir -p "$WORK/app-data"
env DATABASE_URL="$URL" LISTEN_ADDR="127.0.0.1:$APP_PORT" DATA_DIR="$WORK/app-data" LOG_FORMAT=json \
  RATE_LIMIT_PER_MINUTE=100000000 RATE_LIMIT_GET_PER_MINUTE=100000000 "$BIN" serve >"$WORK/app.log" 2>&1 &
APP_PID=$!
health() { curl -s -o /dev/null -w '%{http_code}' -m 3 "http://127.0.0.1:$APP_PORT/health" || true; }
for _ in $(seq 1 120); do [[ $(health) == 200 ]] && break; sleep 0.5; done
[[ $(health) == 200 ]] || { echo "pitr-drill: the service did not come up" >&2; tail -20 "$WORK/app.log" >&2; exit 1; }
psql_app "UPDATE plan_stock SET stock = 1000000000" >/dev/null

echo "-- base backup"
pg pg_basebackup -h 127.0.0.1 -p "$PORT" -U postgres -D "$WORK/base" -c fast -X none
psql_app "SELECT pg_switch_wal()" >/dev/null

echo "-- driving registrations for ${LOAD}s"
CONFIRMED=$WORK/confirmed.log
: >"$CONFIRMED"
python3 "$ROOT/scripts/dr/drive_registrations.py" "http://127.0.0.1:$APP_PORT" "$CONFIRMED" "$LOAD" "$WORKERS" "$PAUSE" &
DRIVER_PID=$!
sleep "$TARGET_AT"
TARGET_MS=$(now_ms)
TARGET_TS=$(psql_app "SELECT to_char(to_timestamp($TARGET_MS / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
wait "$DRIVER_PID"
DRIVER_PID=""
before_loss=$(psql_app "SELECT COUNT(*) FROM users")

echo "-- losing the cluster (stopped hard, data folder and pg_wal deleted)"
LOSS_MS=$(now_ms)
pg pg_ctl -D "$DATA" -m immediate stop >/dev/null
rm -rf "$DATA"
sleep 2
code=$(health)
echo "   service /health during the loss: $code"
[[ $code == 503 ]] || { echo "pitr-drill: /health should answer 503 while the database is lost (got $code)" >&2; exit 1; }

restore() { # restore [TARGET]: base backup + archive, to TARGET or to the end of the archive
  rm -rf "$DATA"
  "${AS_PG[@]}" cp -a "$WORK/base" "$DATA"
  {
    echo "restore_command = 'cp $WORK/archive/%f %p'"
    if [[ -n ${1:-} ]]; then
      echo "recovery_target_time = '$1'"
      echo "recovery_target_action = 'promote'"
    fi
  } >>"$DATA/postgresql.auto.conf"
  "${AS_PG[@]}" touch "$DATA/recovery.signal"
  start_cluster
  for _ in $(seq 1 300); do
    [[ $(psql_app "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]] && return 0
    sleep 0.2
  done
  echo "pitr-drill: recovery did not finish" >&2
  return 1
}

echo "-- restore 1: to the end of the archive"
restore
for _ in $(seq 1 600); do [[ $(health) == 200 ]] && break; sleep 0.1; done
SERVING_MS=$(now_ms)
[[ $(health) == 200 ]] || { echo "pitr-drill: the service did not recover" >&2; exit 1; }
recovered=$(psql_app "SELECT COUNT(*) FROM users")
newest_ms=$(psql_app "SELECT COALESCE((EXTRACT(EPOCH FROM MAX(created_at)) * 1000)::bigint, 0) FROM users")
psql_app "SELECT registration_number FROM users" | sort >"$WORK/present.txt"
confirmed_total=$(wc -l <"$CONFIRMED")
lost=$(cut -d' ' -f2 "$CONFIRMED" | sort | comm -23 - "$WORK/present.txt" | wc -l)
RPO_S=$(python3 -c "print(round(($LOSS_MS - $newest_ms) / 1000, 1))")
RTO_S=$(python3 -c "print(round(($SERVING_MS - $LOSS_MS) / 1000, 1))")
echo "   registrations: $before_loss before the loss, $recovered recovered; $lost of $confirmed_total confirmed ones lost"
echo "   RPO (data window lost): ${RPO_S} s    RTO (loss → /health 200): ${RTO_S} s"

echo "-- restore 2: to $TARGET_TS"
pg pg_ctl -D "$DATA" -m fast stop >/dev/null
restore "$TARGET_TS"
psql_app "SELECT registration_number FROM users" | sort >"$WORK/at-target.txt"
awk -v t="$TARGET_MS" '$1 < t {print $2}' "$CONFIRMED" | sort >"$WORK/confirmed-before.txt"
before_target=$(wc -l <"$WORK/confirmed-before.txt")
missing=$(comm -23 "$WORK/confirmed-before.txt" "$WORK/at-target.txt" | wc -l)
after_target=$(psql_app "SELECT COUNT(*) FROM users WHERE created_at > '$TARGET_TS'")
at_target=$(wc -l <"$WORK/at-target.txt")
echo "   $at_target registrations at the target; $before_target confirmed before it, $missing of them missing; $after_target committed after it"

failed=0
(( confirmed_total > 0 )) || { echo "FAIL: no registration was confirmed during the load" >&2; failed=1; }
(( missing == 0 )) || { echo "FAIL: $missing registrations confirmed before the target are missing" >&2; failed=1; }
(( after_target == 0 )) || { echo "FAIL: $after_target registrations after the target were restored" >&2; failed=1; }
python3 -c "import sys; sys.exit(0 if $RPO_S <= 900 else 1)" || { echo "FAIL: RPO ${RPO_S} s is over 15 min" >&2; failed=1; }
python3 -c "import sys; sys.exit(0 if $RTO_S <= 3600 else 1)" || { echo "FAIL: RTO ${RTO_S} s is over 1 h" >&2; failed=1; }

if [[ -n ${DRILL_JSON:-} ]]; then
  cat >"$DRILL_JSON" <<JSON
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "postgres": "$("$PGBIN/postgres" --version | awk '{print $3}')", "archive_timeout_s": $ARCHIVE_TIMEOUT, "load_s": $LOAD, "workers": $WORKERS, "pause_s": $PAUSE, "confirmed": $confirmed_total, "lost": $lost, "rpo_s": $RPO_S, "rto_s": $RTO_S, "pitr_confirmed_before_target": $before_target, "pitr_missing": $missing, "pitr_after_target": $after_target}
JSON
fi
if (( failed )); then
  echo "pitr-drill: FAILED" >&2
  exit 1
fi
echo "pitr-drill: passed — RPO ${RPO_S} s (≤ 900), RTO ${RTO_S} s (≤ 3600); point-in-time restore kept all $before_target registrations confirmed before the target"
