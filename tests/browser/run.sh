#!/usr/bin/env bash
# Runs the browser tests of the JS client library: builds the daemon (cvmwebapi), installs the pinned
# npm packages (playwright-core drives the system Chromium, no browser download), and runs every
# *.test.mjs (or the files given as arguments) with node's test runner. Exits non-zero on failure.
# Environment: CARGO_TARGET_DIR (where cargo builds), CVMWEBAPI_BIN (use this daemon binary instead),
# CHROMIUM_BIN (default /usr/bin/chromium), CI=true (missing tools fail instead of skipping).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${CVMWEBAPI_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet -p webapi-core --bin cvmwebapi)
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$here" && npm ci --no-audit --no-fund --silent)
(cd "$root/ui/sdk" && npm ci --no-audit --no-fund --silent)
cd "$here"
if [ $# -eq 0 ]; then set -- *.test.mjs; fi
exec node --test --test-concurrency=1 --test-reporter=spec "$@"
