#!/usr/bin/env bash
# The project's whole test suite, as the README's `make test` runs it: installs what a fresh Debian/Ubuntu
# machine lacks, checks formatting and lints, runs the core tests (real QEMU VMs, loopback servers, Xvfb),
# the tray app's tests (Tauri mock runtime), the GUI end-to-end tests (Xvfb + D-Bus + tray host), the JS
# client library's build check and its browser tests (headless Chromium against the real daemon; the
# control panel's accessibility).
# Every step runs even when an earlier one failed. Prints each step's wall time, and ends with one line
# "total: N passed, M failed"; exits non-zero when any step failed.
# Counted: cargo's "test result: ... N passed; M failed" lines, and each script's last "N passed, M failed".
# Not run here: tests/vbox/run-tests.sh (manual: needs a 1.5 GB VirtualBox chroot) and the ignored
# benchmark (src-tauri/core/tests/qemu_bench.rs).
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
log_dir=$(mktemp -d -t cvmweb-test.XXXXXX)
failed_steps=()
times=()
passed=0; failed=0

step() { # step NAME CMD...: runs CMD, tees its output, counts its tests
  local name=$1; shift
  echo "=== $name"
  local log="$log_dir/${name// /_}.log"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  times+=("$(printf '%5ss  %s%s' $((SECONDS - t0)) "$name" "$([ "$rc" -eq 0 ] || echo "  (FAILED, exit $rc)")")")
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

t_start=$SECONDS
bash scripts/install-deps.sh test || { echo "dependency installation failed"; echo "total: 0 passed, 1 failed"; exit 1; }

times+=("$(printf '%5ss  %s' $((SECONDS - t_start)) "install deps")")
step "format" cargo fmt --all --check
step "clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
step "core tests" cargo test -p webapi-core --locked
step "tray app tests" cargo test -p cernvm-webapi --locked
step "tray app build" cargo build -p cernvm-webapi -p webapi-core -p webapi-e2e --bins --locked
step "gui e2e tray" timeout 600 tests/gui/run.sh tests/gui/tray.sh \
  "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$CARGO_TARGET_DIR/debug/cvmwebapi"
step "sdk build check" timeout 600 ui/sdk/build.sh --check
step "browser tests" env CVMWEBAPI_BIN="$CARGO_TARGET_DIR/debug/cvmwebapi" timeout 1200 tests/browser/run.sh
# The demo site end to end: page → the app's consent dialog (answered with xdotool) → a real QEMU VM.
# After the browser tests (their `npm ci` installs the driver's playwright-core).
step "gui e2e demo" timeout 900 tests/gui/run.sh tests/gui/demo.sh \
  "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$CARGO_TARGET_DIR/debug/cvmwebapi"
# The README's `make run` from a fresh home folder: deps, build (warm here), demo site, tray app, the page
# opened by xdg-open, the consent dialog on "Request session".
step "gui e2e make run" timeout 900 tests/gui/run.sh tests/gui/run-contract.sh
# The tray menu following a real session from the demo page: pause/resume over dbusmenu; Quit cancels,
# hibernates (a restart brings the same VM back) or leaves the VM running (a restart takes it over);
# Stop and Start; notifications for the image, the start and a killed VM reach dunst.
step "gui e2e tray-vm" timeout 1200 tests/gui/run.sh tests/gui/tray-vm.sh \
  "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$CARGO_TARGET_DIR/debug/cvmwebapi"
# The control panel: a real session (demo site + QEMU), the panel opened from the tray, read by OCR;
# a setting saved in the panel survives a restart. (SCREENSHOT_DIR=docs/img refreshes the user guide's pictures.)
step "gui e2e panel" timeout 900 tests/gui/run.sh tests/gui/panel.sh \
  "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$CARGO_TARGET_DIR/debug/cvmwebapi"

# The consent dialog end to end: real requestSession over WebSockets from several origins → the plain
# tray app's dialog (answered with xdotool) → throttle block, restart, unblock from the tray.
step "gui e2e consent" timeout 900 tests/gui/run.sh tests/gui/consent.sh \
  "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$CARGO_TARGET_DIR/debug/cvmwebapi" "$CARGO_TARGET_DIR/debug/webapi-page"
# The live tray: notifications (consent waiting, site blocked) reach dunst, rate-limited; the attention icon;
# "Start at login" writes and removes the autostart entry; Quit with no VM exits at once.
step "gui e2e tray-live" timeout 600 tests/gui/run.sh tests/gui/tray-live.sh \
  "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$CARGO_TARGET_DIR/debug/cvmwebapi" "$CARGO_TARGET_DIR/debug/webapi-page"

echo
echo "step times:"
printf '%s\n' "${times[@]}"
printf '%5ss  %s\n' $((SECONDS - t_start)) "all"
if [ ${#failed_steps[@]} -gt 0 ]; then echo "failed steps: ${failed_steps[*]} (logs in $log_dir)"; fi
echo "total: $passed passed, $failed failed"
[ ${#failed_steps[@]} -eq 0 ]
