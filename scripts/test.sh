#!/usr/bin/env bash
# The project's whole test suite, as the README's `make test` runs it: installs what a fresh Debian/Ubuntu
# machine lacks, checks formatting and lints, runs the core tests (real QEMU VMs, loopback servers, Xvfb),
# the tray app's tests (Tauri mock runtime) and the GUI end-to-end tests (Xvfb + D-Bus + tray host).
# Ends with one line "total: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
log_dir=$(mktemp -d -t cvmweb-test.XXXXXX)
failed_steps=()
passed=0; failed=0

step() { # step NAME CMD...: runs CMD, tees its output, counts its tests
  local name=$1; shift
  echo "=== $name"
  local log="$log_dir/${name// /_}.log"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
  f=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s+=$6} END {print s+0}')
  local e2e; e2e=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  if [ -n "$e2e" ]; then p=$((p + ${e2e%% passed*})); f=$((f + $(echo "$e2e" | sed -E 's/.* ([0-9]+) failed/\1/'))); fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then
    failed_steps+=("$name")
    [ "$f" -gt 0 ] || failed=$((failed + 1))   # a step that failed without failing a test (build, lint)
  fi
}

bash scripts/install-deps.sh test || { echo "dependency installation failed"; echo "total: 0 passed, 1 failed"; exit 1; }

step "format" cargo fmt --all --check
step "clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
step "core tests" cargo test -p webapi-core --locked
step "tray app tests" cargo test -p cernvm-webapi --locked
step "tray app build" cargo build -p cernvm-webapi -p webapi-core --bins --locked
step "gui e2e tray" timeout 600 tests/gui/run.sh tests/gui/tray.sh \
  "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$CARGO_TARGET_DIR/debug/cvmwebapi"

echo
if [ ${#failed_steps[@]} -gt 0 ]; then echo "failed steps: ${failed_steps[*]} (logs in $log_dir)"; fi
echo "total: $passed passed, $failed failed"
[ ${#failed_steps[@]} -eq 0 ]
