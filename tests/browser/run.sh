#!/usr/bin/env bash
# Runs the browser tests (the JS client library against the real daemon, the control panel's
# accessibility): builds the daemon (cvmwebapi), installs the pinned npm packages (playwright-core
# drives the system Chromium, no browser download), and runs every *.test.mjs (or the files given as
# arguments) with node's test runner, printing its normal summary and then one line "N passed, M failed"
# (for scripts/test.sh). Exits non-zero on failure.
# Environment: CARGO_TARGET_DIR (where cargo builds), CVMWEBAPI_BIN (use this daemon binary instead),
# CHROMIUM_BIN (default /usr/bin/chromium), CI=true (missing tools fail instead of skipping).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${CVMWEBAPI_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet --locked -p webapi-core --bin cvmwebapi)
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$here" && npm ci --no-audit --no-fund --silent)
(cd "$root/ui/sdk" && npm ci --no-audit --no-fund --silent)
cd "$here"
if [ $# -eq 0 ]; then set -- *.test.mjs; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
pass=$(sed -nE 's/^ℹ pass ([0-9]+)$/\1/p' "$log" | tail -1)
fail=$(sed -nE 's/^ℹ fail ([0-9]+)$/\1/p' "$log" | tail -1)
echo "${pass:-0} passed, ${fail:-0} failed"
if [ "$rc" -ne 0 ] && [ "${fail:-0}" -eq 0 ]; then echo "the test runner failed (exit $rc)" >&2; fi
exit "$rc"
