#!/usr/bin/env bash
# Checks every `aws ...` command of the operations runbook against the real AWS CLI.
#
# Usage: scripts/ci/check-runbook-aws-commands.sh [RUNBOOK.md]
#   default RUNBOOK: ../shared/spec/operations-runbook.md beside the repository
#
# For each fenced code block (bash/sh/shell/unlabelled) it joins backslash-continued lines, takes
# every command that starts with `aws`, cuts off what follows an unquoted `|`, `;`, `&&` or `||`
# (e.g. `| jq ...`; reported separately), substitutes what an operator's shell would:
# `$(date ...)` is run, `$((...))` is evaluated with example values, the runbook's literal
# placeholders get example values:
#   STREAM_NAME   -> a log stream that exists in the emulator (ecs/app/<task id>)
#   ALB_NAME      -> app/normal-form-app-alb/50dc6c495c0c9188 (the LoadBalancer dimension form)
#   CURRENT_COUNT -> 2
# and runs the command with the real CLI (awscli==1.45.11, installed when missing) against moto
# (moto[server]==5.2.1, installed when missing) on a free loopback port, seeded with what the
# runbook takes for granted: the ECS cluster and service, the Aurora cluster, the app's log group
# /ecs/normal-form-app/backend with one stream.
#
# Reported per command: "parses" (the CLI built and sent the request; the emulator's answer is
# shown), "FAILS TO PARSE" with the CLI's message (and the closest real option names), and
# "CANNOT WORK AS WRITTEN" / "caveat" with the reason (option values, filter-pattern semantics
# against this app's JSON logs, log groups that cannot exist, time ranges and units, shell
# variables the runbook never sets, the jq part).
#
# The runbook is read-only for this repository, so the script exits 0 whatever it finds (non-zero
# only when it cannot run at all); the list at the end is meant to stay visible in CI logs.
# Nothing leaves the machine: AWS_ENDPOINT_URL points at moto, credentials are dummies.
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNBOOK="${1:-$REPO_ROOT/../shared/spec/operations-runbook.md}"

if [ ! -f "$RUNBOOK" ]; then
  echo "check-runbook-aws-commands: runbook not found at $RUNBOOK; nothing checked"
  exit 0
fi
RUNBOOK="$(cd "$(dirname "$RUNBOOK")" && pwd)/$(basename "$RUNBOOK")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/runbook-aws.XXXXXX")"
MOTO_PID=""
cleanup() {
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools

# shellcheck source=scripts/ci/aws-emulator.sh
source "$REPO_ROOT/scripts/ci/aws-emulator.sh" || {
  echo "check-runbook-aws-commands: python3 is required" >&2
  exit 2
}
install_moto || echo "# warning: could not install moto; checking the parse only"
install_awscli || {
  echo "check-runbook-aws-commands: the aws CLI is missing and could not be installed" >&2
  exit 2
}

# ---------------------------------------------------------------- emulator

isolate_aws_env
MOTO_PORT="$(free_port)"
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
EMULATOR=no
if python3 -c 'import moto.server' 2>/dev/null; then
  python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  if wait_http "$AWS_ENDPOINT_URL/moto-api/" 30; then EMULATOR=yes; fi
fi

STREAM="ecs/app/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
seed() {
  local vpc subnet sg
  vpc="$(aws --output text ec2 create-vpc --cidr-block 10.20.0.0/16 --query Vpc.VpcId)" || return 1
  subnet="$(aws --output text ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.20.1.0/24 --query Subnet.SubnetId)" || return 1
  sg="$(aws --output text ec2 create-security-group --group-name app --description app --vpc-id "$vpc" --query GroupId)" || return 1
  aws ecs create-cluster --cluster-name normal-form-app-cluster >/dev/null || return 1
  aws ecs register-task-definition --family normal-form-app --requires-compatibilities FARGATE --network-mode awsvpc \
    --cpu 512 --memory 1024 --container-definitions \
    '[{"name":"app","image":"123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/normal-form-app:v1","essential":true}]' \
    >/dev/null || return 1
  aws ecs create-service --cluster normal-form-app-cluster --service-name normal-form-app-service \
    --task-definition normal-form-app:1 --desired-count 2 --launch-type FARGATE \
    --network-configuration "awsvpcConfiguration={subnets=[$subnet],securityGroups=[$sg]}" >/dev/null || return 1
  aws rds create-db-cluster --db-cluster-identifier normal-form-app-aurora-cluster --engine aurora-postgresql \
    --master-username app --master-user-password 'example-password-1' >/dev/null || return 1
  aws logs create-log-group --log-group-name /ecs/normal-form-app/backend || return 1
  aws logs create-log-stream --log-group-name /ecs/normal-form-app/backend --log-stream-name "$STREAM" || return 1
}
if [ "$EMULATOR" = yes ]; then
  if seed >"$WORK/seed.log" 2>&1; then
    echo "# moto $(python3 -c 'import moto; print(moto.__version__)') on 127.0.0.1:$MOTO_PORT, seeded: ECS cluster/service, Aurora cluster, log group /ecs/normal-form-app/backend"
  else
    echo "# warning: seeding the emulator failed:"
    sed 's/^/#   /' "$WORK/seed.log"
  fi
else
  echo "# warning: moto is not running; only the CLI's parsing is checked (requests fail to connect)"
fi
echo "# $(aws --version 2>&1)"
echo "# runbook: $RUNBOOK"

# ---------------------------------------------------------------- the check

python3 - "$RUNBOOK" "$REPO_ROOT" "$STREAM" "$EMULATOR" <<'PY'
import datetime, difflib, json, os, re, shlex, subprocess, sys

runbook, repo, stream, emulator = sys.argv[1:5]
text = open(runbook, encoding="utf-8").read()
lines = text.split("\n")

EXAMPLES = {
    "STREAM_NAME": stream,
    "ALB_NAME": "app/normal-form-app-alb/50dc6c495c0c9188",
}
SHELL_VARS = {"CURRENT_COUNT": "2"}

def assigned_in_runbook(var):
    return re.search(r"(^|[\s;(])(export\s+)?%s=" % re.escape(var), text, re.M) is not None

# ---- extraction: fenced blocks, headings, continuation lines
commands = []   # dicts: line, heading, raw
heading = ""
in_block, lang, block = False, "", []
for no, line in enumerate(lines, 1):
    m = re.match(r"^\s*```\s*([\w-]*)", line)
    if m:
        if not in_block:
            in_block, lang, block = True, m.group(1).lower(), []
        else:
            in_block = False
            if lang in ("", "bash", "sh", "shell", "console", "zsh"):
                logical, start = "", None
                for bno, bline in block:
                    s = bline.strip()
                    if start is None:
                        if not s or s.startswith("#"):
                            continue
                        start = bno
                    if s.endswith("\\"):
                        logical += s[:-1].rstrip() + " "
                        continue
                    logical += s
                    first = logical.lstrip()
                    if first.startswith("$ "):
                        first = first[2:]
                    if re.match(r"aws(\s|$)", first):
                        commands.append({"line": start, "heading": heading, "raw": first})
                    logical, start = "", None
        continue
    if in_block:
        block.append((no, line))
    elif line.startswith("#"):
        heading = line.lstrip("#").strip()

# ---- shell-ish helpers
def find_closing(s, i):
    """s[i] is just after '$(' ; returns the index of the matching ')'."""
    depth, q = 1, None
    while i < len(s):
        c = s[i]
        if q:
            if c == q:
                q = None
        elif c in "'\"":
            q = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1

def split_pipeline(s):
    """Cut at the first unquoted |, ;, && or || outside $( )."""
    q, depth, i = None, 0, 0
    while i < len(s):
        c = s[i]
        if q:
            if c == q:
                q = None
        elif c in "'\"":
            q = c
        elif s.startswith("$(", i):
            depth += 1
            i += 1
        elif c == "(" and depth:
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif depth == 0 and (c in "|;" or s.startswith("&&", i)):
            return s[:i].rstrip(), s[i:].strip()
        i += 1
    return s.strip(), ""

def substitute(cmd):
    """Returns (text, notes, problems)."""
    notes, problems = [], []
    out, i = "", 0
    while i < len(cmd):
        if cmd.startswith("$((", i):
            j = cmd.find("))", i)
            expr = cmd[i + 3:j]
            names = re.findall(r"[A-Za-z_]\w*", expr)
            unset_names = [n for n in names if not assigned_in_runbook(n)]
            vals = {n: SHELL_VARS.get(n, "0") for n in names}
            e = re.sub(r"[A-Za-z_]\w*", lambda m: vals[m.group(0)], expr)
            e_unset = re.sub(r"[A-Za-z_]\w*", lambda m: "0" if m.group(0) in unset_names else vals[m.group(0)], expr)
            if not re.fullmatch(r"[\d\s+\-*/()]+", e):
                problems.append(f"cannot evaluate $(({expr}))")
                out += "0"
            else:
                val = int(eval(e.replace("/", "//")))
                out += str(val)
                notes.append(f"$(({expr})) evaluated with {', '.join(f'{n}={vals[n]}' for n in names)} -> {val}")
                if unset_names:
                    val_unset = int(eval(e_unset.replace("/", "//")))
                    problems.append(
                        f"{', '.join(unset_names)} is never set in the runbook: in an operator's shell it is empty, "
                        f"bash evaluates $(({expr})) to {val_unset} without any error, so the command silently uses "
                        f"{val_unset}. Read the current value first (e.g. aws ecs describe-services ... "
                        f"--query 'services[0].desiredCount' --output text) and assign it")
            i = j + 2
            continue
        if cmd.startswith("$(", i):
            j = find_closing(cmd, i + 2)
            inner = cmd[i + 2:j]
            try:
                argv = shlex.split(inner)
            except ValueError as exc:
                argv = []
                problems.append(f"cannot split $({inner}): {exc}")
            if argv and argv[0] == "date":
                r = subprocess.run(argv, capture_output=True, text=True)
                if r.returncode != 0:
                    problems.append(f"$({inner}) failed: {r.stderr.strip()}")
                val = r.stdout.strip()
                out += val
                notes.append(f"$({inner}) -> {val}")
            else:
                problems.append(f"command substitution $({inner}) not evaluated (only date is)")
                out += "UNRESOLVED"
            i = j + 1
            continue
        out += cmd[i]
        i += 1
    for name, val in EXAMPLES.items():
        if re.search(r"\b%s\b" % name, out):
            out = re.sub(r"\b%s\b" % name, val, out)
            notes.append(f"placeholder {name} -> {val}")
    left = re.findall(r"\$\{?([A-Za-z_]\w*)", out)
    for v in left:
        problems.append(f"shell variable ${v} left unresolved")
    return out, notes, problems

PARSE_MARKERS = ("Unknown options", "Invalid choice", "argument ", "Error parsing parameter",
                 "Parameter validation failed", "Invalid type for parameter", "Unknown parameter",
                 "expected one argument", "the following arguments are required", "Invalid value for parameter")

def cli_message(stderr):
    keep = []
    for l in stderr.splitlines():
        s = l.strip()
        if not s or s.startswith(("usage:", "To see help text", "aws help", "aws <command>", "Note: AWS CLI version 2")):
            continue
        keep.append(s)
    return " / ".join(keep)[:600]

def kebab(name):
    return "--" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()

def real_options(service, op):
    r = subprocess.run(["aws", service, op, "--generate-cli-skeleton", "input"], capture_output=True, text=True)
    try:
        return [kebab(k) for k in json.loads(r.stdout)]
    except ValueError:
        return []

def run_aws(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return 124, "", "timed out after 120s"
    return r.returncode, r.stdout, r.stderr

def summarize_answer(out):
    try:
        d = json.loads(out)
    except ValueError:
        return out.strip()[:120] or "empty answer"
    parts = []
    for k, v in d.items():
        if isinstance(v, list):
            parts.append(f"{k}: {len(v)}")
    return ", ".join(parts) or "ok"

def opt(argv, name):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None

def opts_all(argv, name):
    vals, i = [], 0
    while i < len(argv):
        if argv[i] == name:
            j = i + 1
            while j < len(argv) and not argv[j].startswith("--"):
                vals.append(argv[j]); j += 1
            i = j
        else:
            i += 1
    return vals

def parse_time(v):
    if v is None:
        return None
    if re.fullmatch(r"\d{13}", v):
        return datetime.datetime.fromtimestamp(int(v) / 1000, datetime.timezone.utc)
    if re.fullmatch(r"\d{9,10}", v):
        return datetime.datetime.fromtimestamp(int(v), datetime.timezone.utc)
    try:
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)

readme = ""
try:
    readme = open(os.path.join(repo, "README.md"), encoding="utf-8").read()
except OSError:
    pass
def repo_mentions(s):
    for base in ("src", "deploy"):
        for root, _, files in os.walk(os.path.join(repo, base)):
            for f in files:
                try:
                    if s in open(os.path.join(root, f), encoding="utf-8", errors="ignore").read():
                        return True
                except OSError:
                    pass
    return False
emf_default_off = re.search(r"METRICS_CLOUDWATCH_EMF`\s*\|\s*`0`", readme) is not None
app_logs_json = re.search(r"LOG_FORMAT`[^\n]*json", readme) is not None

def semantics(argv, rc, stderr, tail):
    """-> (cannot_work: [str], caveats: [str])"""
    bad, cav = [], []
    svc, op = (argv[1], argv[2]) if len(argv) > 2 else ("", "")
    now = datetime.datetime.now(datetime.timezone.utc)
    if svc == "cloudwatch" and op == "get-metric-statistics":
        start, end = parse_time(opt(argv, "--start-time")), parse_time(opt(argv, "--end-time"))
        period = int(opt(argv, "--period") or "60")
        keep = 3 * 3600 if period < 60 else 15 * 86400 if period < 300 else 63 * 86400 if period < 3600 else 455 * 86400
        if start and (now - start).total_seconds() > keep:
            bad.append(f"hard-coded time range from {opt(argv, '--start-time')}: CloudWatch keeps "
                       f"{'5-minute' if period == 300 else f'{period}s'} datapoints for "
                       f"{keep // 86400} days only, so this returns no datapoints now "
                       "(use $(date -d '1 hour ago' -u +%Y-%m-%dT%H:%M:%S) like the P1 section)")
        if start and end and (end - start).total_seconds() / max(period, 1) > 1440:
            bad.append("more than 1,440 datapoints requested: CloudWatch rejects the request (InvalidParameterCombination)")
        ns = opt(argv, "--namespace") or ""
        if ns.startswith("Normal-Form-App/"):
            if repo_mentions(ns):
                cav.append(f"custom namespace {ns} is published only by the app's CloudWatch EMF output"
                           + (" (METRICS_CLOUDWATCH_EMF, default 0 per README): with the default task "
                              "definition no datapoints exist" if emf_default_off else ""))
            else:
                bad.append(f"nothing in this repository publishes the namespace {ns}: no datapoints")
        dims = opts_all(argv, "--dimensions")
        for d in dims:
            if "Name=LoadBalancer" in d:
                cav.append("ALB_NAME must be the LoadBalancer dimension value, i.e. the end of the ALB's ARN "
                           "'app/<name>/<id>' (aws elbv2 describe-load-balancers --names normal-form-app-alb "
                           "--query 'LoadBalancers[0].LoadBalancerArn'), not the plain name; the name alone "
                           "matches no metric")
    if svc == "logs":
        group = opt(argv, "--log-group-name") or ""
        st = opt(argv, "--start-time")
        if st is not None and not re.fullmatch(r"\d{13}", st):
            bad.append(f"--start-time {st} is not milliseconds since the epoch (CloudWatch Logs wants ms; "
                       "seconds land in January 1970)")
        if group.startswith("/aws/applicationloadbalancer/"):
            bad.append(f"log group {group} would not exist: Application Load Balancers deliver access logs only "
                       "to S3 (access_logs.s3.*), never to CloudWatch Logs; query them in S3/Athena, or use the "
                       "ALB's HTTPCode_Target_4XX_Count / HTTPCode_ELB_4XX_Count metrics"
                       + (" (the emulator, seeded with the runbook's other log group, answers ResourceNotFound)"
                          if "ResourceNotFound" in stderr else ""))
        pattern = opt(argv, "--filter-pattern")
        if pattern and pattern.strip().startswith("["):
            if group == "/ecs/normal-form-app/backend" and app_logs_json:
                bad.append(f"space-delimited pattern {pattern!r} on the app's log group: the app writes one "
                           "JSON object per line without spaces between members (README LOG_FORMAT=json, "
                           "docs/runbook.md 3.4), e.g. {\"timestamp\":\"...\",\"level\":\"ERROR\",\"request_id\":"
                           "\"...\",\"method\":\"POST\",\"path\":\"/...\",\"message\":\"request failed\",...}, so the line splits into fields at the spaces inside values "
                           "and level=ERROR never lines up: nothing matches. Use '{ $.level = \"ERROR\" }' "
                           "(and $.path for the API)")
            if pattern.count("...") > 1:
                bad.append(f"pattern {pattern!r} puts an ellipsis on both sides of status_code, so the "
                           "pattern does not fix which field status_code is (CloudWatch's documented patterns "
                           "use one ellipsis; whether the service even accepts two cannot be checked offline): "
                           "it does not select the ALB's elb_status_code, the 9th field of an access-log line. "
                           "Name the leading fields instead, e.g. [type, time, elb, client, target, req_t, "
                           "target_t, resp_t, elb_status_code=4*, ...]")
        if op == "filter-log-events" and st is None:
            cav.append("no --start-time: searches the whole retention of every stream in the group; the v1 "
                       "CLI follows every nextToken, which can take very long on a production group")
        if op == "get-log-events":
            cav.append("STREAM_NAME must be a real stream (awslogs: ecs/app/<task id>): list them with "
                       "aws logs describe-log-streams --log-group-name /ecs/normal-form-app/backend "
                       "--order-by LastEventTime --descending --max-items 5")
            if "--start-from-head" not in argv:
                cav.append("without --start-from-head one call returns only the newest page (up to 1 MB / "
                           "10,000 events) of the window and the CLI does not page get-log-events: add "
                           "--start-from-head to read the hour from its start")
    if tail.startswith("|") and "jq" in tail:
        if "uniq -c" in tail and (opt(argv, "--log-group-name") or "") == "/ecs/normal-form-app/backend" and app_logs_json:
            bad.append("the jq part (" + tail + ") counts whole messages; each message is the app's entire "
                       "JSON line with its own timestamp and request_id, so every line is distinct and uniq -c "
                       "prints 1 for each: no grouping. Use jq -r '.events[].message | fromjson | "
                       ".event // .message' (docs/runbook.md), and jq must be installed")
        else:
            cav.append("needs jq installed on the operator's machine")
    return bad, cav

# ---- run
results = []
print()
for n, c in enumerate(commands, 1):
    aws_part, tail = split_pipeline(c["raw"])
    text_cmd, notes, problems = substitute(aws_part)
    try:
        argv = shlex.split(text_cmd)
    except ValueError as exc:
        argv, problems = [], problems + [f"cannot be split into words: {exc}"]
    status, detail, fix = "", "", ""
    rc, out, err = (None, "", "")
    if argv:
        rc, out, err = run_aws(argv)
        msg = cli_message(err)
        if rc != 0 and any(mk in err for mk in PARSE_MARKERS):
            status, detail = "FAILS TO PARSE", msg
            m = re.search(r"Unknown options: (.*)", err)
            if m and len(argv) > 2:
                real = real_options(argv[1], argv[2])
                sugg = []
                for bad_opt in [o.strip() for o in m.group(1).split(",") if o.strip().startswith("--")]:
                    close = difflib.get_close_matches(bad_opt, real, n=1, cutoff=0.6)
                    if close:
                        sugg.append((bad_opt, close[0]))
                if sugg:
                    fixed = list(argv)
                    for a, b in sugg:
                        fixed = [b if x == a else x for x in fixed]
                    frc, fout, ferr = run_aws(fixed)
                    fmsg = "parses" if frc == 0 or not any(mk in ferr for mk in PARSE_MARKERS) else "still fails: " + cli_message(ferr)
                    fix = ("real option names: " + ", ".join(f"{a} -> {b}" for a, b in sugg)
                           + f"; with them the command {fmsg}")
        elif rc == 0:
            status, detail = "parses", "emulator answered: " + summarize_answer(out)
        else:
            status = "parses"
            if "Could not connect" in err or "Connection" in err:
                detail = "request built and sent (no emulator to answer)"
            elif "not yet implemented" in err.lower() or "NotImplemented" in err or "(500)" in err or "(404)" in err:
                detail = "request built and sent; the emulator does not implement this operation"
            else:
                detail = "emulator answered: " + msg
    else:
        status = "CANNOT RUN"
    bad, cav = semantics(argv, rc, err, tail) if argv else ([], [])
    if status == "FAILS TO PARSE":
        bad.insert(0, "the CLI rejects it: " + detail + (f" ({fix})" if fix else ""))
    bad = problems + bad
    r = dict(n=n, line=c["line"], heading=c["heading"], cmd=c["raw"], run=" ".join(shlex.quote(a) for a in argv),
             status=status, detail=detail, notes=notes, bad=bad, cav=cav, tail=tail)
    results.append(r)
    print(f"[{n}] {os.path.basename(runbook)}:{c['line']} ({c['heading']})")
    print(f"    runbook: {c['raw']}")
    if tail:
        print(f"    cut off before running: {tail}")
    if notes:
        print("    substituted: " + "; ".join(notes))
    print(f"    ran:     {r['run']}")
    print(f"    {status}: {detail}")
    for b in bad:
        print(f"    CANNOT WORK AS WRITTEN: {b}")
    for cv in cav:
        print(f"    caveat: {cv}")
    print()

# ---- summary
nparse = sum(r["status"] == "parses" for r in results)
nfail = sum(r["status"] != "parses" for r in results)
nbad = sum(bool(r["bad"]) for r in results)
print("=" * 78)
print(f"runbook aws commands: {len(results)} found, {nparse} parse, {nfail} fail to parse, "
      f"{nbad} cannot work as written")
if any("date -d" in r["cmd"] for r in results):
    print("general caveat: `date -d '... ago'` is GNU date; on macOS it fails (use gdate from coreutils)")
if nbad:
    print("cannot work as written:")
    for r in results:
        for b in r["bad"]:
            print(f"  - [{r['n']}] line {r['line']} `{' '.join(r['cmd'].split()[:3])}`: {b}")
if not results:
    print("warning: no aws command found; is the runbook path right?")
PY
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "check-runbook-aws-commands: the checker itself failed (exit $rc)" >&2
  exit "$rc"
fi
exit 0
