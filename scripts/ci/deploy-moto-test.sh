#!/usr/bin/env bash
# Tests scripts/deploy.sh against the moto AWS emulator (moto_server on a free loopback port).
#
# Usage: scripts/ci/deploy-moto-test.sh
#
# Installs moto[server]==5.2.1 and awscli==1.45.11 with pip only when they are missing. Starts
# moto with MOTO_ECS_SERVICE_RUNNING=2: moto runs no tasks; every service created afterwards
# reports runningCount=2, pendingCount=desired-2 and, when desired <= 2, one PRIMARY deployment
# with rolloutState COMPLETED (IN_PROGRESS otherwise), frozen at creation time. update-service
# changes the service's taskDefinition but neither adds a deployment nor recomputes these
# figures. So:
#   production (desired 2) satisfies the steady-state condition -> the real bounded wait succeeds;
#   staging    (desired 3) never does (running 2/3, IN_PROGRESS) -> a short wait must time out.
# A circuit-breaker failure is simulated with a wrapper around aws that marks the PRIMARY
# deployment FAILED in describe-services answers after the update.
# Nothing leaves the machine: AWS_ENDPOINT_URL points at moto, credentials are dummies and the
# user's AWS config files are replaced by empty ones.
#
# Each check prints "ok - ..." or "not ok - ..."; the last line is
# "deploy-moto-test: N passed, M failed"; the exit status is non-zero when any check failed.
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY="$REPO_ROOT/scripts/deploy.sh"
T0=$SECONDS

WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-moto-test.XXXXXX")"
MOTO_PID=""
HTTP_PID=""
cleanup() {
  [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
  [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null && wait "$HTTP_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION CONDITION-COMMAND...
  local what="$1"
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
finish() {
  echo "# total time: $((SECONDS - T0))s"
  echo "deploy-moto-test: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# ---------------------------------------------------------------- tools

# shellcheck source=scripts/ci/aws-emulator.sh
source "$REPO_ROOT/scripts/ci/aws-emulator.sh" || { not_ok "python3 is required"; finish; }
install_moto || { not_ok "install moto[server]==$MOTO_VERSION"; finish; }
install_awscli || { not_ok "install awscli==$AWSCLI_VERSION"; finish; }
echo "# moto $(python3 -c 'import moto; print(moto.__version__)'), $(aws --version 2>&1)"

# ---------------------------------------------------------------- isolated AWS environment

isolate_aws_env

MOTO_PORT="$(free_port)"
MOTO_ECS_SERVICE_RUNNING=2 python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
if wait_http "$AWS_ENDPOINT_URL/moto-api/" 30; then
  ok "moto_server listening on 127.0.0.1:$MOTO_PORT"
else
  not_ok "moto_server did not start (log below)"
  sed 's/^/# /' "$WORK/moto.log"
  finish
fi

mkdir -p "$WORK/www"
echo ok >"$WORK/www/health"
HTTP_PORT="$(free_port)"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$HTTP_PORT" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
wait_http "http://127.0.0.1:$HTTP_PORT/health" 15 || not_ok "local health server did not start"

awsq() { aws --output text "$@"; }

# ---------------------------------------------------------------- fixtures

ECR="123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/normal-form-app"
setup() {
  local vpc subnet sg
  vpc="$(awsq ec2 create-vpc --cidr-block 10.10.0.0/16 --query Vpc.VpcId)" || return 1
  subnet="$(awsq ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.10.1.0/24 --query Subnet.SubnetId)" || return 1
  sg="$(awsq ec2 create-security-group --group-name normal-form-app --description app --vpc-id "$vpc" --query GroupId)" || return 1
  local net="awsvpcConfiguration={subnets=[$subnet],securityGroups=[$sg],assignPublicIp=DISABLED}"
  local cb="deploymentCircuitBreaker={enable=true,rollback=true},maximumPercent=200,minimumHealthyPercent=100"

  cat >"$WORK/containers.json" <<EOF
[
  {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
   "essential": true, "memoryReservation": 50},
  {"name": "app", "image": "$ECR:v1", "essential": true,
   "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
   "environment": [{"name": "LOG_FORMAT", "value": "json"}, {"name": "APP_ENV", "value": "production"}],
   "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/normal-form-app/backend",
     "awslogs-region": "ap-northeast-1", "awslogs-stream-prefix": "ecs"}},
   "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
     "interval": 30, "timeout": 5, "retries": 3}}
]
EOF
  local common=(--requires-compatibilities FARGATE --network-mode awsvpc --cpu 512 --memory 1024
    --execution-role-arn arn:aws:iam::123456789012:role/ecsTaskExecutionRole
    --task-role-arn arn:aws:iam::123456789012:role/normal-form-app-task)
  aws ecs create-cluster --cluster-name normal-form-app-cluster >/dev/null || return 1
  aws ecs register-task-definition --family normal-form-app "${common[@]}" \
    --container-definitions "file://$WORK/containers.json" --tags key=project,value=normal-form-app >/dev/null || return 1
  aws ecs create-service --cluster normal-form-app-cluster --service-name normal-form-app-service \
    --task-definition normal-form-app:1 --desired-count 2 --launch-type FARGATE \
    --network-configuration "$net" --deployment-configuration "$cb" >/dev/null || return 1

  # staging: desired 3 > the 2 "running" moto reports, so it never reaches a steady state.
  # Its two revisions are registered directly (no history recorded by deploy.sh).
  aws ecs create-cluster --cluster-name normal-form-app-staging-cluster >/dev/null || return 1
  sed "s#$ECR:v1#$ECR:s1#" "$WORK/containers.json" >"$WORK/containers-s1.json"
  sed "s#$ECR:v1#$ECR:s2#" "$WORK/containers.json" >"$WORK/containers-s2.json"
  aws ecs register-task-definition --family normal-form-app-staging "${common[@]}" \
    --container-definitions "file://$WORK/containers-s1.json" >/dev/null || return 1
  aws ecs register-task-definition --family normal-form-app-staging "${common[@]}" \
    --container-definitions "file://$WORK/containers-s2.json" >/dev/null || return 1
  aws ecs create-service --cluster normal-form-app-staging-cluster --service-name normal-form-app-staging-service \
    --task-definition normal-form-app-staging:2 --desired-count 3 --launch-type FARGATE \
    --network-configuration "$net" --deployment-configuration "$cb" >/dev/null || return 1
}
if setup 2>"$WORK/setup.err"; then
  ok "fixtures: clusters, task definitions normal-form-app:1 (app $ECR:v1), services"
else
  not_ok "fixtures could not be created"
  sed 's/^/# /' "$WORK/setup.err"
  finish
fi

# What moto reports for the freshly created services (documents the emulator's behaviour).
awsq ecs describe-services --cluster normal-form-app-cluster --services normal-form-app-service \
  --query 'services[0].[desiredCount,runningCount,pendingCount,deployments[0].rolloutState,length(deployments)]' \
  | sed 's/^/# moto production service: desired running pending rolloutState deployments = /'
awsq ecs describe-services --cluster normal-form-app-staging-cluster --services normal-form-app-staging-service \
  --query 'services[0].[desiredCount,runningCount,pendingCount,deployments[0].rolloutState,length(deployments)]' \
  | sed 's/^/# moto staging service:    desired running pending rolloutState deployments = /'

# ---------------------------------------------------------------- runner

# run NAME [VAR=value ...] -- ARGS...: runs deploy.sh; sets RC, OUT (stdout file), ERR (stderr file), DUR.
run() {
  local name="$1"
  shift
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  OUT="$WORK/$name.out"
  ERR="$WORK/$name.err"
  local start=$SECONDS
  env DEPLOY_POLL_SECONDS=1 "${envs[@]}" bash "$DEPLOY" "$@" >"$OUT" 2>"$ERR"
  RC=$?
  DUR=$((SECONDS - start))
  {
    echo "# \$ deploy.sh $* (exit $RC, ${DUR}s)"
    sed 's/^/#   | /' "$OUT"
    sed 's/^/#   ! /' "$ERR"
  } >>"$WORK/transcript.txt"
}
show_last() { sed 's/^/#   | /' "$OUT"; sed 's/^/#   ! /' "$ERR"; }
expect() { # expect DESCRIPTION CODE [REGEX-IN-STDOUT+STDERR ...]
  local what="$1" code="$2" re
  shift 2
  if [ "$RC" != "$code" ]; then
    not_ok "$what (exit $RC, expected $code)"
    show_last
    return
  fi
  for re in "$@"; do
    if ! cat "$OUT" "$ERR" | grep -Eq -- "$re"; then
      not_ok "$what (output lacks /$re/)"
      show_last
      return
    fi
  done
  ok "$what"
}

# ---------------------------------------------------------------- usage errors

run bad-env -- staginggg status
expect "unknown ENV -> exit 2 with a message" 2 "unknown ENV 'staginggg'"
run no-env --
expect "missing ENV -> exit 2" 2 "missing ENV"
run no-image -- production deploy
expect "deploy without IMAGE -> exit 2" 2 "deploy needs an IMAGE"
run empty-image -- production deploy ""
expect "deploy with an empty IMAGE -> exit 2" 2 "deploy needs an IMAGE"
run bad-action -- production restart
expect "unknown action -> exit 2" 2 "unknown action 'restart'"
run no-action -- production
expect "missing action -> exit 2" 2 "missing action"
run bad-wait DEPLOY_WAIT_SECONDS=soon -- production status
expect "non-numeric DEPLOY_WAIT_SECONDS -> exit 2" 2 "DEPLOY_WAIT_SECONDS must be"

# A PATH with everything the script could need except aws.
mkdir -p "$WORK/noaws-bin"
for tool in bash env python3 date sleep mktemp rm cat sed tr id hostname basename dirname curl grep; do
  src="$(command -v "$tool" 2>/dev/null)" || continue
  [ "$tool" = python3 ] && src="$(python3 -c 'import sys; print(sys.executable)')"
  ln -sf "$src" "$WORK/noaws-bin/$tool"
done
run no-aws PATH="$WORK/noaws-bin" -- production status
expect "aws missing from PATH -> exit 2 naming aws" 2 "required tool 'aws' not found"
mkdir -p "$WORK/nopy-bin"
ln -sf "$(command -v bash)" "$WORK/nopy-bin/bash"
printf '#!/bin/sh\nexit 0\n' >"$WORK/nopy-bin/aws"
chmod +x "$WORK/nopy-bin/aws"
run no-python PATH="$WORK/nopy-bin" -- production status
expect "python3 missing from PATH -> exit 2 naming python3" 2 "required tool 'python3' not found"

# ---------------------------------------------------------------- deploy / status / rollback

run status-1 -- production status
expect "status before deploy: normal-form-app:1, image v1" 0 \
  "^task definition: normal-form-app:1$" "^image: +$ECR:v1 \(container app\)" \
  "desired=2 running=2 pending=0" "rolloutState=COMPLETED"

run deploy-v2 DEPLOY_WAIT_SECONDS=60 DEPLOY_HEALTH_URL="http://127.0.0.1:$HTTP_PORT/health" DEPLOY_HEALTH_TRIES=2 \
  DEPLOY_HEALTH_INTERVAL=1 -- production deploy "$ECR:v2"
expect "deploy production v2: bounded wait reaches the steady state, health 200 (${DUR}s)" 0 \
  "normal-form-app:1 -> normal-form-app:2" "steady state reached" "health check .*: 200"

# The new revision is the old one with only the app image changed.
aws ecs describe-task-definition --task-definition normal-form-app:1 --include TAGS >"$WORK/td1.json"
aws ecs describe-task-definition --task-definition normal-form-app:2 --include TAGS >"$WORK/td2.json"
same_but_image() {
  python3 - "$WORK/td1.json" "$WORK/td2.json" "$ECR:v2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ta, tb = a["taskDefinition"], b["taskDefinition"]
for k in ("taskDefinitionArn", "revision", "registeredAt", "registeredBy", "status"):
    ta.pop(k, None); tb.pop(k, None)
app_b = next(c for c in tb["containerDefinitions"] if c["name"] == "app")
assert app_b["image"] == sys.argv[3], app_b["image"]
app_b["image"] = next(c for c in ta["containerDefinitions"] if c["name"] == "app")["image"]
assert ta == tb, (ta, tb)
assert a.get("tags") == b.get("tags"), (a.get("tags"), b.get("tags"))
PY
}
check "revision 2 equals revision 1 except the app image (sidecar, roles, env, logs, tags kept)" same_but_image

run status-2 -- production status
expect "status after deploy: normal-form-app:2, image v2" 0 \
  "^task definition: normal-form-app:2$" "^image: +$ECR:v2 \(container app\)" \
  "aws-for-fluent-bit:stable \(container log-router\)" "recorded history.*: 1 2$"

run rollback-1 DEPLOY_WAIT_SECONDS=60 -- production rollback
expect "rollback production: 2 -> 1 by the recorded history (${DUR}s)" 0 \
  "normal-form-app:2 \($ECR:v2\) -> normal-form-app:1 \($ECR:v1\)" "rule: recorded deployment history" \
  "steady state reached"

run status-3 -- production status
expect "status after rollback: normal-form-app:1, image v1" 0 \
  "^task definition: normal-form-app:1$" "^image: +$ECR:v1 \(container app\)" "recorded history.*: 1$"

run deploy-v3 DEPLOY_WAIT_SECONDS=0 -- production deploy "$ECR:v3"
expect "deploy v3 with DEPLOY_WAIT_SECONDS=0 does not wait and says so" 0 \
  "normal-form-app:1 -> normal-form-app:3" "DEPLOY_WAIT_SECONDS=0: not waiting"

run rollback-2 DEPLOY_WAIT_SECONDS=0 -- production rollback
expect "rollback after deploy v2, rollback, deploy v3 returns to 1 (what ran before 3), not 2" 0 \
  "normal-form-app:3 \($ECR:v3\) -> normal-form-app:1 \($ECR:v1\)"

run rollback-3 DEPLOY_WAIT_SECONDS=0 -- production rollback
expect "rollback from revision 1 (nothing earlier) -> exit 1, service untouched" 1 "nothing to roll back to"
run status-4 -- production status
expect "status still normal-form-app:1" 0 "^task definition: normal-form-app:1$"

run rollback-staging DEPLOY_WAIT_SECONDS=0 -- staging rollback
expect "rollback without recorded history: highest ACTIVE revision below the current one (staging 2 -> 1)" 0 \
  "normal-form-app-staging:2 \($ECR:s2\) -> normal-form-app-staging:1 \($ECR:s1\)" \
  "rule: highest ACTIVE revision below"

# ---------------------------------------------------------------- the bounded wait, failures

run deploy-timeout DEPLOY_WAIT_SECONDS=3 -- staging deploy "$ECR:s3"
if [ "$RC" = 3 ] && [ "$DUR" -ge 3 ] && [ "$DUR" -le 30 ] &&
  grep -q "timed out after 3s waiting for a steady state" "$ERR" &&
  grep -q "scripts/deploy.sh staging rollback" "$ERR" && grep -q "circuit breaker" "$ERR"; then
  ok "staging never steady in moto (running 2/3, IN_PROGRESS): DEPLOY_WAIT_SECONDS=3 times out, exit 3, ${DUR}s, says how to roll back"
else
  not_ok "bounded wait on a service that never becomes steady (exit $RC, ${DUR}s)"
  show_last
fi

# Circuit breaker: an aws wrapper marks the PRIMARY deployment FAILED once update-service was called.
mkdir -p "$WORK/cb-bin"
REAL_AWS="$(command -v aws)"
cat >"$WORK/cb-bin/aws" <<EOF
#!/usr/bin/env bash
case " \$* " in
  *" update-service "*) touch "$WORK/cb-updated" ;;
esac
case " \$* " in
  *" describe-services "*)
    if [ -e "$WORK/cb-updated" ]; then
      "$REAL_AWS" "\$@" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for s in d.get("services", []):
    for dep in s.get("deployments", []):
        if dep.get("status") == "PRIMARY":
            dep["rolloutState"] = "FAILED"
            dep["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
json.dump(d, sys.stdout)'
      exit "\${PIPESTATUS[0]}"
    fi ;;
esac
exec "$REAL_AWS" "\$@"
EOF
chmod +x "$WORK/cb-bin/aws"
run deploy-cb PATH="$WORK/cb-bin:$PATH" DEPLOY_WAIT_SECONDS=30 -- production deploy "$ECR:v4"
expect "rolloutState FAILED (simulated circuit breaker) ends the wait at once with exit 4" 4 \
  "the deployment FAILED: ECS deployment circuit breaker"
[ "$DUR" -le 20 ] || not_ok "circuit-breaker failure was noticed only after ${DUR}s"

run deploy-unhealthy DEPLOY_WAIT_SECONDS=30 DEPLOY_HEALTH_URL="http://127.0.0.1:$HTTP_PORT/missing" \
  DEPLOY_HEALTH_TRIES=2 DEPLOY_HEALTH_INTERVAL=0 -- production deploy "$ECR:v5"
expect "health URL answering 404 after the steady state -> exit 5, suggests rollback" 5 \
  "did not answer 200 after 2 tries" "scripts/deploy.sh production rollback"

aws ecs delete-service --cluster normal-form-app-staging-cluster --service normal-form-app-staging-service --force >/dev/null
run status-gone -- staging status
expect "status of a deleted service -> exit 1 with a message" 1 "service normal-form-app-staging-service not found"

if [ "$failed" -ne 0 ]; then
  echo "# transcript of the deploy.sh runs:"
  cat "$WORK/transcript.txt"
fi
finish
