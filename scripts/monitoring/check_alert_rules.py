#!/usr/bin/env python3
"""Checks the conventions of the alerting rules that promtool does not know about.

python3 standard library only. For every alerting rule in the rule file(s):
  - labels: severity is P1, P2 or P3 (runbook 障害レベル定義), level is warning or critical,
    service is normal-form-app, component is set;
  - annotations: summary and description are written in Japanese, action (推奨対応) is set,
    runbook is `docs/runbook.md#<anchor>` and the anchor exists in docs/runbook.md (an explicit
    `<a id="...">` or a GitHub-style heading anchor), and the alert name appears in that file;
  - tests (alerts.test.yml): every alert has a case where it fires - for each of its severities -
    and a case where it must not fire (`exp_alerts: []`);
  - every in-page link `](#anchor)` in docs/runbook.md resolves.

Exit status 0 when everything passes, 1 otherwise.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mini_yaml  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
RUNBOOK_REF = re.compile(r"^docs/runbook\.md#([A-Za-z0-9_\-\u3040-\u30ff\u4e00-\u9fff]+)$")


def github_anchor(heading):
    """GitHub's heading anchor: lower-case, punctuation removed (letters of any script, digits,
    '-', '_' and spaces kept), spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors(path):
    anchors = set()
    seen = {}
    in_code = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for m in re.finditer(r"<a\s+(?:id|name)=\"([^\"]+)\"", line):
                anchors.add(m.group(1))
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                a = github_anchor(m.group(1))
                n = seen.get(a, 0)
                seen[a] = n + 1
                anchors.add(a if n == 0 else f"{a}-{n}")
    return anchors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", action="append", help="rule file (default: deploy/monitoring/prometheus/alerts.yml)")
    ap.add_argument("--tests", action="append", help="promtool test file (default: deploy/monitoring/prometheus/alerts.test.yml)")
    ap.add_argument("--runbook", default=os.path.join(ROOT, "docs", "runbook.md"))
    args = ap.parse_args()
    rule_files = args.rules or [os.path.join(ROOT, "deploy", "monitoring", "prometheus", "alerts.yml")]
    test_files = args.tests or [os.path.join(ROOT, "deploy", "monitoring", "prometheus", "alerts.test.yml")]

    errors = []
    checks = 0

    def check(ok, message):
        nonlocal checks
        checks += 1
        if not ok:
            errors.append(message)
        return ok

    if check(os.path.exists(args.runbook), f"{args.runbook} does not exist"):
        anchors = runbook_anchors(args.runbook)
        with open(args.runbook, encoding="utf-8") as f:
            runbook_text = f.read()
    else:
        anchors, runbook_text = set(), ""

    rules = []
    for path in rule_files:
        doc = mini_yaml.load_file(path) or {}
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    rules.append(rule)

    # firing expectations per alert name: set of severities seen; and whether a "must not fire" case exists
    fires, quiet = {}, {}
    for path in test_files:
        doc = mini_yaml.load_file(path) or {}
        for test in doc.get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                name = case.get("alertname")
                exp = case.get("exp_alerts") or []
                if exp:
                    for a in exp:
                        fires.setdefault(name, set()).add((a.get("exp_labels") or {}).get("severity"))
                else:
                    quiet[name] = True

    severities = {}
    for rule in rules:
        name = rule["alert"]
        labels = rule.get("labels") or {}
        ann = rule.get("annotations") or {}
        where = f"{name} ({labels.get('severity')})"
        check(re.match(r"^Nfa[A-Z][A-Za-z0-9]+$", name) is not None, f"{where}: alert name should be NfaCamelCase")
        check(labels.get("severity") in ("P1", "P2", "P3"), f"{where}: label severity must be P1, P2 or P3")
        check(labels.get("level") in ("warning", "critical"), f"{where}: label level must be warning or critical")
        check(labels.get("service") == "normal-form-app", f"{where}: label service must be normal-form-app")
        check(bool(labels.get("component")), f"{where}: label component is missing")
        for key in ("summary", "description", "action"):
            check(bool(JAPANESE.search(ann.get(key) or "")), f"{where}: annotation {key} missing or not in Japanese")
        m = RUNBOOK_REF.match(ann.get("runbook") or "")
        if check(m is not None, f"{where}: annotation runbook must look like docs/runbook.md#<anchor>, got {ann.get('runbook')!r}"):
            check(m.group(1) in anchors, f"{where}: anchor #{m.group(1)} not found in docs/runbook.md")
        check(name in runbook_text, f"{where}: docs/runbook.md does not mention {name}")
        severities.setdefault(name, set()).add(labels.get("severity"))

    for name, sevs in sorted(severities.items()):
        missing = sevs - fires.get(name, set())
        check(not missing, f"{name}: no test where it fires with severity {', '.join(sorted(s or '?' for s in missing))}")
        check(quiet.get(name, False), f"{name}: no test where it must not fire (exp_alerts: [])")
    for name in sorted(set(fires) | set(quiet)):
        check(name in severities, f"tests mention {name}, which is not an alert in the rule files")

    # links inside the runbook (table of contents, cross references) must resolve too
    in_code = False
    for no, line in enumerate(runbook_text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for m in re.finditer(r"\]\((?:runbook\.md)?#([^)\s]+)\)", line):
            check(m.group(1) in anchors, f"docs/runbook.md:{no}: link to #{m.group(1)}, which is not a heading or anchor")

    for e in errors:
        print(f"  FAIL: {e}")
    print(f"  {len(rules)} alerting rules ({len(severities)} alert names); {checks - len(errors)}/{checks} rule checks passed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
