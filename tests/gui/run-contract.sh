#!/usr/bin/env bash
# GUI end-to-end test of the README's contract "one command sets up and runs the app on its embedded
# defaults": runs `make run` (scripts/run.sh) as a volunteer would, in a fresh HOME (so a fresh data
# folder ~/.local/share/cernvm-webapi and a browser profile of its own), under Xvfb with a desktop, and
# checks: dependencies are checked/installed, the app and the CLI are built, the demo site and the tray
# app come up (tray icon, /info), the demo page opens in the default browser through xdg-open, connects
# to the app, and "Request session" makes the app show its consent dialog (denied here with Escape; the
# VM flow after "Allow" is tests/gui/demo.sh's). Finally it stops `make run` and checks nothing is left.
# Prints "N passed, M failed".
# Usage: tests/gui/run.sh tests/gui/run-contract.sh
# Not fresh on purpose: the Rust toolchain (RUSTUP_HOME/CARGO_HOME of the caller), CARGO_TARGET_DIR (a
# cold build of the app takes far longer than a test may) and the test guest cache (tests/.cache/guest).
# Free ports instead of 5624/8080 (`make run ARGS="--listen …"`, DEMO_LISTEN=…), so other runs on the
# machine do not collide. The default browser is Chromium through a user-level desktop entry (as root it
# needs --no-sandbox; the DevTools port lets the test read the page).
# Environment: CI=true (missing tools fail instead of skipping), E2E_OUT (artifacts).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
OUT=${E2E_OUT:-$(mktemp -d)}
need=(make openbox dunst gtk-sni-tray-standalone gdbus xdotool xdg-open node curl /usr/bin/chromium)
missing=(); for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run-contract.sh: missing tools: ${missing[*]} (scripts/install-deps.sh test installs them)"
  if [ "${CI:-}" = true ]; then echo "0 passed, 1 failed"; exit 1; fi
  echo "0 passed, 0 failed (skipped)"; exit 0
fi
[ -d "$root/tests/browser/node_modules/playwright-core" ] \
  || (cd "$root/tests/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

# The volunteer's fresh home; the toolchain stays where it is installed.
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
fresh=$OUT/home
rm -rf "$fresh"; mkdir -p "$fresh"
export HOME=$fresh
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME XDG_STATE_HOME BROWSER

site_port=$(free_port); app_port=$(free_port); cdp_port=$(free_port)
site="http://127.0.0.1:$site_port/"
# The default browser: Chromium, with a DevTools port for the test.
mkdir -p "$HOME/.local/share/applications" "$HOME/.config" "$HOME/bin"
sandbox=""; [ "$(id -u)" -eq 0 ] && sandbox="--no-sandbox --test-type"
cat >"$HOME/bin/e2e-browser" <<SH
#!/bin/sh
echo "\$@" >>"$OUT/browser-urls"
exec /usr/bin/chromium $sandbox --remote-debugging-port=$cdp_port --no-first-run --disable-gpu \\
  --window-position=0,0 --window-size=1000,780 "\$@"
SH
chmod +x "$HOME/bin/e2e-browser"
printf '[Desktop Entry]\nType=Application\nName=E2E browser\nExec=%s %%U\nMimeType=x-scheme-handler/http;\n' \
  "$HOME/bin/e2e-browser" >"$HOME/.local/share/applications/e2e-browser.desktop"
printf '[Default Applications]\nx-scheme-handler/http=e2e-browser.desktop\nx-scheme-handler/https=e2e-browser.desktop\n' \
  >"$HOME/.config/mimeapps.list"

pids=()
cleanup() {   # the whole process group of `make run`, the browser it opened included
  [ -n "${run_pid:-}" ] && kill -- -"$run_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT

check "the desktop (openbox, tray host, notifications) starts" start_desktop "$OUT"
# The README's command, in its own process group (stopped as a whole at the end, as Ctrl-C would), with
# SIGINT at its default (a background job of a script inherits it ignored; a terminal's job does not).
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' \
  make -C "$root" run ARGS="--listen 127.0.0.1:$app_port" DEMO_LISTEN="127.0.0.1:$site_port" \
  >"$OUT/make-run.log" 2>&1 &
run_pid=$!
up() { curl -sf "http://127.0.0.1:$app_port/info" >/dev/null; }
if ! waitfor 6000 up; then   # (a build after a source change takes minutes)
  bad "make run starts the tray app (answers /info)"; tail -20 "$OUT/make-run.log"; summary; exit 1
fi
ok "make run starts the tray app (answers /info)"
check "make run checked the dependencies" grep -q "^install-deps: ok (run)" "$OUT/make-run.log"
check "the data folder is the fresh home's" test -s "$HOME/.local/share/cernvm-webapi/demo/keystore.txt"
check "the app trusts the demo site's key" grep -q "trusted by the app through $HOME/.local/share/cernvm-webapi/demo/keystore.txt" "$OUT/make-run.log"
check "the demo site serves the page" bash -c "curl -sf '$site' | grep -q '<title>CernVM WebAPI demo</title>'"
check "the demo VMCP needs the app's salt (400 without it)" test "$(curl -s -o /dev/null -w '%{http_code}' "${site}vmcp")" = 400
check "the tray icon registers" waitfor 300 has_tray_item
page="${site}?daemon=http://127.0.0.1:$app_port"
check "xdg-open opens the demo page in the default browser" waitfor 300 grep -qxF "$page" "$OUT/browser-urls"

node "$root/tests/browser/run-contract-driver.mjs" "http://127.0.0.1:$cdp_port" "$site" >"$OUT/driver.log" 2>"$OUT/driver.err" &
driver=$!; pids+=($driver)
marker() { grep -q "^$1" "$OUT/driver.log"; }
check "the page connects to the app" waitfor 900 marker CONNECTED
check "the page requests a session" waitfor 100 marker REQUESTED
dialog_window() { xdotool search --onlyvisible --name "^CernVM WebAPI: allow a new virtual machine\\?\$" 2>/dev/null | head -1; }
w=
for _ in $(seq 600); do w=$(dialog_window); [ -n "$w" ] && break; sleep 0.1; done
if [ -n "$w" ]; then
  ok "the app shows its consent dialog"
  check "the consent dialog shows its content" waitfor 300 window_rendered "^CernVM WebAPI: allow a new virtual machine\\?\$" "$OUT/dialog.png"
  import -window root "$OUT/consent.png"
  xdotool windowactivate --sync "$w" key --clearmodifiers Escape 2>/dev/null
else
  bad "the app shows its consent dialog"
fi
check "Escape denies: the page reports NOT_ALLOWED (-10)" waitfor 600 grep -q "^DENIED code=-10" "$OUT/driver.log"
wait "$driver"; check "the driver finished cleanly" test $? -eq 0
[ -s "$OUT/driver.err" ] && sed 's/^/driver: /' "$OUT/driver.err"

# Stop `make run` as Ctrl-C in its terminal would.
kill -INT -- -"$run_pid" 2>/dev/null
gone() { ! kill -0 "$run_pid" 2>/dev/null; }
check "make run stops on Ctrl-C" waitfor 200 gone
site_down() { ! curl -s -o /dev/null "$site"; }
check "the demo site stopped with it" waitfor 100 site_down
app_down() { ! up; }
check "the tray app stopped with it" waitfor 100 app_down
summary
