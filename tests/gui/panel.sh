#!/usr/bin/env bash
# GUI end-to-end test of the control panel: the real tray app under Xvfb + openbox + an SNI tray host;
# a real session (the demo site's page in Chromium asks for it through the WebSocket API, the consent
# dialog is answered with xdotool, the test guest boots under QEMU); the panel opened from the tray menu
# over dbusmenu; what it shows read back by OCR (tesseract) from screenshots of its window; a setting
# changed with the keyboard in the panel; the app restarted; the setting still in settings.json and in
# the panel; the panel's own Quit ends the app. Closing the panel must destroy its webview. Prints
# "N passed, M failed".
# Usage: tests/gui/run.sh tests/gui/panel.sh [path/to/cernvm-webapi [path/to/cvmwebapi]]
# Environment: SCREENSHOT_DIR (saves panel-sessions.png and panel-settings.png there for the user guide),
# CI=true (missing tools fail instead of skipping), E2E_OUT (artifacts: screenshots, OCR text, logs).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
target=${CARGO_TARGET_DIR:-$root/target}
app=${1:-$target/debug/cernvm-webapi}
cli=${2:-$target/debug/cvmwebapi}
OUT=${E2E_OUT:-$(mktemp -d)}
need=(openbox dunst gtk-sni-tray-standalone gdbus xdotool wmctrl import convert tesseract node qemu-system-x86_64 /usr/bin/chromium)
missing=(); for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "panel.sh: missing tools: ${missing[*]} (scripts/install-deps.sh test installs them)"
  if [ "${CI:-}" = true ]; then echo "0 passed, 1 failed"; exit 1; fi
  echo "0 passed, 0 failed (skipped)"; exit 0
fi
[ -x "$app" ] && [ -x "$cli" ] || { echo "panel.sh: build first: cargo build -p cernvm-webapi -p webapi-core"; echo "0 passed, 1 failed"; exit 1; }
[ -d "$root/tests/browser/node_modules/playwright-core" ] \
  || (cd "$root/tests/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

DATA=$OUT/data; APP_HOME=$OUT/home; mkdir -p "$DATA" "$APP_HOME"
PANEL='^CernVM WebAPI$'
NEW_THRESHOLD=420
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in $(qemu_under "$DATA"); do kill -9 "$p" 2>/dev/null; done
}
trap cleanup EXIT

# shot NAME: a picture of the panel window in $OUT/NAME.png, its OCR text in $OUT/NAME.txt and word boxes
# in $OUT/NAME.tsv (read from a copy scaled up twice: tesseract reads small UI text much better that way).
shot() {
  local w; w=$(visible_window "$PANEL"); [ -n "$w" ] || return 1
  import -window "$w" "$OUT/$1.png" 2>/dev/null || return 1
  convert "$OUT/$1.png" -resize 200% -colorspace Gray "$OUT/$1-ocr.png" || return 1
  OMP_THREAD_LIMIT=1 tesseract "$OUT/$1-ocr.png" "$OUT/$1" txt tsv >/dev/null 2>&1
}
# panel_reads NAME TEXT...: a fresh shot NAME whose OCR text contains every TEXT (case matters).
panel_reads() {
  local name=$1 t; shift
  shot "$name" || return 1
  for t in "$@"; do grep -qF -- "$t" "$OUT/$name.txt" || return 1; done
}
# eventually SECONDS NAME TEXT...: retries panel_reads until it succeeds or SECONDS have passed
# (one OCR takes from one to twenty seconds, depending on the machine's load).
eventually() {
  local end=$((SECONDS + $1)); shift
  while :; do panel_reads "$@" && return 0; [ "$SECONDS" -lt "$end" ] || return 1; sleep 1; done
}
# click_word NAME WORD: clicks the centre of the topmost word WORD that OCR found in shot NAME.
click_word() {
  local w box; w=$(visible_window "$PANEL"); [ -n "$w" ] || return 1
  box=$(awk -F'\t' -v word="$2" '$12 == word { print $8, $7, $9, $10 }' "$OUT/$1.tsv" | sort -n | head -1)
  [ -n "$box" ] || return 1
  set -- $box   # top left width height, in the twice-scaled picture
  xdotool windowactivate --sync "$w" mousemove --window "$w" $((($2 + $3 / 2) / 2)) $((($1 + $4 / 2) / 2)) click 1
}
# settings.json holds the idle threshold (as idle.thresholdSecs) with the new value.
saved_in_file() { grep -Eq "\"(idleT|t)hresholdSecs\": *$NEW_THRESHOLD([^0-9]|\$)" "$DATA/settings.json"; }
tray() { tray_click "$(tray_item)" "$(tray_menu_path "$(tray_item)")" "$1"; }
start_app() {
  HOME=$APP_HOME RUST_LOG=info "$app" --listen "127.0.0.1:$app_port" --data-dir "$DATA" --keystore "$keystore" \
    --hypervisor qemu >>"$OUT/app.log" 2>&1 &
  app_pid=$!; pids+=($app_pid)
  waitfor 300 curl -sf "http://127.0.0.1:$app_port/info" && waitfor 100 has_tray_item
}

check "the desktop (openbox, tray host, notifications) starts" start_desktop "$OUT"
guest=$(sh "$root/tests/guest/build.sh" "$root/tests/.cache/guest" 2>"$OUT/guest-build.log" | tail -1)
check "the test guest is built" test -f "$guest"
site_port=$(free_port); app_port=$(free_port)
start_demo_site "$DATA"
if ! start_app; then bad "the tray app starts and registers its tray item"; tail -5 "$OUT/app.log"; summary; exit 1; fi
ok "the tray app starts and registers its tray item"

# A real session: the demo page asks for it over the WebSocket API; the consent dialog is answered.
page="http://127.0.0.1:$site_port/?daemon=http://127.0.0.1:$app_port"
mkfifo "$OUT/driver.in"
node "$root/tests/browser/demo-gui-driver.mjs" "$page" <"$OUT/driver.in" >"$OUT/driver.log" 2>"$OUT/driver.err" &
driver=$!; pids+=($driver)
exec 7>"$OUT/driver.in"
marker() { grep -q "^$1" "$OUT/driver.log"; }
check "the page connects and requests a session" waitfor 600 marker REQUESTED
dialog_window() { xdotool search --onlyvisible --name "^CernVM WebAPI: allow a new virtual machine\\?\$" 2>/dev/null | head -1; }
# Allow: clicked where tests/gui/consent.sh clicks it, once the dialog has painted; the button answers only
# after the dialog's delay, so the click is repeated until the dialog is gone (a slow machine paints late).
ALLOW_FROM_RIGHT=78; ALLOW_FROM_BOTTOM=120
allow_clicked() {
  local w X Y WIDTH HEIGHT clicked=0
  for _ in $(seq 12); do
    w=$(dialog_window)
    # Gone after a click: answered. Not (yet) visible before any click: look again.
    if [ -z "$w" ]; then [ "$clicked" = 1 ] && return 0; sleep 1; continue; fi
    window_rendered "^CernVM WebAPI: allow a new virtual machine\\?\$" "$OUT/consent.png" || { sleep 1; continue; }
    sleep 2
    eval "$(xdotool getwindowgeometry --shell "$w")"
    xdotool windowactivate --sync "$w" 2>/dev/null
    xdotool mousemove --sync $((X + WIDTH - ALLOW_FROM_RIGHT)) $((Y + HEIGHT - ALLOW_FROM_BOTTOM)) click 1
    clicked=1
    sleep 2
  done
  [ "$clicked" = 1 ] && [ -z "$(dialog_window)" ]
}
check "the consent dialog opens" waitfor 600 bash -c "xdotool search --onlyvisible --name '^CernVM WebAPI: allow a new virtual machine' | grep -q ."
check "the consent dialog is answered with Allow" allow_clicked
check "the VM runs and its API answers the page" waitfor 3000 marker RUNNING

# The panel, opened from the tray menu, shows the session with its state, website and image.
check "no panel webview before it is opened" no_webview "$app_pid"
tray "Open control panel"
check "Open control panel (tray menu) shows the panel" waitfor 200 window_exists "$PANEL"
check "the panel has a webview (in the panel process)" waitfor 100 has_webview "$app_pid"
check "the panel shows the daemon's status" eventually 120 status "listening on 127.0.0.1:$app_port"
check "the panel lists the session: VM name, state, website" \
  eventually 180 sessions "webapi-demo" "Running" "127.0.0.1:$site_port"
check "the panel shows the table's columns" panel_reads sessions "CPU cap" "Idle policy" "Actions"
sleep 6   # a few samples for the chart
shot sessions
[ -n "${SCREENSHOT_DIR:-}" ] && convert "$OUT/sessions.png" -strip -colors 128 "$SCREENSHOT_DIR/panel-sessions.png"

# Closing the panel destroys its webview; "Show in panel" on the session's tray submenu brings it back.
wmctrl -i -c "$(visible_window "$PANEL")"
check "closing the panel removes its window" waitfor 100 no_window "$PANEL"
check "closing the panel destroys its webview" waitfor 100 no_webview "$app_pid"
tray "Show in panel"
check "Show in panel (session submenu) opens the panel on that session" waitfor 200 window_exists "$PANEL"
check "... which lists the session" eventually 120 shown "webapi-demo"

# Settings: change the idle threshold with the keyboard, as a user would, and save.
check "the Settings tab is found" panel_reads tabs "Settings"
click_word tabs "Settings"
check "the Settings tab opens" eventually 120 settings "Idle after" "Save settings"
xdotool key --clearmodifiers Tab ctrl+a BackSpace; xdotool type --delay 40 "$NEW_THRESHOLD"; xdotool key Return
check "the panel says the settings are saved" eventually 120 saved "Saved"
check "settings.json in the data folder has the new idle threshold" \
  waitfor 50 saved_in_file
shot settings
[ -n "${SCREENSHOT_DIR:-}" ] && convert "$OUT/settings.png" -strip -colors 128 "$SCREENSHOT_DIR/panel-settings.png"

# Restart: close the session (Quit then needs no question), quit from the tray, start again.
echo close >&7
check "the page closes its session" waitfor 600 marker CLOSED
wait "$driver" 2>/dev/null
tray "Quit"
check "Quit exits the app" waitfor 150 bash -c "! kill -0 $app_pid"
if ! start_app; then bad "the app starts again"; tail -5 "$OUT/app.log"; summary; exit 1; fi
ok "the app starts again"
tray "Open control panel"
check "the panel opens after the restart" waitfor 200 window_exists "$PANEL"
check "the Settings tab is found after the restart" eventually 120 tabs2 "Settings"
click_word tabs2 "Settings"
check "after the restart the panel shows the saved idle threshold" eventually 120 restarted "Idle after" "$NEW_THRESHOLD"
check "settings.json still has it" saved_in_file

# The panel's own Quit (for desktops without a tray icon): no VM runs, so the app quits at once.
check "the Settings tab offers Quit" eventually 120 quit "Quit CernVM WebAPI"
click_word quit "Quit"
check "Quit in the panel exits the app" waitfor 150 bash -c "! kill -0 $app_pid"
check "... as its log says" grep -q "Quit chosen in the control panel" "$OUT/app.log"
check "... and the panel goes with it" waitfor 100 no_window "$PANEL"
[ -s "$OUT/driver.err" ] && sed 's/^/driver: /' "$OUT/driver.err"
summary
