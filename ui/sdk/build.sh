#!/usr/bin/env bash
# Builds ui/sdk/cvmwebapi.min.js from ui/sdk/cvmwebapi.js with esbuild, and type-checks
# cvmwebapi.d.ts against typecheck/example.ts with tsc (both pinned in package-lock.json).
# Usage: ui/sdk/build.sh           rebuild the minified file
#        ui/sdk/build.sh --check   exit 1 if the committed minified file is not up to date
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/tsc ]; then
  npm ci --no-audit --no-fund --silent
fi
node_modules/.bin/tsc --noEmit --strict --target es2017 --lib dom,es2017 typecheck/example.ts
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# ES2017 keeps every browser of the last years; legal comments keep the licence header.
node_modules/.bin/esbuild cvmwebapi.js --minify --target=es2017 --legal-comments=inline --log-level=warning >"$out"
if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$out" cvmwebapi.min.js; then
    echo "ui/sdk/cvmwebapi.min.js is out of date: run ui/sdk/build.sh and commit the result" >&2
    exit 1
  fi
  echo "ui/sdk/cvmwebapi.min.js is up to date"
else
  cp "$out" cvmwebapi.min.js
  echo "wrote ui/sdk/cvmwebapi.min.js ($(wc -c <cvmwebapi.min.js) bytes)"
fi
