#!/usr/bin/env bash
# Property-based checks of the live JSON API against the committed OpenAPI description
# (docs/api-v1.openapi.json) with schemathesis: no server errors, and every response's status,
# content type and body as documented — once anonymously and once as a native client holding a
# flow token.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
command -v schemathesis >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
DATA_DIR="$work" LISTEN_ADDR="127.0.0.1:$port" LOG_FORMAT=json RATE_LIMIT_PER_MINUTE=1000000 RATE_LIMIT_GET_PER_MINUTE=100000000 \
  "$root/target/debug/normal-form-app" serve >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -sf "$base/health/live" >/dev/null && break; sleep 0.2; done
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
schemathesis run "$root/docs/api-v1.openapi.json" --url "$base" --checks "$checks" --max-examples 50 --seed 1
token=$(curl -sf -X POST "$base/api/v1/flows" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
schemathesis run "$root/docs/api-v1.openapi.json" --url "$base" -H "Authorization: Bearer $token" --checks "$checks" --max-examples 50 --seed 2
if grep -q '"status":5[0-9][0-9]' "$work/log"; then
  echo "schemathesis.sh: the server answered 5xx:" >&2
  grep '"status":5[0-9][0-9]' "$work/log" >&2
  exit 1
fi
