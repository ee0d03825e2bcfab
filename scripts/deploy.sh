#!/usr/bin/env bash
# Deploys, rolls back and reports the normal-form-app ECS service (operations runbook:
# "./scripts/deploy.sh production rollback").
#
# Usage:
#   scripts/deploy.sh ENV deploy IMAGE   register a new task-definition revision that differs from
#                                        the running one only in the app container's image, point
#                                        the service at it, wait for a steady state, health-check
#   scripts/deploy.sh ENV rollback       point the service back at the previous revision (rule
#                                        below), wait for a steady state, health-check
#   scripts/deploy.sh ENV status         running revision and image, desired/running/pending
#                                        counts, state of the last deployment, recorded history
#   ENV: production -> cluster normal-form-app-cluster,         service normal-form-app-service
#        staging    -> cluster normal-form-app-staging-cluster, service normal-form-app-staging-service
#
# Environment:
#   AWS_REGION / AWS_DEFAULT_REGION  region (default ap-northeast-1); credentials as usual for the
#                                    aws CLI (profile, env, role); AWS_ENDPOINT_URL is honoured
#   DEPLOY_WAIT_SECONDS     how long to wait for a steady state (default 900; 0 = do not wait)
#   DEPLOY_POLL_SECONDS     interval between describe-services polls (default 15)
#   DEPLOY_HEALTH_URL       if set, after the steady state: curl -fsS -m 10 URL must answer 200
#                           (e.g. https://normal-form-app.com/health through the ALB)
#   DEPLOY_HEALTH_TRIES     health-check attempts (default 5)
#   DEPLOY_HEALTH_INTERVAL  seconds between attempts (default 5)
#   DEPLOY_CONTAINER_NAME   container whose image is replaced (default app; when the task
#                           definition has no container of that name, the first one is used)
#
# Steady state: the service points at the target revision, the deployment started by this run is
# the only one and PRIMARY, its rolloutState is COMPLETED, and runningCount == desiredCount.
# A FAILED rolloutState (deployment circuit breaker) or the service being moved to another
# revision (circuit-breaker rollback) ends the wait at once. `aws ecs wait services-stable` is not
# used: it has no overall deadline of ours.
#
# "Previous revision" (rollback):
#   Every deploy and rollback records the service's revision history in a tag on the ECS service,
#   `deploy:history` = revision numbers, oldest first, the last one being the revision this script
#   put in place (family in `deploy:family`, last action in `deploy:last-action`). A deploy
#   appends the revision that was running (if it is not already the last entry) and then the new
#   one. Rollback takes the current revision C:
#     - if C is in the history: the entry just below C's last occurrence, i.e. the revision that
#       was running before C was put in place (walking further down past entries equal to C or
#       no longer ACTIVE);
#     - if C is not in the history (the service was changed outside this script): the last entry,
#       the revision that was running before that outside change (same skipping);
#     - with no usable history (never deployed by this script, or tagging not allowed): the
#       highest ACTIVE revision of the family lower than C
#       (list-task-definitions --family-prefix FAMILY --status ACTIVE --sort DESC).
#   So deploy v2, rollback, deploy v3, rollback returns to v1 (not the bad v2), and repeated
#   rollbacks walk back through what actually ran. The history is then truncated to the target.
#
# Exit codes:
#   0 done (steady and healthy, or not waited for with DEPLOY_WAIT_SECONDS=0)
#   1 an AWS call failed, the service or task definition was not found, nothing to roll back to
#   2 usage error: unknown ENV or action, missing IMAGE, bad setting, missing tool (aws, python3,
#     curl when DEPLOY_HEALTH_URL is set)
#   3 no steady state within DEPLOY_WAIT_SECONDS (the deployment goes on in ECS)
#   4 the deployment failed (rolloutState FAILED, or the service was moved off the new revision)
#   5 the health check at DEPLOY_HEALTH_URL did not answer 200
set -euo pipefail

PROG="deploy.sh"
SELF="${BASH_SOURCE[0]}"

usage_text() { # builtins only: it must work when tools are missing from PATH
  printf '%s\n' "usage: scripts/deploy.sh ENV deploy IMAGE" \
    "       scripts/deploy.sh ENV rollback" \
    "       scripts/deploy.sh ENV status" \
    "  ENV is production or staging. See the header of scripts/deploy.sh for settings and exit codes."
}

# usage_error ENGLISH [JAPANESE]
usage_error() {
  echo "$PROG: error: $1" >&2
  if [ -n "${2:-}" ]; then echo "$PROG: エラー: $2" >&2; fi
  usage_text >&2
  exit 2
}

fail() { # fail CODE ENGLISH [JAPANESE]
  local code="$1"
  echo "$PROG: error: $2" >&2
  if [ -n "${3:-}" ]; then echo "$PROG: エラー: $3" >&2; fi
  exit "$code"
}

warn() { echo "$PROG: warning: $*" >&2; }
say() { echo "$PROG: $*"; }

# ---------------------------------------------------------------- arguments

case "${1:-}" in
  -h | --help | help)
    sed -n '2,/^set -euo pipefail$/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

ENV_NAME="${1:-}"
ACTION="${2:-}"
IMAGE=""

case "$ENV_NAME" in
  production)
    CLUSTER="normal-form-app-cluster"
    SERVICE="normal-form-app-service"
    ;;
  staging)
    CLUSTER="normal-form-app-staging-cluster"
    SERVICE="normal-form-app-staging-service"
    ;;
  "") usage_error "missing ENV (production or staging)" "環境名（production または staging）を指定してください" ;;
  *) usage_error "unknown ENV '$ENV_NAME' (expected production or staging)" "不明な環境名です: $ENV_NAME（production または staging）" ;;
esac

case "$ACTION" in
  deploy)
    if [ $# -lt 3 ] || [ -z "${3:-}" ]; then
      usage_error "deploy needs an IMAGE, e.g. 123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/normal-form-app:v2" \
        "deploy にはイメージ（IMAGE）の指定が必要です"
    fi
    IMAGE="$3"
    [ $# -eq 3 ] || usage_error "too many arguments for deploy" "引数が多すぎます"
    case "$IMAGE" in
      *[[:space:]]*) usage_error "IMAGE must not contain spaces: '$IMAGE'" "イメージ名に空白は使えません" ;;
    esac
    ;;
  rollback | status)
    [ $# -eq 2 ] || usage_error "too many arguments for $ACTION" "引数が多すぎます"
    ;;
  "") usage_error "missing action (deploy IMAGE, rollback or status)" "操作（deploy / rollback / status）を指定してください" ;;
  *) usage_error "unknown action '$ACTION' (expected deploy, rollback or status)" "不明な操作です: $ACTION（deploy / rollback / status）" ;;
esac

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-ap-northeast-1}}"
WAIT_SECONDS="${DEPLOY_WAIT_SECONDS:-900}"
POLL_SECONDS="${DEPLOY_POLL_SECONDS:-15}"
HEALTH_URL="${DEPLOY_HEALTH_URL:-}"
HEALTH_TRIES="${DEPLOY_HEALTH_TRIES:-5}"
HEALTH_INTERVAL="${DEPLOY_HEALTH_INTERVAL:-5}"
CONTAINER_NAME="${DEPLOY_CONTAINER_NAME:-app}"

is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac }
is_uint "$WAIT_SECONDS" || usage_error "DEPLOY_WAIT_SECONDS must be a whole number of seconds, got '$WAIT_SECONDS'" "DEPLOY_WAIT_SECONDS は秒数（整数）で指定してください"
{ is_uint "$POLL_SECONDS" && [ "$POLL_SECONDS" -ge 1 ]; } || usage_error "DEPLOY_POLL_SECONDS must be a whole number >= 1, got '$POLL_SECONDS'"
{ is_uint "$HEALTH_TRIES" && [ "$HEALTH_TRIES" -ge 1 ]; } || usage_error "DEPLOY_HEALTH_TRIES must be a whole number >= 1, got '$HEALTH_TRIES'"
is_uint "$HEALTH_INTERVAL" || usage_error "DEPLOY_HEALTH_INTERVAL must be a whole number of seconds, got '$HEALTH_INTERVAL'"

# ---------------------------------------------------------------- tools

need_tool() { # need_tool NAME WHY
  command -v "$1" >/dev/null 2>&1 ||
    usage_error "required tool '$1' not found in PATH ($2)" "必要なコマンド '$1' が見つかりません（$2）"
}
need_tool aws "the AWS CLI: python3 -m pip install awscli"
need_tool python3 "used to read and edit the JSON of the AWS answers"
if [ -n "$HEALTH_URL" ] && [ "$ACTION" != status ]; then
  need_tool curl "DEPLOY_HEALTH_URL is set"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/deploy.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- JSON helpers (python3)

# One program, several subcommands; every input is a file written by the aws CLI.
PY_HELPER=$(
  cat <<'PY'
import json, re, sys, datetime

def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)

def ts(value):
    # The v1 CLI prints timestamps as given by the service (epoch seconds), v2 as ISO text.
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)

def td_name(arn):
    return (arn or "-").rsplit("/", 1)[-1]

def revision_of(arn):
    m = re.search(r":(\d+)$", arn or "")
    return int(m.group(1)) if m else None

def family_of(arn):
    return td_name(arn).rsplit(":", 1)[0]

def pick_container(containers, wanted):
    for c in containers:
        if c.get("name") == wanted:
            return c
    return containers[0] if containers else None

def tags_of(path):
    # describe-services --include TAGS output (tags of the service) or list-tags-for-resource output
    try:
        data = load(path)
    except (OSError, ValueError):
        return {}
    if "services" in data:
        data = service(path) or {}
    return {t.get("key"): t.get("value") for t in data.get("tags") or []}

def history_of(tags, family):
    if tags.get("deploy:family") != family:
        return []
    return [int(x) for x in (tags.get("deploy:history") or "").split() if x.isdigit()]

def encode_history(hist):
    hist = list(hist)[-40:]
    while hist and len(" ".join(map(str, hist))) > 256:
        hist = hist[1:]
    return " ".join(map(str, hist))

def service(path):
    data = load(path)
    svcs = [s for s in data.get("services") or [] if s.get("status") != "INACTIVE"]
    return svcs[0] if svcs else None

cmd, args = sys.argv[1], sys.argv[2:]

if cmd == "service-info":
    # -> arn, taskDefinition, desired, running, pending, deployments, circuit breaker on/off
    s = service(args[0])
    if s is None:
        sys.exit(3)
    cb = (s.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker")
    if cb is None:
        cb_text = "unknown"
    elif cb.get("enable"):
        cb_text = "on-rollback" if cb.get("rollback") else "on"
    else:
        cb_text = "off"
    print("\t".join(str(x) for x in [s.get("serviceArn"), s.get("taskDefinition"), s.get("desiredCount", 0),
                                      s.get("runningCount", 0), s.get("pendingCount", 0),
                                      len(s.get("deployments") or []), cb_text]))

elif cmd == "td-info":
    # describe-task-definition output, container name -> family, revision, arn, container, image
    td = load(args[0])["taskDefinition"]
    c = pick_container(td.get("containerDefinitions") or [], args[1]) or {}
    print("\t".join(str(x) for x in [td.get("family"), td.get("revision"), td.get("taskDefinitionArn"),
                                      c.get("name", "-"), c.get("image", "-")]))

elif cmd == "new-taskdef":
    # describe-task-definition output, skeleton, image, container name -> register input JSON
    described, skeleton, image, wanted = load(args[0]), load(args[1]), args[2], args[3]
    td = dict(described["taskDefinition"])
    for key in ("taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
                "registeredAt", "registeredBy", "deregisteredAt", "deleteRequestedAt"):
        td.pop(key, None)
    allowed = set(skeleton)
    dropped = sorted(k for k in td if k not in allowed)
    for k in dropped:
        td.pop(k)
    if dropped:
        print("note: fields not accepted by register-task-definition left out: " + ", ".join(dropped), file=sys.stderr)
    td = {k: v for k, v in td.items() if v is not None}
    containers = td.get("containerDefinitions") or []
    c = pick_container(containers, wanted)
    if c is None:
        print("the task definition has no container definitions", file=sys.stderr)
        sys.exit(3)
    if c.get("name") != wanted:
        if len(containers) > 1:
            print(f"warning: no container named '{wanted}'; replacing the image of the first container '{c.get('name')}'", file=sys.stderr)
    c["image"] = image
    tags = described.get("tags") or []
    if tags and "tags" in allowed:
        td["tags"] = tags
    json.dump(td, sys.stdout, indent=2, ensure_ascii=False)

elif cmd == "register-info":
    td = load(args[0])["taskDefinition"]
    print("\t".join(str(x) for x in [td.get("taskDefinitionArn"), td.get("revision")]))

elif cmd == "primary-deployment":
    # update-service output -> id of the PRIMARY deployment
    s = load(args[0]).get("service") or {}
    prim = [d for d in s.get("deployments") or [] if d.get("status") == "PRIMARY"]
    print(prim[0].get("id", "") if prim else "")

elif cmd == "steady":
    # describe-services output, target td arn, deployment id -> one line; exit 0 steady, 10 not yet, 11 failed
    s, target, dep_id = service(args[0]), args[1], args[2]
    if s is None:
        print("the service is gone (MISSING/INACTIVE)")
        sys.exit(11)
    deps = s.get("deployments") or []
    ours = next((d for d in deps if dep_id and d.get("id") == dep_id), None)
    if ours is None:
        ours = next((d for d in deps if d.get("status") == "PRIMARY" and d.get("taskDefinition") == target), None)
    desired, running, pending = s.get("desiredCount", 0), s.get("runningCount", 0), s.get("pendingCount", 0)
    state = (ours or {}).get("rolloutState")
    reason = (ours or {}).get("rolloutStateReason") or ""
    line = (f"rolloutState={state or '-'} running={running}/{desired} pending={pending} "
            f"deployments={len(deps)}")
    if state == "FAILED":
        print(f"{line}; the deployment FAILED: {reason}")
        sys.exit(11)
    if s.get("taskDefinition") != target:
        print(f"{line}; the service now points at {td_name(s.get('taskDefinition'))}, not {td_name(target)} "
              "(deployment circuit-breaker rollback, or another deployment replaced this one)")
        sys.exit(11)
    if ours is None:
        print(f"{line}; the deployment started by this run is no longer listed")
        sys.exit(11)
    steady = (ours.get("status") == "PRIMARY" and len(deps) == 1 and state in (None, "COMPLETED")
              and running == desired)
    print(line + (f" ({reason})" if reason and not steady else ""))
    sys.exit(0 if steady else 10)

elif cmd == "history-after-deploy":
    # tags json, family, old revision, new revision -> new history value
    tags, family, old, new = tags_of(args[0]), args[1], int(args[2]), int(args[3])
    hist = history_of(tags, family)
    if not hist or hist[-1] != old:
        hist.append(old)
    hist.append(new)
    print(encode_history(hist))

elif cmd == "rollback-target":
    # tags json, list-task-definitions json, family, current revision
    #   -> target arn, target revision, rule, new history value
    tags, listed, family, cur = tags_of(args[0]), load(args[1]), args[2], int(args[3])
    active = {}
    for arn in listed.get("taskDefinitionArns") or []:
        if family_of(arn) == family and revision_of(arn) is not None:
            active[revision_of(arn)] = arn
    hist = history_of(tags, family)
    rule = None
    if hist:
        if cur in hist:
            last = len(hist) - 1 - hist[::-1].index(cur)
            hist = hist[:last]          # drop C and what came after it
        while hist and (hist[-1] == cur or hist[-1] not in active):
            hist.pop()
        if hist:
            rule = "recorded deployment history (service tag deploy:history)"
    if rule is None:
        lower = sorted((r for r in active if r < cur), reverse=True)
        if not lower:
            print(f"no ACTIVE revision of {family} lower than {cur} and no usable recorded history", file=sys.stderr)
            sys.exit(3)
        hist = [lower[0]]
        rule = "highest ACTIVE revision below the current one (no usable recorded history)"
    target = hist[-1]
    print("\t".join([active[target], str(target), rule, encode_history(hist)]))

elif cmd == "tags-json":
    # family, history, last action -> --tags JSON (only characters ECS accepts in tag values)
    def clean(v):
        return re.sub(r"[^A-Za-z0-9 _.:/=+@-]", "_", v)[:256]
    print(json.dumps([{"key": "deploy:family", "value": clean(args[0])},
                      {"key": "deploy:history", "value": clean(args[1])},
                      {"key": "deploy:last-action", "value": clean(args[2])}]))

elif cmd == "status":
    # env, describe-services, describe-task-definition, tags, container name
    env, s, td, tags, wanted = args[0], service(args[1]), load(args[2])["taskDefinition"], tags_of(args[3]), args[4]
    containers = td.get("containerDefinitions") or []
    c = pick_container(containers, wanted) or {}
    def created(d):
        v = d.get("createdAt")
        if isinstance(v, (int, float)):
            return float(v)
        try:
            return datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    deps = sorted(s.get("deployments") or [], key=created)
    last = deps[-1] if deps else {}
    out = []
    out.append(f"environment:     {env} ({s.get('clusterArn', '-').rsplit('/', 1)[-1]} / {s.get('serviceName')})")
    out.append(f"task definition: {td.get('family')}:{td.get('revision')}")
    out.append(f"image:           {c.get('image', '-')} (container {c.get('name', '-')})")
    for other in containers:
        if other is not c:
            out.append(f"                 {other.get('image', '-')} (container {other.get('name', '-')})")
    out.append(f"counts:          desired={s.get('desiredCount', 0)} running={s.get('runningCount', 0)} pending={s.get('pendingCount', 0)}")
    out.append(f"deployments:     {len(deps)}")
    if last:
        out.append(f"last deployment: {last.get('id', '-')} {last.get('status', '-')} {td_name(last.get('taskDefinition'))} "
                   f"rolloutState={last.get('rolloutState', '-')}")
        out.append(f"  reason:        {last.get('rolloutStateReason') or '-'}")
        out.append(f"  created:       {ts(last.get('createdAt'))}  updated: {ts(last.get('updatedAt'))}")
    if tags.get("deploy:history"):
        out.append(f"recorded history (deploy:history, oldest first): {tags.get('deploy:history')}")
    if tags.get("deploy:last-action"):
        out.append(f"last action by deploy.sh: {tags.get('deploy:last-action')}")
    print("\n".join(out))

else:
    sys.exit(f"unknown helper command {cmd}")
PY
)

py() { python3 -c "$PY_HELPER" "$@"; }

# ---------------------------------------------------------------- AWS helpers

# aws_call OUTFILE ARGS...: runs the aws CLI (JSON output); on failure prints its message and exits 1.
aws_call() {
  local out="$1"
  shift
  if ! aws --region "$REGION" --output json "$@" >"$out" 2>"$TMP/aws.err"; then
    echo "$PROG: error: 'aws $1 $2' failed:" >&2
    sed 's/^/  /' "$TMP/aws.err" >&2
    echo "$PROG: エラー: AWS CLI の呼び出しに失敗しました（aws $1 $2）" >&2
    exit 1
  fi
}

# Reads the service with its tags: sets SERVICE_ARN CUR_TD_ARN NDEPLOY CIRCUIT_BREAKER
# (file $TMP/svc.json, tags copied to $TMP/tags.json).
read_service() {
  if aws --region "$REGION" --output json ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
    --include TAGS >"$TMP/svc.json" 2>"$TMP/aws.err"; then
    cp "$TMP/svc.json" "$TMP/tags.json"
  else
    warn "describe-services --include TAGS failed ($(tr '\n' ' ' <"$TMP/aws.err")); reading without tags (no recorded history)"
    echo '{"tags": []}' >"$TMP/tags.json"
    aws_call "$TMP/svc.json" ecs describe-services --cluster "$CLUSTER" --services "$SERVICE"
  fi
  if ! py service-info "$TMP/svc.json" >"$TMP/svc.tsv"; then
    fail 1 "service $SERVICE not found in cluster $CLUSTER (region $REGION)" \
      "サービス $SERVICE がクラスター $CLUSTER に見つかりません"
  fi
  IFS=$'\t' read -r SERVICE_ARN CUR_TD_ARN _ _ _ NDEPLOY CIRCUIT_BREAKER <"$TMP/svc.tsv"
}

# describe_td ARN: sets TD_FAMILY TD_REVISION TD_CONTAINER TD_IMAGE (file $TMP/td.json).
describe_td() {
  aws_call "$TMP/td.json" ecs describe-task-definition --task-definition "$1" --include TAGS
  py td-info "$TMP/td.json" "$CONTAINER_NAME" >"$TMP/td.tsv" || fail 1 "could not read task definition $1"
  IFS=$'\t' read -r TD_FAMILY TD_REVISION _ TD_CONTAINER TD_IMAGE <"$TMP/td.tsv"
}

# record_history FAMILY HISTORY ACTION_TEXT: tags the service; a failure is only a warning.
record_history() {
  local tags
  tags="$(py tags-json "$1" "$2" "$3")"
  if ! aws --region "$REGION" --output json ecs tag-resource --resource-arn "$SERVICE_ARN" --tags "$tags" \
    >/dev/null 2>"$TMP/aws.err"; then
    warn "could not record the revision history on the service (ecs tag-resource: $(tr '\n' ' ' <"$TMP/aws.err"))"
    warn "a later rollback falls back to the highest ACTIVE revision below the running one"
  fi
}

now_utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }
who() { printf '%s@%s' "${USER:-$(id -un 2>/dev/null || echo unknown)}" "$(hostname 2>/dev/null || echo unknown)"; }

# wait_steady TARGET_ARN DEPLOYMENT_ID
wait_steady() {
  local target="$1" dep_id="$2" start deadline line rc last=""
  if [ "$WAIT_SECONDS" -eq 0 ]; then
    say "DEPLOY_WAIT_SECONDS=0: not waiting for a steady state (ECS carries on with the rollout)."
    say "check it with: scripts/deploy.sh $ENV_NAME status"
    return 0
  fi
  say "waiting up to ${WAIT_SECONDS}s for a steady state (poll every ${POLL_SECONDS}s) ..."
  start=$SECONDS
  deadline=$((SECONDS + WAIT_SECONDS))
  while :; do
    if aws --region "$REGION" --output json ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
      >"$TMP/poll.json" 2>"$TMP/aws.err"; then
      rc=0
      line="$(py steady "$TMP/poll.json" "$target" "$dep_id")" || rc=$?
      if [ "$line" != "$last" ]; then
        say "  [$((SECONDS - start))s] $line"
        last="$line"
      fi
      case "$rc" in
        0)
          say "steady state reached after $((SECONDS - start))s."
          return 0
          ;;
        11)
          echo "$PROG: error: the deployment did not succeed: $line" >&2
          echo "$PROG: エラー: デプロイが失敗しました（サーキットブレーカーによるロールバックの可能性があります）" >&2
          echo "$PROG: see: scripts/deploy.sh $ENV_NAME status" >&2
          exit 4
          ;;
        10) ;;
        *) fail 1 "could not interpret describe-services output" ;;
      esac
    else
      warn "describe-services failed, retrying: $(tr '\n' ' ' <"$TMP/aws.err")"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$PROG: error: timed out after ${WAIT_SECONDS}s waiting for a steady state of $SERVICE on $(basename "$target") (last: ${last:-no answer})." >&2
      echo "$PROG: the update is still under way in ECS." >&2
      case "$CIRCUIT_BREAKER" in
        on-rollback) echo "$PROG: the deployment circuit breaker is on with rollback: if the tasks keep failing, ECS rolls back by itself." >&2 ;;
        on) echo "$PROG: the deployment circuit breaker is on WITHOUT rollback: a failing deployment is only marked FAILED." >&2 ;;
        off) echo "$PROG: the deployment circuit breaker is off on this service: ECS keeps retrying a failing deployment." >&2 ;;
        *) echo "$PROG: the answer did not say whether the deployment circuit breaker is on; if it is on with rollback, ECS rolls back a failing deployment by itself." >&2 ;;
      esac
      echo "$PROG: check: scripts/deploy.sh $ENV_NAME status    roll back now: scripts/deploy.sh $ENV_NAME rollback" >&2
      echo "$PROG: エラー: ${WAIT_SECONDS}秒以内に安定状態になりませんでした。status で確認し、必要なら rollback を実行してください。" >&2
      exit 3
    fi
    local left=$((deadline - SECONDS))
    sleep "$((left < POLL_SECONDS ? (left > 0 ? left : 1) : POLL_SECONDS))"
  done
}

health_check() {
  [ -n "$HEALTH_URL" ] || return 0
  local i code
  for ((i = 1; i <= HEALTH_TRIES; i++)); do
    code="$(curl -fsS -m 10 -o /dev/null -w '%{http_code}' "$HEALTH_URL" 2>"$TMP/curl.err")" || true
    if [ "$code" = "200" ]; then
      say "health check $HEALTH_URL: 200 (try $i/$HEALTH_TRIES)"
      return 0
    fi
    warn "health check $HEALTH_URL: ${code:-no answer} $(tr '\n' ' ' <"$TMP/curl.err")(try $i/$HEALTH_TRIES)"
    if [ "$i" -lt "$HEALTH_TRIES" ]; then sleep "$HEALTH_INTERVAL"; fi
  done
  echo "$PROG: error: health check $HEALTH_URL did not answer 200 after $HEALTH_TRIES tries." >&2
  echo "$PROG: roll back with: scripts/deploy.sh $ENV_NAME rollback" >&2
  echo "$PROG: エラー: ヘルスチェックが 200 を返しませんでした。必要なら rollback を実行してください。" >&2
  exit 5
}

# ---------------------------------------------------------------- actions

do_status() {
  read_service
  describe_td "$CUR_TD_ARN"
  py status "$ENV_NAME" "$TMP/svc.json" "$TMP/td.json" "$TMP/tags.json" "$CONTAINER_NAME"
}

do_deploy() {
  read_service
  [ "$NDEPLOY" -le 1 ] || warn "the service already has $NDEPLOY deployments (a rollout is under way); continuing"
  describe_td "$CUR_TD_ARN"
  local old_family="$TD_FAMILY" old_rev="$TD_REVISION" old_image="$TD_IMAGE" container="$TD_CONTAINER"
  [ "$old_image" != "$IMAGE" ] || warn "the running revision already uses $IMAGE; registering a new revision anyway"

  aws_call "$TMP/skeleton.json" ecs register-task-definition --generate-cli-skeleton input
  py new-taskdef "$TMP/td.json" "$TMP/skeleton.json" "$IMAGE" "$CONTAINER_NAME" >"$TMP/new-td.json" ||
    fail 1 "could not build the new task definition from $old_family:$old_rev"
  aws_call "$TMP/registered.json" ecs register-task-definition --cli-input-json "file://$TMP/new-td.json"
  local new_arn new_rev
  py register-info "$TMP/registered.json" >"$TMP/registered.tsv" || fail 1 "could not read the register-task-definition answer"
  IFS=$'\t' read -r new_arn new_rev <"$TMP/registered.tsv"
  say "registered $old_family:$new_rev (container $container: $old_image -> $IMAGE)"

  if ! aws --region "$REGION" --output json ecs update-service --cluster "$CLUSTER" --service "$SERVICE" \
    --task-definition "$new_arn" >"$TMP/updated.json" 2>"$TMP/aws.err"; then
    sed 's/^/  /' "$TMP/aws.err" >&2
    fail 1 "update-service failed; $old_family:$new_rev is registered but the service still runs $old_family:$old_rev" \
      "update-service に失敗しました。サービスは $old_family:$old_rev のままです"
  fi
  local dep_id
  dep_id="$(py primary-deployment "$TMP/updated.json")"
  say "deploy $ENV_NAME: $SERVICE $old_family:$old_rev -> $old_family:$new_rev (deployment ${dep_id:-?})"

  record_history "$old_family" "$(py history-after-deploy "$TMP/tags.json" "$old_family" "$old_rev" "$new_rev")" \
    "deploy $old_rev to $new_rev at $(now_utc) by $(who)"

  wait_steady "$new_arn" "$dep_id"
  health_check
  say "done: $SERVICE runs $old_family:$new_rev ($IMAGE)"
}

do_rollback() {
  read_service
  describe_td "$CUR_TD_ARN"
  local family="$TD_FAMILY" cur_rev="$TD_REVISION" cur_image="$TD_IMAGE"
  aws_call "$TMP/active.json" ecs list-task-definitions --family-prefix "$family" --status ACTIVE --sort DESC
  local target_arn target_rev rule history
  if ! py rollback-target "$TMP/tags.json" "$TMP/active.json" "$family" "$cur_rev" >"$TMP/target.tsv" 2>"$TMP/py.err"; then
    fail 1 "nothing to roll back to: $(cat "$TMP/py.err")" "ロールバック先のリビジョンがありません"
  fi
  IFS=$'\t' read -r target_arn target_rev rule history <"$TMP/target.tsv"
  describe_td "$target_arn"
  local target_image="$TD_IMAGE"
  say "rollback $ENV_NAME: $SERVICE $family:$cur_rev ($cur_image) -> $family:$target_rev ($target_image)"
  say "  rule: $rule"

  if ! aws --region "$REGION" --output json ecs update-service --cluster "$CLUSTER" --service "$SERVICE" \
    --task-definition "$target_arn" >"$TMP/updated.json" 2>"$TMP/aws.err"; then
    sed 's/^/  /' "$TMP/aws.err" >&2
    fail 1 "update-service failed; the service still runs $family:$cur_rev" "update-service に失敗しました"
  fi
  local dep_id
  dep_id="$(py primary-deployment "$TMP/updated.json")"
  record_history "$family" "$history" "rollback $cur_rev to $target_rev at $(now_utc) by $(who)"

  wait_steady "$target_arn" "$dep_id"
  health_check
  say "done: $SERVICE runs $family:$target_rev ($target_image)"
}

case "$ACTION" in
  deploy) do_deploy ;;
  rollback) do_rollback ;;
  status) do_status ;;
esac
