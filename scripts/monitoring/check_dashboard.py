#!/usr/bin/env python3
"""Checks the Grafana dashboard and the metric names used by the dashboard and the alert rules.

python3 standard library only. Checks:
  - the dashboard JSON is well-formed, has a uid and a title, and selects its datasource through
    the `datasource` variable (type prometheus) whose default is a provisioned datasource uid;
  - every panel (rows aside) has a title, a unique id, a gridPos inside the 24-column grid and at
    least one target with a non-empty expression, and uses the datasource variable;
  - every metric name used in a panel expression, a templating query or an alert rule expression
    is exported by the app (one or more `--scrape FILE`, Prometheus text format, e.g. `curl
    /metrics`) or listed in the allow-list of external metrics (`--external FILE`).
With `--emit-rules FILE` it also writes every dashboard expression (Grafana variables replaced) as
a recording rule so that `promtool check rules FILE` checks the PromQL syntax.

Exit status 0 when everything passes, 1 otherwise.
"""

import argparse
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mini_yaml  # noqa: E402
from promql_names import grafana_query_names, metric_names, substitute_grafana_variables  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MON = os.path.join(ROOT, "deploy", "monitoring")
DATASOURCE_REF = "${datasource}"

SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+\S+")
TYPE_LINE = re.compile(r"^#\s+TYPE\s+([A-Za-z_:][A-Za-z0-9_:]*)\s+(\w+)")


class Report:
    def __init__(self):
        self.errors = []
        self.checks = 0

    def check(self, ok, message):
        self.checks += 1
        if not ok:
            self.errors.append(message)
        return ok


def scrape_names(paths):
    """Metric names a scrape exposes: every sample name, plus the names declared by # TYPE (with
    _bucket/_sum/_count for histograms and _sum/_count for summaries) so that a declared metric
    without samples yet still counts."""
    names = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                m = TYPE_LINE.match(line)
                if m:
                    name, kind = m.groups()
                    if kind == "histogram":
                        names.update({name + "_bucket", name + "_sum", name + "_count"})
                    elif kind == "summary":
                        names.update({name, name + "_sum", name + "_count"})
                    else:
                        names.add(name)
                    continue
                if line.startswith("#"):
                    continue
                m = SAMPLE.match(line)
                if m:
                    names.add(m.group(1))
    return names


def external_names(path):
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                parts = line.split(None, 1)
                names[parts[0]] = parts[1] if len(parts) > 1 else "external"
    return names


def iter_panels(panels):
    for p in panels:
        yield p
        # collapsed rows keep their panels inside
        yield from iter_panels(p.get("panels", []) or [])


def check_dashboard(path, report, provisioned_uids):
    """Returns [(where, expr)] for every expression in the dashboard."""
    exprs = []
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        report.check(False, f"{path}: not valid JSON: {err}")
        return exprs
    report.check(True, "dashboard JSON")
    report.check(bool(dash.get("uid")), f"{path}: dashboard has no uid")
    report.check(bool(dash.get("title")), f"{path}: dashboard has no title")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds_var = variables.get("datasource")
    if report.check(ds_var is not None and ds_var.get("type") == "datasource" and ds_var.get("query") == "prometheus",
                    f"{path}: no templating variable 'datasource' of type datasource (query: prometheus)"):
        default = (ds_var.get("current") or {}).get("value")
        if provisioned_uids:
            report.check(default in provisioned_uids,
                         f"{path}: datasource variable default {default!r} is not a provisioned datasource uid {sorted(provisioned_uids)}")
    for name, var in variables.items():
        if var.get("type") == "query":
            q = var.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            report.check(bool(q), f"{path}: variable {name!r} has no query")
            if q:
                exprs.append((f"variable {name}", q, True))
            report.check((var.get("datasource") or {}).get("uid") == DATASOURCE_REF,
                         f"{path}: variable {name!r} does not use the datasource variable")

    ids = set()
    for p in iter_panels(dash.get("panels", [])):
        kind = p.get("type")
        title = p.get("title") or ""
        where = f"panel {p.get('id')} {title!r}"
        report.check(p.get("id") not in ids, f"{path}: {where}: duplicate panel id")
        ids.add(p.get("id"))
        gp = p.get("gridPos") or {}
        report.check(all(k in gp for k in ("h", "w", "x", "y")) and gp.get("x", 0) + gp.get("w", 0) <= 24,
                     f"{path}: {where}: gridPos missing or wider than 24 columns")
        if kind == "row":
            report.check(bool(title.strip()), f"{path}: row {p.get('id')} has no title")
            continue
        report.check(bool(title.strip()), f"{path}: panel {p.get('id')} ({kind}) has no title")
        report.check((p.get("datasource") or {}).get("uid") == DATASOURCE_REF,
                     f"{path}: {where}: panel datasource is not {DATASOURCE_REF}")
        targets = [t for t in p.get("targets") or [] if (t.get("expr") or "").strip()]
        report.check(len(targets) >= 1, f"{path}: {where}: no target with an expression")
        ref_ids = set()
        for t in p.get("targets") or []:
            report.check(bool((t.get("expr") or "").strip()), f"{path}: {where}: target {t.get('refId')} has an empty expression")
            report.check(t.get("refId") not in ref_ids, f"{path}: {where}: duplicate refId {t.get('refId')}")
            ref_ids.add(t.get("refId"))
            ds = t.get("datasource")
            report.check(ds is None or ds.get("uid") == DATASOURCE_REF,
                         f"{path}: {where}: target {t.get('refId')} datasource is not {DATASOURCE_REF}")
        for t in targets:
            exprs.append((f"{where} target {t.get('refId')}", t["expr"], False))
    panel_count = sum(1 for p in iter_panels(dash.get("panels", [])) if p.get("type") != "row")
    report.check(panel_count > 0, f"{path}: no panels")
    print(f"  dashboard {os.path.relpath(path, ROOT)}: {panel_count} panels, {len(exprs)} expressions")
    return exprs


def rule_exprs(path, report):
    try:
        doc = mini_yaml.load_file(path)
    except (OSError, mini_yaml.YamlError) as err:
        report.check(False, f"{path}: cannot read: {err}")
        return []
    out = []
    for group in (doc or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            out.append((f"rule {name}", rule.get("expr") or "", False))
    print(f"  rules {os.path.relpath(path, ROOT)}: {len(out)} expressions")
    return out


def provisioned_datasource_uids(pattern):
    uids = set()
    for path in glob.glob(pattern):
        doc = mini_yaml.load_file(path) or {}
        for ds in doc.get("datasources") or []:
            if ds.get("uid"):
                uids.add(ds["uid"])
    return uids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dashboard", action="append", help="dashboard JSON (default: deploy/monitoring/grafana/dashboards/*.json)")
    ap.add_argument("--rules", action="append", help="Prometheus rule file (default: deploy/monitoring/prometheus/alerts.yml)")
    ap.add_argument("--scrape", action="append", help="Prometheus text output of the running app (default: deploy/monitoring/testdata/metrics-sample.txt)")
    ap.add_argument("--external", default=os.path.join(ROOT, "scripts", "monitoring", "external-metrics.txt"),
                    help="allow-list of metrics that come from outside the app (blackbox exporter, Prometheus)")
    ap.add_argument("--datasources", default=os.path.join(MON, "grafana", "provisioning", "datasources", "*.yml"))
    ap.add_argument("--emit-rules", help="write the dashboard expressions as recording rules to this file (for promtool check rules)")
    args = ap.parse_args()

    dashboards = args.dashboard or sorted(glob.glob(os.path.join(MON, "grafana", "dashboards", "*.json")))
    rules = args.rules or [os.path.join(MON, "prometheus", "alerts.yml")]
    scrapes = args.scrape or [os.path.join(MON, "testdata", "metrics-sample.txt")]

    report = Report()
    report.check(bool(dashboards), "no dashboard found")
    uids = provisioned_datasource_uids(args.datasources)
    report.check(bool(uids), f"no provisioned datasource uid in {args.datasources}")

    dash_exprs = []
    for d in dashboards:
        dash_exprs += check_dashboard(d, report, uids)
    all_exprs = list(dash_exprs)
    for r in rules:
        all_exprs += rule_exprs(r, report)

    known = scrape_names(scrapes)
    report.check(bool(known), f"no metrics in scrape file(s) {scrapes}")
    external = external_names(args.external)
    print(f"  scrape: {len(known)} metric names from {', '.join(os.path.relpath(s, ROOT) if s.startswith(ROOT) else s for s in scrapes)};"
          f" allow-listed external: {len(external)}")

    used = {}
    for where, expr, is_grafana_query in all_exprs:
        try:
            names = grafana_query_names(expr) if is_grafana_query else metric_names(expr)
        except ValueError as err:
            report.check(False, f"{where}: cannot read expression: {err}")
            continue
        report.check(bool(names) or "vector(" in expr or "time()" in expr, f"{where}: no metric name found in {expr!r}")
        for n in names:
            used.setdefault(n, []).append(where)

    for name in sorted(used):
        source = "app" if name in known else external.get(name)
        if not report.check(source is not None, f"metric {name!r} is neither in the scrape nor in the external allow-list; used by: "
                            + "; ".join(sorted(set(used[name]))[:5])):
            continue
    app_metrics = sorted(n for n in used if n in known)
    ext_metrics = sorted(n for n in used if n not in known and n in external)
    print(f"  metrics used: {len(used)} ({len(app_metrics)} from the app, {len(ext_metrics)} external: {', '.join(ext_metrics)})")
    base = {re.sub(r"_(bucket|sum|count)$", "", n) for n in known}
    used_base = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    unused = sorted(b for b in base if b not in used_base)
    if unused:
        print(f"  note: exported but not shown anywhere: {', '.join(unused)}")

    if args.emit_rules:
        with open(args.emit_rules, "w", encoding="utf-8") as f:
            f.write("# generated by scripts/monitoring/check_dashboard.py: dashboard expressions for promtool\n")
            f.write("groups:\n  - name: dashboard-expressions\n    rules:\n")
            for i, (where, expr, is_grafana_query) in enumerate(dash_exprs):
                if is_grafana_query:
                    m = re.match(r"^\s*label_values\s*\((.*),\s*\w+\s*\)\s*$", expr, re.S)
                    if not m:
                        continue
                    expr = m.group(1)
                e = substitute_grafana_variables(expr)
                f.write(f"      # {where}\n      - record: dashboard:expr_{i}\n        expr: {json.dumps(e)}\n")

    for e in report.errors:
        print(f"  FAIL: {e}")
    print(f"  {report.checks - len(report.errors)}/{report.checks} dashboard/metric checks passed")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
