#!/usr/bin/env bash
# GUI end-to-end test of the README's run path: `cvmwebapi demo-site` serving the demo page, the real
# tray app trusting the demo keystore, the page in a visible Chromium (driven by
# tests/browser/demo-gui-driver.mjs), the consent dialog answered with xdotool after its delay, the
# test guest booting under QEMU until its API answers, then the page's Pause, Resume, Stop and Close
# buttons on that VM, each checked on the page (state, events) and against the guest and its QEMU
# process. Prints "N passed, M failed".
# Usage: tests/gui/run.sh tests/gui/demo.sh [path/to/cernvm-webapi [path/to/cvmwebapi]]
# Environment: SCREENSHOT_DIR (save demo-consent.png, the screen with the dialog, and demo-running.png,
# the page's viewport with the VM running, as in docs/img/demo-running.png), CI=true (missing
# tools fail instead of skipping), E2E_OUT (artifacts).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
target=${CARGO_TARGET_DIR:-$root/target}
app=${1:-$target/debug/cernvm-webapi}
cli=${2:-$target/debug/cvmwebapi}
OUT=${E2E_OUT:-$(mktemp -d)}
need=(openbox dunst gtk-sni-tray-standalone gdbus xdotool import convert node qemu-system-x86_64 /usr/bin/chromium)
missing=(); for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo.sh: missing tools: ${missing[*]} (scripts/install-deps.sh test installs them)"
  if [ "${CI:-}" = true ]; then echo "0 passed, 1 failed"; exit 1; fi
  echo "0 passed, 0 failed (skipped)"; exit 0
fi
[ -x "$app" ] && [ -x "$cli" ] || { echo "demo.sh: build first: cargo build -p cernvm-webapi -p webapi-core"; echo "0 passed, 1 failed"; exit 1; }
[ -d "$root/tests/browser/node_modules/playwright-core" ] \
  || (cd "$root/tests/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  # the VM of this test, if the app left it running (it runs in the data dir's vms folder)
  for p in $(qemu_under "$OUT/data"); do kill -9 "$p" 2>/dev/null; done
}
trap cleanup EXIT

check "the desktop (openbox, tray host, notifications) starts" start_desktop "$OUT"
guest=$(sh "$root/tests/guest/build.sh" "$root/tests/.cache/guest" 2>"$OUT/guest-build.log" | tail -1)
check "the test guest is built" test -f "$guest"

site_port=$(free_port); app_port=$(free_port)
mkdir -p "$OUT/data"
start_demo_site "$OUT/data"
check "demo-site wrote the keystore" test -s "$keystore"

"$app" --listen "127.0.0.1:$app_port" --data-dir "$OUT/data" --keystore "$keystore" --hypervisor qemu >"$OUT/app.log" 2>&1 &
app_pid=$!; pids+=($app_pid)
if ! waitfor 300 curl -sf "http://127.0.0.1:$app_port/info"; then
  bad "the tray app answers /info"; tail -5 "$OUT/app.log"; summary; exit 1
fi
ok "the tray app answers /info"

page="http://127.0.0.1:$site_port/?daemon=http://127.0.0.1:$app_port"
rm -f "$OUT/driver.in"; mkfifo "$OUT/driver.in"
SCREENSHOT=${SCREENSHOT_DIR:+$SCREENSHOT_DIR/demo-running.png} \
  node "$root/tests/browser/demo-gui-driver.mjs" "$page" <"$OUT/driver.in" >"$OUT/driver.log" 2>"$OUT/driver.err" &
driver=$!; pids+=($driver)
exec 7>"$OUT/driver.in"
marker() { grep -q "^$1" "$OUT/driver.log"; }
# reached TENTHS MARKER: waits for the driver's MARKER line; gives up at once when the driver has exited
reached() {
  for _ in $(seq "$1"); do
    marker "$2" && return 0
    kill -0 "$driver" 2>/dev/null || { marker "$2"; return; }
    sleep 0.1
  done
  return 1
}
if ! waitfor 600 marker CONNECTED; then
  bad "the page connects to the app"; tail -5 "$OUT/driver.err"; summary; exit 1
fi
ok "the page connects to the app"
check "the page requests a session" waitfor 100 marker REQUESTED

dialog_window() { xdotool search --onlyvisible --name "^CernVM WebAPI: allow a new virtual machine\\?\$" 2>/dev/null | head -1; }
w=
for _ in $(seq 600); do w=$(dialog_window); [ -n "$w" ] && break; sleep 0.1; done
if [ -n "$w" ]; then
  ok "the consent dialog opens over the page"
  check "the consent dialog shows its content" waitfor 300 window_rendered "^CernVM WebAPI: allow a new virtual machine\\?\$" "$OUT/dialog.png"
  sleep 2   # the dialog's buttons answer only after its 1.5 s delay
  [ -n "${SCREENSHOT_DIR:-}" ] && import -window root "$SCREENSHOT_DIR/demo-consent.png"
  import -window root "$OUT/consent.png"
  xdotool windowactivate --sync "$w" key --clearmodifiers Tab space 2>/dev/null
else
  bad "the consent dialog opens over the page"
fi
check "the page gets its session after Allow" reached 600 SESSION
check "the VM runs and its API answers the page (apiStateChanged)" reached 3000 RUNNING
grep "^RUNNING" "$OUT/driver.log"
check "the page shows the state running and a forwarded apiURL" grep -Eq "^RUNNING state=running api=http://127\.0\.0\.1:[0-9]+/? " "$OUT/driver.log"
# (a for loop, not `pgrep | while`: an exit inside a pipeline only leaves its subshell)
qemu_of_test() { [ -n "$(qemu_under "$OUT/data")" ]; }
check "a QEMU process runs the VM" qemu_of_test
sleep 1
import -window root "$OUT/running.png"
echo go >&7
check "Pause: the page shows paused, apiStateChanged(0), the guest is silent" reached 1200 PAUSED
check "Resume: running again, apiStateChanged(1), the guest answers from the same boot" reached 3000 RESUMED
check "Stop: the page shows powered off, the guest is silent" reached 3000 STOPPED
check "Close: the page shows the session destroyed (missing)" reached 600 CLOSED
no_qemu_of_test() { ! qemu_of_test; }
check "no QEMU process of this test is left" waitfor 100 no_qemu_of_test
grep "^EVENTS" "$OUT/driver.log"
# the page observed the whole flow, in order
flow="plugin.connected page.requestSession page.session page.start session.stateChanged session.apiStateChanged page.pause session.stateChanged session.apiStateChanged page.resume session.stateChanged session.apiStateChanged page.stop session.stateChanged page.close session.stateChanged"
in_order() { local rest=" $(sed -n 's/^EVENTS //p' "$OUT/driver.log") "; for e in $flow; do [[ $rest == *" $e "* ]] || return 1; rest=${rest#* "$e" }; rest=" $rest"; done; }
check "the page logged connect, session, start, running, API up, pause, resume, stop, close in order" in_order
wait "$driver"; check "the driver finished cleanly" test $? -eq 0
[ -s "$OUT/driver.err" ] && sed 's/^/driver: /' "$OUT/driver.err"
summary
