#!/usr/bin/env bash
# Lints the AWS infrastructure as code under deploy/aws/ offline, without AWS credentials:
#   1. cfn-lint on every template, for the primary and the DR region: no finding at all (errors,
#      warnings and informational findings all fail);
#   2. checkov (CloudFormation framework) on deploy/aws: no failed check and no parsing error
#      (without a Prisma Cloud key checkov knows no severities, so ANY failed check fails); every
#      skip must sit in the template's Metadata (checkov: skip: - id/comment) with a reason;
#   3. the design invariants of normal-form-app.yaml that neither tool knows: the runbook's names,
#      deregistration delay < SHUTDOWN_TIMEOUT_SECS < stopTimeout, health checks, circuit breaker,
#      secrets, backup retention, the runbook's alarm thresholds.
#
# Usage: scripts/ci/check-infra.sh            (VERBOSE=1 also prints checkov's full report)
#
# The tools are pinned and installed on first use into their own venv, INFRA_VENV (default
# target/infra-venv, git-ignored): checkov pins networkx 2.6 and packaging 23.2, which would
# downgrade what the machine's own Python has, so nothing goes into the machine's site-packages.
# cfn-lint and checkov install side by side there without conflict (pip check is clean).
# The last line is "check-infra: N passed, M failed"; the exit status is non-zero on any failure.
set -euo pipefail

CFN_LINT_VERSION=1.51.0
CHECKOV_VERSION=3.3.30
REGIONS=(ap-northeast-1 ap-northeast-3)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
INFRA_DIR="$REPO_ROOT/deploy/aws"
VENV="${INFRA_VENV:-$REPO_ROOT/target/infra-venv}"
PINS="cfn-lint==$CFN_LINT_VERSION checkov==$CHECKOV_VERSION"
started=$SECONDS

# Offline: no Prisma Cloud download, no PyPI "new version" look-up.
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE PYTHONDONTWRITEBYTECODE=1

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
failures=()
pass() { echo "PASS  $1"; passed=$((passed + 1)); }
fail() { echo "FAIL  $1"; failed=$((failed + 1)); failures+=("$1"); }

# ---------------------------------------------------------------------------------------------
# tools
# The stamp is written only after a complete install; the versions are asked after installing.
tools_ready() {
  [ -f "$VENV/.pins" ] && [ "$(cat "$VENV/.pins")" = "$PINS" ] \
    && [ -x "$VENV/bin/cfn-lint" ] && [ -x "$VENV/bin/checkov" ]
}
versions_ok() {
  "$VENV/bin/cfn-lint" --version 2>/dev/null | grep -qx "cfn-lint $CFN_LINT_VERSION" \
    && [ "$("$VENV/bin/checkov" --version 2>/dev/null)" = "$CHECKOV_VERSION" ]
}
if tools_ready; then
  tools="present"
else
  tools="installed"
  mkdir -p "$(dirname "$VENV")"
  # One install at a time (two runs may start together on one machine).
  exec 9>"$VENV.lock"
  flock 9
  if ! tools_ready; then
    echo "check-infra: installing $PINS into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check \
      "cfn-lint==$CFN_LINT_VERSION" "checkov==$CHECKOV_VERSION"
    if versions_ok; then printf '%s' "$PINS" > "$VENV/.pins"; fi
  fi
  flock -u 9
  if ! tools_ready; then
    echo "check-infra: cfn-lint $CFN_LINT_VERSION / checkov $CHECKOV_VERSION not usable in $VENV" >&2
    echo "check-infra: 0 passed, 1 failed"
    exit 1
  fi
fi
echo "check-infra: cfn-lint $CFN_LINT_VERSION, checkov $CHECKOV_VERSION ($tools, $VENV)"

cd "$REPO_ROOT"
mapfile -t templates < <(find deploy/aws -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort)
if [ "${#templates[@]}" -eq 0 ]; then
  fail "templates: none found under deploy/aws"
fi

# ---------------------------------------------------------------------------------------------
# 1. cfn-lint: every rule class, both regions, all templates in one run
if [ "${#templates[@]}" -gt 0 ]; then
  if out="$("$VENV/bin/cfn-lint" --regions "${REGIONS[@]}" --include-checks I \
      --non-zero-exit-code informational -- "${templates[@]}" 2>&1)"; then
    pass "cfn-lint ${#templates[@]} templates (${templates[*]##*/}) for ${REGIONS[*]}: 0 errors, 0 warnings, 0 informational"
  else
    printf '%s\n' "$out" | sed 's/^/    /'
    fail "cfn-lint: $(printf '%s\n' "$out" | grep -cE '^E[0-9]{4}') errors, $(printf '%s\n' "$out" | grep -cE '^W[0-9]{4}') warnings, $(printf '%s\n' "$out" | grep -cE '^I[0-9]{4}') informational"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 2. checkov: no failed check, no parsing error, every skip with a reason
set +e
"$VENV/bin/checkov" -d deploy/aws --framework cloudformation --skip-download --compact \
  -o cli -o json --output-file-path "console,$WORK/checkov.json" > "$WORK/checkov.txt" 2>&1
checkov_rc=$?
set -e
if [ "${VERBOSE:-0}" = 1 ]; then sed 's/^/    /' "$WORK/checkov.txt"; fi
if [ ! -s "$WORK/checkov.json" ]; then
  sed 's/^/    /' "$WORK/checkov.txt"
  fail "checkov: no report (exit $checkov_rc)"
else
  if verdict="$("$VENV/bin/python3" - "$WORK/checkov.json" "$checkov_rc" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
reports = report if isinstance(report, list) else [report]
s = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
failed, skipped, errors = [], [], []
for r in reports:
    for k in s:
        s[k] += r["summary"].get(k, 0)
    failed += r["results"].get("failed_checks", [])
    skipped += r["results"].get("skipped_checks", [])
    errors += r["results"].get("parsing_errors", [])
bad = False
for c in failed:
    print(f"    FAILED {c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}")
    bad = True
for e in errors:
    print(f"    PARSING ERROR {e}")
    bad = True
for c in skipped:
    reason = (c.get("check_result", {}).get("suppress_comment") or "").strip()
    print(f"    skipped {c['check_id']} on {c['resource']}: {reason or '(no reason given)'}")
    if len(reason) < 20:
        print(f"    ^ a skip needs a written reason in the template's Metadata")
        bad = True
if s["resource_count"] == 0:
    print("    checkov scanned no resource")
    bad = True
if rc != 0 and not failed:
    print(f"    checkov exited {rc}")
    bad = True
print(f"checkov: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped, "
      f"{s['parsing_errors']} parsing errors, {s['resource_count']} resources")
sys.exit(1 if bad else 0)
PY
)"; then
    printf '%s\n' "$verdict" | sed '$d'
    pass "$(printf '%s\n' "$verdict" | tail -1)"
  else
    printf '%s\n' "$verdict" | sed '$d'
    fail "$(printf '%s\n' "$verdict" | tail -1)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 3. design invariants of the main template
cat > "$WORK/invariants.py" <<'PY'
"""Design invariants of deploy/aws/normal-form-app.yaml (see the header of check-infra.sh)."""

import sys

from cfnlint.decode import decode

# Names and metrics the operations runbook uses (production) and their staging forms.
RUNBOOK_LITERALS = [
    "normal-form-app-cluster",
    "normal-form-app-service",
    "normal-form-app-aurora-cluster",
    "/ecs/normal-form-app/backend",
    "normal-form-app-alb",
    "/aws/applicationloadbalancer/normal-form-app-alb",
    "normal-form-app-staging-cluster",
    "normal-form-app-staging-service",
    "normal-form-app-staging-aurora-cluster",
    "/ecs/normal-form-app-staging/backend",
    "normal-form-app-staging-alb",
    "/aws/applicationloadbalancer/normal-form-app-staging-alb",
]


def main(path: str) -> int:
    template, matches = decode(path)
    if matches or template is None:
        print(f"{path}: does not parse: {matches}")
        return 1
    res = template["Resources"]
    params = template["Parameters"]
    names = template["Mappings"]["Names"]
    failures: list[str] = []
    count = 0

    def check(ok: bool, what: str) -> None:
        nonlocal count
        count += 1
        if not ok:
            failures.append(what)

    def resources(kind: str) -> list[dict]:
        return [r for r in res.values() if r["Type"] == kind]

    # The runbook's names, each produced by the Names mapping.
    mapped = {v for env in names.values() for v in env.values()}
    for literal in RUNBOOK_LITERALS:
        check(literal in mapped, f"runbook name {literal} is not in Mappings.Names")
    check(names["production"]["EcsCluster"] == "normal-form-app-cluster", "production cluster name")
    check(res["EcsCluster"]["Properties"]["ClusterName"] == {"Fn::FindInMap": ["Names", {"Ref": "EnvironmentName"}, "EcsCluster"]},
          "EcsCluster takes its name from the mapping")
    check(res["EcsService"]["Properties"]["ServiceName"] == {"Fn::FindInMap": ["Names", {"Ref": "EnvironmentName"}, "EcsService"]},
          "EcsService takes its name from the mapping")
    check(res["AuroraCluster"]["Properties"]["DBClusterIdentifier"] == {"Fn::FindInMap": ["Names", {"Ref": "EnvironmentName"}, "AuroraCluster"]},
          "AuroraCluster takes its name from the mapping")
    check(res["AppLogGroup"]["Properties"]["LogGroupName"] == {"Fn::FindInMap": ["Names", {"Ref": "EnvironmentName"}, "AppLogGroup"]},
          "AppLogGroup takes its name from the mapping")
    check(res["Alb"]["Properties"]["Name"] == {"Fn::FindInMap": ["Names", {"Ref": "EnvironmentName"}, "Alb"]},
          "Alb takes its name from the mapping")

    # Draining: the ALB stops routing before the app stops draining, which ends before SIGKILL.
    app = res["AppTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in app["Environment"]}
    tg = res["TargetGroup"]["Properties"]
    tg_attrs = {a["Key"]: a["Value"] for a in tg["TargetGroupAttributes"]}
    dereg = int(tg_attrs["deregistration_delay.timeout_seconds"])
    drain = int(env["SHUTDOWN_TIMEOUT_SECS"])
    stop = int(app["StopTimeout"])
    check(dereg < drain < stop, f"deregistration delay {dereg} < SHUTDOWN_TIMEOUT_SECS {drain} < stopTimeout {stop}")

    # Health checks.
    check(tg["HealthCheckPath"] == "/health" and tg["Matcher"]["HttpCode"] == "200", "target group checks /health for 200")
    check(app["HealthCheck"]["Command"] == ["CMD", "/usr/local/bin/normal-form-app", "probe"], "container health check is `normal-form-app probe`")

    # Port 8080 everywhere.
    check(env["LISTEN_ADDR"] == "0.0.0.0:8080", "LISTEN_ADDR=0.0.0.0:8080")
    check(app["PortMappings"][0]["ContainerPort"] == 8080 and tg["Port"] == 8080, "container and target group port 8080")

    # App environment and secrets.
    for key, value in {"APP_ENV": "production", "LOG_FORMAT": "json", "METRICS_CLOUDWATCH_EMF": "1", "TRUSTED_PROXY_HOPS": "1"}.items():
        check(env.get(key) == value, f"{key}={value}")
    check(env.get("PUBLIC_BASE_URL") == {"Ref": "PublicBaseUrl"}, "PUBLIC_BASE_URL from the parameter")
    secrets = {s["Name"] for s in app["Secrets"]}
    check(secrets == {"DATABASE_URL", "DATABASE_READ_URL", "SECRET_KEY", "SMTP_URL"}, f"ECS secrets are exactly the four (got {sorted(secrets)})")
    check(not ({"DATABASE_URL", "DATABASE_READ_URL", "SECRET_KEY", "SMTP_URL"} & set(env)), "no secret in plain environment")

    # Container hardening.
    for c in (cd for td in resources("AWS::ECS::TaskDefinition") for cd in td["Properties"]["ContainerDefinitions"]):
        check(c.get("ReadonlyRootFilesystem") is True, f"{c['Name']}: read-only root filesystem")
        check(c.get("User") not in (None, "root", "0", "0:0"), f"{c['Name']}: runs as a non-root user")
        check(c.get("LogConfiguration", {}).get("LogDriver") == "awslogs", f"{c['Name']}: logs via awslogs")
    check(app["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "AppLogGroup"}, "app logs go to the app log group")

    # Service deployment.
    svc = res["EcsService"]["Properties"]
    dc = svc["DeploymentConfiguration"]
    check(dc["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}, "circuit breaker with rollback")
    check(dc["MinimumHealthyPercent"] == 100 and dc["MaximumPercent"] == 200, "min healthy 100 %, max 200 %")
    check(svc["EnableExecuteCommand"] is False, "ECS Exec off")
    check(svc.get("HealthCheckGracePeriodSeconds", 0) > 0, "health check grace period")
    check(svc["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED", "tasks have no public IP")
    check(params["MinTasks"]["Default"] >= 2 and params["MinTasks"]["MinValue"] >= 2, "at least 2 tasks")
    scaling = res["ServiceCpuScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    check(scaling["TargetValue"] == 80 and scaling["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization",
          "target tracking on average CPU 80 %")

    # ALB.
    alb_attrs = {a["Key"]: a["Value"] for a in res["Alb"]["Properties"]["LoadBalancerAttributes"]}
    check(alb_attrs.get("routing.http.drop_invalid_header_fields.enabled") == "true", "ALB drops invalid headers")
    check(alb_attrs.get("access_logs.s3.enabled") == "true", "ALB access logs on")
    check(res["HttpsListener"]["Properties"]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13"), "TLS 1.3 policy")
    redirect = res["HttpRedirectListener"]["Properties"]["DefaultActions"][0]
    check(redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Protocol"] == "HTTPS", "HTTP redirects to HTTPS")

    # Aurora.
    db = res["AuroraCluster"]["Properties"]
    check(db["Engine"] == "aurora-postgresql" and str(params["AuroraEngineVersion"]["Default"]).startswith("15."), "Aurora PostgreSQL 15.x")
    check(db["StorageEncrypted"] is True and db["DeletionProtection"] is True and db["ManageMasterUserPassword"] is True,
          "Aurora encrypted, deletion-protected, master password managed by RDS")
    check(params["DbBackupRetentionDays"]["MinValue"] >= 7, "Aurora backup retention >= 7 days")
    check(len(resources("AWS::RDS::DBInstance")) == 2, "one writer and one reader")

    # AWS Backup.
    rules = res["BackupPlan"]["Properties"]["BackupPlan"]["BackupPlanRule"]
    continuous = [r for r in rules if r.get("EnableContinuousBackup")]
    daily = [r for r in rules if r.get("CopyActions")]
    check(len(continuous) == 1 and params["ContinuousBackupRetentionDays"]["MaxValue"] <= 35, "one continuous rule, retention <= 35 days")
    check(len(daily) == 1, "one daily rule with a copy to the DR vault")

    # Alarms: the runbook's thresholds.
    alarms = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"], str(a["Properties"]["Threshold"])): a["Properties"]
              for a in resources("AWS::CloudWatch::Alarm")}

    def alarm(ns: str, metric: str, threshold: str) -> dict:
        return alarms.get((ns, metric, threshold), {})

    check(alarm("Normal-Form-App/Application", "ErrorRate", "1").get("AlarmActions") == [{"Ref": "AlertsP2Topic"}], "ErrorRate >= 1 % -> P2")
    check(alarm("Normal-Form-App/Application", "ErrorRate", "5").get("AlarmActions") == [{"Ref": "AlertsP1Topic"}], "ErrorRate >= 5 % -> P1")
    check(alarm("Normal-Form-App/Application", "ResponseTime", "2000").get("AlarmActions") == [{"Ref": "AlertsP2Topic"}], "ResponseTime >= 2000 ms -> P2")
    check(alarm("AWS/ECS", "CPUUtilization", "80").get("AlarmActions") == [{"Ref": "AlertsP2Topic"}], "ECS CPU >= 80 % -> P2")
    for api in ("InventoryAPI", "AddressAPI", "RegionAPI"):
        for metric in ("ResponseTime", "SuccessRate"):
            hits = [a for a in resources("AWS::CloudWatch::Alarm")
                    if a["Properties"]["Namespace"] == "Normal-Form-App/External-API"
                    and a["Properties"]["MetricName"] == metric
                    and a["Properties"].get("Dimensions") == [{"Name": "APIName", "Value": api}]]
            check(len(hits) == 1, f"one External-API {metric} alarm for {api}")
    for a in resources("AWS::CloudWatch::Alarm"):
        p = a["Properties"]
        check(p.get("TreatMissingData") in ("notBreaching", "breaching"), f"{p['MetricName']} alarm treats missing data explicitly")

    for f in failures:
        print(f"invariant failed: {f}")
    if failures:
        print(f"{count - len(failures)} of {count} invariants hold")
        return 1
    print(f"{count} invariants hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "deploy/aws/normal-form-app.yaml"))
PY
if out="$("$VENV/bin/python3" "$WORK/invariants.py" deploy/aws/normal-form-app.yaml 2>&1)"; then
  pass "invariants deploy/aws/normal-form-app.yaml: $(printf '%s\n' "$out" | tail -1)"
else
  printf '%s\n' "$out" | sed '$d' | sed 's/^/    /'
  fail "invariants deploy/aws/normal-form-app.yaml: $(printf '%s\n' "$out" | tail -1)"
fi

# ---------------------------------------------------------------------------------------------
echo "check-infra: took $((SECONDS - started)) s (tools $tools)"
if [ "$failed" -gt 0 ]; then
  echo "check-infra: failed: ${failures[*]}" >&2
fi
echo "check-infra: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
