#!/usr/bin/env bash
# Installs what the headless-Chromium browser tests need:
#   - Debian's Chromium (/usr/bin/chromium) plus CJK fonts so Japanese renders,
#   - the PostgreSQL client (psql), used by the tests to create/drop databases,
#   - the npm packages in tests/browser (playwright-core; no browser download).
# Idempotent and non-interactive; meant to run as root (CI) or via sudo.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  fi
fi

apt_packages=()
if [ ! -x /usr/bin/chromium ]; then
  apt_packages+=(chromium)
fi
# Japanese glyphs; without them screenshots show boxes instead of text.
if ! dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'ok installed'; then
  apt_packages+=(fonts-noto-cjk)
fi
if ! command -v psql >/dev/null 2>&1; then
  apt_packages+=(postgresql-client)
fi

if [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "install-test-deps: installing apt packages: ${apt_packages[*]}"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${apt_packages[@]}" </dev/null
else
  echo "install-test-deps: chromium, fonts-noto-cjk and psql already present"
fi

# playwright-core never downloads a browser itself; make sure nothing tries to.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

BROWSER_DIR="tests/browser"
if [ -d "$BROWSER_DIR/node_modules/playwright-core" ] \
   && [ -f "$BROWSER_DIR/package-lock.json" ] \
   && [ "$BROWSER_DIR/node_modules/.package-lock.json" -nt "$BROWSER_DIR/package-lock.json" ]; then
  echo "install-test-deps: $BROWSER_DIR/node_modules is up to date"
elif [ -f "$BROWSER_DIR/package-lock.json" ]; then
  npm ci --prefix "$BROWSER_DIR" --no-audit --no-fund
else
  npm install --prefix "$BROWSER_DIR" --no-audit --no-fund
fi

echo "install-test-deps: done ($(/usr/bin/chromium --version 2>/dev/null || echo 'chromium version unknown'))"
