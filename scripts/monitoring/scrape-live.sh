#!/usr/bin/env bash
# Starts the app (SQLite in a temp folder), drives a little traffic through the form and the
# postal-code API — a page view, a validation error, a lookup — and saves one /metrics scrape to
# the file given as $1, so the dashboard and alert checks run against what the app really exports.
set -euo pipefail
out="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/target/debug/normal-form-app"
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
DATA_DIR="$work" LISTEN_ADDR="127.0.0.1:$port" LOG_FORMAT=json "$bin" serve >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -sf "$base/health/live" >/dev/null && break; sleep 0.2; done
jar="$work/cookies"
page=$(curl -sf -c "$jar" -b "$jar" "$base/register/customer")
token=$(printf '%s' "$page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" --data-urlencode "phone=12" "$base/register/customer"
curl -s -o /dev/null "$base/api/v1/postal-codes/1500002"
curl -sf "$base/health" >/dev/null
curl -sf "$base/metrics" >"$out"
echo "scrape-live: $(grep -c '^nfa_' "$out") nfa_* samples saved to $out"
