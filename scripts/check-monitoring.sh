#!/usr/bin/env bash
# Checks the monitoring-as-code artefacts under deploy/monitoring/ and docs/runbook.md:
#   promtool check rules / test rules / check config / check metrics, amtool check-config and
#   template rendering, the blackbox exporter module, the alert-rule conventions
#   (scripts/monitoring/check_alert_rules.py) and the Grafana dashboard plus the metric names used
#   by the dashboard and the alerts (scripts/monitoring/check_dashboard.py).
#
# Usage:
#   scripts/check-monitoring.sh                               # against testdata/metrics-sample.txt
#   scripts/check-monitoring.sh --scrape FILE [--scrape FILE]  # against saved /metrics output
#   scripts/check-monitoring.sh --metrics-url http://127.0.0.1:8080/metrics   # against a running app
#
# Installs promtool, amtool and the blackbox exporter from Debian (packages prometheus,
# prometheus-alertmanager, prometheus-blackbox-exporter) when they are missing; the services are
# not started. Exits non-zero when any check fails; the last line is
# "monitoring checks: N passed, M failed".
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MON="$REPO_ROOT/deploy/monitoring"
TOOLS="$REPO_ROOT/scripts/monitoring"

scrapes=()
metrics_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scrape) scrapes+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
    --scrape=*) f="${1#--scrape=}"; scrapes+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); shift ;;
    --metrics-url) metrics_url="$2"; shift 2 ;;
    --metrics-url=*) metrics_url="${1#--metrics-url=}"; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-monitoring: unknown argument: $1" >&2; exit 2 ;;
  esac
done

WORK="$(mktemp -d)"
created_policy=""
cleanup() {
  rm -rf "$WORK"
  if [ -n "$created_policy" ]; then rm -f "$created_policy"; fi
}
trap cleanup EXIT

passed=0
failed=0
failures=()

# run NAME COMMAND...: runs a check and counts it. A passing check shows the last line of its
# output (VERBOSE=1: all of it), a failing one all of it.
run() {
  local name="$1"; shift
  local out rc last
  out="$("$@" 2>&1)"; rc=$?
  if [ $rc -eq 0 ]; then
    last="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -1 | sed 's/^[[:space:]]*//')"
    echo "PASS  $name${last:+ - $last}"
    if [ "${VERBOSE:-0}" = 1 ] && [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/    /'; fi
    passed=$((passed + 1))
  else
    if [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/    /'; fi
    echo "FAIL  $name (exit $rc)"
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

# ---------------------------------------------------------------------------------------------
# tools
need_pkgs=()
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v amtool >/dev/null 2>&1 || need_pkgs+=(prometheus-alertmanager)
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || need_pkgs+=(prometheus-blackbox-exporter)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  echo "check-monitoring: installing ${need_pkgs[*]} (apt; services are not started)"
  # A policy-rc.d that says "no" keeps the packages' maintainer scripts from starting the services.
  if [ "$(id -u)" -eq 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    created_policy=/usr/sbin/policy-rc.d
  fi
  $SUDO apt-get update -q >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" </dev/null >/dev/null
  if [ -n "$created_policy" ]; then rm -f "$created_policy"; created_policy=""; fi
fi
for tool in promtool amtool prometheus-blackbox-exporter python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check-monitoring: $tool is not available (install it: apt-get install prometheus prometheus-alertmanager prometheus-blackbox-exporter)" >&2
    echo "monitoring checks: 0 passed, 1 failed"
    exit 1
  fi
done
echo "check-monitoring: $(promtool --version 2>&1 | head -1)"
echo "check-monitoring: $(amtool --version 2>&1 | head -1)"

# ---------------------------------------------------------------------------------------------
# the scrape the metric names are checked against
if [ -n "$metrics_url" ]; then
  if curl -fsS -m 10 "$metrics_url" -o "$WORK/live-metrics.txt"; then
    scrapes+=("$WORK/live-metrics.txt")
    echo "check-monitoring: scraped $metrics_url"
  else
    echo "FAIL  scrape $metrics_url"
    failed=$((failed + 1)); failures+=("scrape $metrics_url")
  fi
fi
if [ "${#scrapes[@]}" -eq 0 ]; then
  scrapes=("$MON/testdata/metrics-sample.txt")
fi
scrape_args=()
for s in "${scrapes[@]}"; do scrape_args+=(--scrape "$s"); done

cd "$REPO_ROOT" || exit 1

# ---------------------------------------------------------------------------------------------
# Prometheus
run "promtool check rules (alerts.yml)" promtool check rules "$MON/prometheus/alerts.yml"
run "promtool test rules (alerts.test.yml)" promtool test rules "$MON/prometheus/alerts.test.yml"
run "promtool check config (prometheus.yml)" promtool check config "$MON/prometheus/prometheus.yml"
for s in "${scrapes[@]}"; do
  run "promtool check metrics ($(basename "$s"))" sh -c 'promtool check metrics < "$1"' _ "$s"
done

# ---------------------------------------------------------------------------------------------
# Alertmanager
run "amtool check-config (alertmanager.yml)" amtool check-config "$MON/alertmanager/alertmanager.yml"
render_templates() {
  local t out
  for t in nfa.slack.title nfa.slack.color nfa.slack.text nfa.email.subject nfa.email.text nfa.email.html; do
    out="$(cd "$MON/alertmanager" && amtool template render \
      --template.glob='templates/*.tmpl' \
      --template.data="$MON/testdata/alertmanager-notification.json" \
      --template.text="{{ template \"$t\" . }}" 2>&1)" || { echo "$t: $out"; return 1; }
    if [ -z "$(printf '%s' "$out" | tr -d '[:space:]')" ]; then echo "$t: rendered empty"; return 1; fi
    if [ "$t" = "nfa.slack.text" ]; then
      # the runbook's 外部通知連携 items must be in every Slack message
      for item in アラート名 重要度 発生時刻 影響サービス 推奨対応 手順書; do
        printf '%s' "$out" | grep -q "$item" || { echo "$t: '$item' missing"; return 1; }
      done
      printf '%s' "$out" | grep -q 'JST' || { echo "$t: start time not shown in JST"; return 1; }
    fi
  done
  echo "6 templates rendered with testdata/alertmanager-notification.json"
}
run "amtool template render (templates/*.tmpl)" render_templates

# ---------------------------------------------------------------------------------------------
# blackbox exporter module
run "blackbox exporter config (blackbox.yml)" \
  prometheus-blackbox-exporter --config.file="$MON/blackbox/blackbox.yml" --config.check

# ---------------------------------------------------------------------------------------------
# conventions, dashboard, metric names
run "alert rule conventions, runbook anchors, test coverage" python3 "$TOOLS/check_alert_rules.py"
run "dashboard structure and metric names" \
  python3 "$TOOLS/check_dashboard.py" "${scrape_args[@]}" --emit-rules "$WORK/dashboard-exprs.yml"
if [ -s "$WORK/dashboard-exprs.yml" ]; then
  run "dashboard PromQL syntax (promtool)" promtool check rules "$WORK/dashboard-exprs.yml"
fi

# ---------------------------------------------------------------------------------------------
echo
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "monitoring checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
