#!/usr/bin/env python3
"""Turns one run of scripts/bench/run.sh (its output folder) into Markdown tables with each
figure next to its aim. Standard library only."""

import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() else None


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(name):
    path = out / f"{name}.wrk.txt"
    if not path.exists():
        return None
    text = path.read_text()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p = {q: re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M) for q in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: (.*)", text)
    requests = re.search(r"(\d+) requests in", text)
    return {
        "requests": int(requests.group(1)) if requests else None,
        "rps": float(rps.group(1)) if rps else None,
        "p50": to_ms(*p["50"].groups()) if p["50"] else None,
        "p99": to_ms(*p["99"].groups()) if p["99"] else None,
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket": socket.group(1) if socket else "",
    }


STEP_ORDER = ["customer_get", "customer_post", "address_get", "address_post", "plan_get", "plan_post",
              "confirm_get", "confirm_post", "complete_get"]


def verdict(ok):
    return "met" if ok else "**missed**"


lines = []
machine = (out / "machine.txt").read_text().strip() if (out / "machine.txt").exists() else ""
lines += ["## Machine", "", "```", machine, "```", ""]

argon = load("argon2.json")
closed = load("closed.json")
open_ = load("open.json")
lines += ["## Issue 3: registrations", ""]
lines += ["| figure | value | aim | verdict |", "| --- | --- | --- | --- |"]
def cpu_per_hash(name, result):
    """CPU ms (user + system) per hash of one argon2_ceiling run, or an empty string."""
    path = out / f"{name}.time"
    if not path.exists() or not result["hashes"]:
        return ""
    user, system = (float(x) for x in path.read_text().split()[-2:])
    return f"; {(user + system) / result['hashes'] * 1000:.1f} ms of CPU per hash"


if argon:
    lines.append(f"| Argon2id ceiling ({argon['params']}, {argon['cores']} cores) | {argon['hashes_per_s']:.1f} hashes/s "
                 f"({argon['ms_per_hash_per_core']:.0f} ms per hash per core{cpu_per_hash('argon2', argon)}) | | |")
if closed:
    share = closed["registrations_per_s"] / argon["hashes_per_s"] * 100 if argon else float("nan")
    lines.append(f"| registrations/s, closed loop, {closed['concurrency']} users, {closed['elapsed_s']:.0f} s | "
                 f"{closed['registrations_per_s']:.1f} ({closed['completed']} done, {closed['failed']} failed) = "
                 f"{share:.0f} % of the ceiling | ≥ 85 % of the ceiling | {verdict(share >= 85)} |")
if open_:
    worst = max(((k, v["p95_ms"]) for k, v in open_["steps"].items() if v["p95_ms"] is not None), key=lambda kv: kv[1])
    lines.append(f"| open loop at {open_['rate']} registrations/s (half capacity), {open_['elapsed_s']:.0f} s | "
                 f"{open_['completed']} done, {open_['failed']} failed, {open_['dropped']} dropped; worst p95 {worst[1]:.1f} ms "
                 f"({worst[0]}) | p95 of every step < 100 ms | {verdict(worst[1] < 100 and open_['failed'] == 0)} |")
after = load("argon2_after.json")
if after:
    lines.append(f"| Argon2id ceiling again, right after the closed loop | {after['hashes_per_s']:.1f} hashes/s"
                 f"{cpu_per_hash('argon2_after', after)} | | |")
    if closed:
        share = closed["registrations_per_s"] / max(argon["hashes_per_s"], after["hashes_per_s"]) * 100
        lines.append(f"| registrations/s against the higher of the two ceilings | {share:.0f} % | ≥ 85 % | {verdict(share >= 85)} |")
cpu = load("cpu.json")
if cpu and closed:
    other = cpu["busy_s"] - cpu["server_s"] - cpu["postgres_s"] - cpu["loadgen_s"]
    per = cpu["server_s"] / max(closed["completed"], 1) * 1000
    lines.append(f"| CPU during the closed loop ({cpu['cpu_s_available']:.0f} core-seconds available) | server {cpu['server_s']:.1f} s "
                 f"({per:.0f} ms per registration), PostgreSQL {cpu['postgres_s']:.1f} s, load generator {cpu['loadgen_s']:.1f} s, "
                 f"other {other:.1f} s, steal {cpu['steal_s']:.1f} s | | |")
for name, label in (("customer_cookie", "fixed cookie"), ("customer_nocookie", "no cookie (new flow row each)")):
    w = wrk(name)
    if w:
        lines.append(f"| wrk GET /register/customer, {label} | {w['rps']:.0f} req/s, p99 {w['p99']:.1f} ms"
                     f"{', non-2xx ' + str(w['non2xx']) if w['non2xx'] else ''} | | |")
lines.append("")
for title, report in (("closed loop", closed), ("open loop at half capacity", open_)):
    if not report:
        continue
    lines += [f"Per-step latency, {title} (ms):", "", "| request | count | p50 | p95 | p99 | max |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for key in STEP_ORDER:
        s = report["steps"][key]
        lines.append(f"| {s['label']} | {s['count']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} |")
    if report["errors"]:
        lines.append("")
        lines.append("errors: " + ", ".join(f"{k} ×{v}" for k, v in report["errors"].items()))
    lines.append("")

lines += ["## Issue 4: postal-code lookups", ""]
lines += ["| request | server | req/s | p50 ms | p99 ms | errors |", "| --- | --- | ---: | ---: | ---: | --- |"]
for name, what, server in (("postal_app", "GET /api/v1/postal-codes/1500002", "app"),
                           ("postal_nginx", "GET /api/v1/postal-codes/1500002", "nginx (static file)"),
                           ("postal_mix_app", "mix of codes (postal_mix.lua)", "app"),
                           ("postal_mix_nginx", "mix of codes (postal_mix.lua)", "nginx (static files)")):
    w = wrk(name)
    if w:
        errors = ", ".join(x for x in (f"non-2xx {w['non2xx']}" if w["non2xx"] else "", w["socket"]) if x) or "0"
        lines.append(f"| {what} | {server} | {w['rps']:.0f} | {w['p50']:.2f} | {w['p99']:.2f} | {errors} |")
app, ngx = wrk("postal_app"), wrk("postal_nginx")
if app and ngx:
    lines.append("")
    lines.append(f"app / nginx: {app['rps'] / ngx['rps'] * 100:.0f} % of nginx's req/s on one code.")
rss = load("rss.json")
if rss:
    lines += ["", "| memory | KiB |", "| --- | ---: |",
              f"| app idle after start, embedded table loaded | {rss['rss_kib_idle_table_loaded']} |",
              f"| same, after one lookup | {rss['rss_kib_after_one_lookup']} |",
              f"| app idle after start, ADDRESS_API_URL set (table not loaded) | {rss['rss_kib_idle_no_table']} |",
              f"| **cost of the table** | **{rss['table_cost_kib']}** |",
              f"| app after the whole run (all loads above) | {rss['rss_kib_after_whole_run']} |"]
phases = out / "rss_phases.txt"
if phases.exists():
    lines += ["", "App RSS along the run (KiB):", "", "```", phases.read_text().strip(), "```"]
malloc = load("malloc_check.json")
if malloc:
    lines += ["", f"Same server with `MALLOC_MMAP_THRESHOLD_=131072`, {malloc['concurrency']} users for {malloc['elapsed_s']:.0f} s: "
              f"{malloc['registrations_per_s']:.1f} registrations/s, RSS afterwards "
              f"{(out / 'malloc_check_rss.txt').read_text().strip()} KiB."]
stats = out / "postal_stats.txt"
if stats.exists():
    lines += ["", "`postal_dump --stats`:", "", "```", stats.read_text().strip(), "```"]
lines.append("")

dup = load("duplicate.json")
if dup and dup.get("groups"):
    fresh = dup["groups"]["fresh"]["steps"]["confirm_post"]
    again = dup["groups"]["duplicate"]["steps"]["confirm_post"]
    diff = abs(again["p50_ms"] - fresh["p50_ms"]) / fresh["p50_ms"] * 100
    lines += ["## Issue 5: duplicate sign-up timing", "",
              "| final POST /register/confirm | count | p50 ms | p95 ms | p99 ms |", "| --- | ---: | ---: | ---: | ---: |",
              f"| fresh email | {fresh['count']} | {fresh['p50_ms']} | {fresh['p95_ms']} | {fresh['p99_ms']} |",
              f"| already-registered email | {again['count']} | {again['p50_ms']} | {again['p95_ms']} | {again['p99_ms']} |",
              "", f"Medians differ by {diff:.1f} % (aim < 10 %: {verdict(diff < 10)}); "
              f"{dup['failed']} failed of {dup['completed'] + dup['failed']}.", ""]

VARIANTS = {"on": "metrics on, JSON log (defaults)", "metrics": "metrics on, `RUST_LOG=off`",
            "logs": "`METRICS_ENABLED=0`, JSON log", "off": "`METRICS_ENABLED=0 RUST_LOG=off`"}
runs = {}
for f in out.iterdir():
    m = re.match(r"overhead_(\w+?)_(\d+)\.wrk\.txt$", f.name)
    w = wrk(f"overhead_{m.group(1)}_{m.group(2)}") if m else None
    if w and w["rps"]:
        cpu = out / f"overhead_{m.group(1)}_{m.group(2)}.cpu"
        if cpu.exists() and w["requests"]:
            fields = dict(kv.split("=") for kv in cpu.read_text().split())
            w["cpu_us"] = int(fields["server_ticks"]) / float(fields["hz"]) / w["requests"] * 1e6
        runs[(m.group(1), int(m.group(2)))] = w
if runs:
    from statistics import median
    variants = [v for v in VARIANTS if any(k[0] == v for k in runs)]
    rounds = sorted({r for _, r in runs})
    lines += ["## Issue 7: cost of metrics and logging (GET /register/customer, fixed cookie)", "",
              "Each cell: req/s, p99 ms, req/s against `off` in the same round, and (if recorded) the server's "
              "CPU time per request.", "",
              "| round | " + " | ".join(VARIANTS[v] for v in variants) + " |",
              "| ---: |" + " ---: |" * len(variants)]
    for r in rounds:
        off = runs.get(("off", r))
        cells = []
        for v in variants:
            w = runs.get((v, r))
            if not w:
                cells.append("")
                continue
            rel = f", {(w['rps'] - off['rps']) / off['rps'] * 100:+.1f} %" if off and v != "off" else ""
            bad = f", non-2xx {w['non2xx']}" if w["non2xx"] else ""
            cpu = f", {w['cpu_us']:.0f} µs CPU" if "cpu_us" in w else ""
            cells.append(f"{w['rps']:.0f}, {w['p99']:.1f}{rel}{cpu}{bad}")
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    lines.append("")
    for v in variants:
        ws = [runs[(v, r)] for r in rounds if (v, r) in runs]
        diffs = [(runs[(v, r)]["rps"] - runs[("off", r)]["rps"]) / runs[("off", r)]["rps"] * 100
                 for r in rounds if (v, r) in runs and ("off", r) in runs]
        text = f"- {VARIANTS[v]}: median {median(w['rps'] for w in ws):.0f} req/s, p99 {median(w['p99'] for w in ws):.1f} ms"
        if v != "off" and diffs:
            text += f"; median of the per-round differences against off {median(diffs):+.1f} %"
            if v == "on":
                text += f" (aim: cost < 5 %: {verdict(-median(diffs) < 5)})"
        cpus = [runs[(v, r)]["cpu_us"] for r in rounds if "cpu_us" in runs.get((v, r), {})]
        if cpus:
            text += f"; server CPU per request, median {median(cpus):.0f} µs"
            offs = [runs[("off", r)]["cpu_us"] for r in rounds if "cpu_us" in runs.get(("off", r), {})]
            if v != "off" and offs:
                text += f" ({(median(cpus) - median(offs)) / median(offs) * 100:+.1f} % against off)"
        lines.append(text)
    lines.append("")

print("\n".join(lines))
