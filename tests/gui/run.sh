#!/usr/bin/env bash
# Runs a GUI end-to-end test script inside a private X server (Xvfb) and D-Bus session.
# Usage: tests/gui/run.sh SCRIPT [ARGS...]      e.g. tests/gui/run.sh tests/gui/tray.sh target/debug/cernvm-webapi
set -u
script=${1:?usage: run.sh SCRIPT [ARGS...]}; shift
export E2E_OUT=${E2E_OUT:-$(mktemp -d -t cvmweb-e2e.XXXXXX)}
mkdir -p "$E2E_OUT"
echo "GUI e2e: $(basename "$script"), artifacts in $E2E_OUT"
exec xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" \
  dbus-run-session -- bash "$script" "$@"
