#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: the wasm targets for the
# stable toolchain, and for nightly (used for wasm64 with -Zbuild-std) the
# wasm32 target and rust-src when a nightly toolchain is present; for the
# JavaScript host tests (tests/tests/engines.rs, browser.rs), playwright-core
# in tests/browser (npm ci) and Debian's chromium. Quiet and quick when all is
# already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null 2>&1; then
  echo "setup: rustup not found; install the wasm32-unknown-unknown target for your toolchain by hand" >&2
else
  rustup target add wasm32-unknown-unknown
  if rustup toolchain list | grep -q '^nightly'; then
    rustup component add rust-src --toolchain nightly
    rustup target add wasm32-unknown-unknown --toolchain nightly
  else
    echo "setup: no nightly toolchain; wasm64 tests will be skipped (install one with: rustup toolchain install nightly --component rust-src)" >&2
  fi
fi

# Headless Chromium for the browser tests (they fail without it when CI=true).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: /usr/bin/chromium is missing; install Debian's chromium as root (apt-get install chromium)" >&2
  fi
fi

# playwright-core, pinned by tests/browser/package-lock.json; reinstalled only
# when the lock file changed since the last install.
if command -v npm >/dev/null 2>&1; then
  stamp=tests/browser/node_modules/.forkify-package-lock.json
  if ! cmp -s tests/browser/package-lock.json "$stamp"; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp tests/browser/package-lock.json "$stamp"
  fi
else
  echo "setup: npm not found; install Node.js 20 or later with npm for the JavaScript host tests" >&2
fi
