#!/usr/bin/env bash
# GUI e2e of the live tray: notifications reach the desktop's notification server (dunst) through real
# paths, rate-limited; the tray icon switches to "attention" while a consent dialog waits and back after;
# "Start at login" is off by default and toggles the autostart entry; a click on a notification opens the
# control panel; Quit with no VM exits at once.
# Consent requests are real requestSession calls over WebSockets (tests/bin/webapi_page.rs) for VMCPs
# signed with a key from `cvmwebapi keygen`. Run through run.sh:
#   cargo build -p cernvm-webapi -p webapi-core -p webapi-e2e --bins
#   tests/gui/run.sh tests/gui/tray-live.sh [cernvm-webapi [cvmwebapi [webapi-page]]]
set -u
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
target=${CARGO_TARGET_DIR:-$root/target}
APP=${1:-$target/debug/cernvm-webapi}
CLI=${2:-$target/debug/cvmwebapi}
PAGE=${3:-$target/debug/webapi-page}
for t in dunstctl wmctrl compare; do
  command -v "$t" >/dev/null && continue
  echo "tray-live.sh: missing $t (scripts/install-deps.sh test installs it)"
  if [ "${CI:-}" = true ]; then bad "tools present"; summary; exit 1; fi
  echo "SKIPPED (CI is not set)"; exit 0
done
OUT=$E2E_OUT; DATA=$(mktemp -d); PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APP_HOME=$(mktemp -d)   # the app's HOME: "Start at login" writes $HOME/.config/autostart/*.desktop
AUTOSTART=$APP_HOME/.config/autostart
DIALOG='allow a new virtual machine'
pids=()
ask() { page_ask "$PAGE" "$PORT" "$OUT" "$@"; }   # NAME ORIGIN VM: a requestSession in the background
answer() { waitfor 300 page_has_outcome "$OUT" "$1"; tail -1 "$OUT/$1.log"; }
DENIED='failed ["User denied the allocation of new session",-10]'
# close_window ID: asks the window manager to close window ID until it is gone (a dialog that is still
# being set up may miss the first request on a loaded machine).
close_window() {
  local w=$1 hex; hex=$(printf '0x%x' "$w")
  for _ in $(seq 40); do
    wmctrl -i -c "$hex" 2>/dev/null
    sleep 0.1
    xdotool search --onlyvisible --name "$DIALOG" 2>/dev/null | grep -qx "$w" || return 0
  done
  return 1
}
THROTTLED='failed ["Request denied by throttle protection",-10]'
# history_has TEXT: dunst's history (all notifications, once closed) contains TEXT.
history_has() { dunstctl close-all; dunstctl history >"$OUT/dunst-history.json"; grep -qF -- "$1" "$OUT/dunst-history.json"; }
# summary_count SUMMARY: how many notifications in dunst's history have exactly that summary.
summary_count() { dunstctl close-all; dunstctl history | grep -cF -- "\"data\" : \"$1\""; }
icon_is() { tray_icon_is "$ITEM" "$ITEM_PATH" "$1"; }
toggle_state() { # LABEL: the dbusmenu toggle-state of the entry with that label
  tray_layout "$ITEM" "$MENU" | grep -oE "\{[^{}]*'label': <'$1'>[^{}]*\}" | grep -oE "'toggle-state': <-?[0-9]+>" | grep -oE '<-?[0-9]+>' | tr -d '<>'
}

check "desktop services up (tray watcher, notifications)" start_desktop "$OUT"
check "the test website serves signed VMCPs" start_test_site "$OUT" "$CLI" "$PAGE" notify.example.org
HOME=$APP_HOME RUST_LOG=info "$APP" --listen "127.0.0.1:$PORT" --data-dir "$DATA" --keystore "$OUT/keystore.txt" \
  >"$OUT/app.log" 2>&1 &
APP_PID=$!
check "the app starts" waitfor 300 curl -sf "http://127.0.0.1:$PORT/info"
check "tray item registered" waitfor 100 has_tray_item
ITEM=$(tray_item); MENU=$(tray_menu_path "$ITEM"); ITEM_PATH=${MENU%/Menu}
tray_layout "$ITEM" "$MENU" >"$OUT/menu-layout.txt"
check "icon: idle at start (no session)" waitfor 50 icon_is idle
# The tray app always runs the idle controller, so "Snooze" is offered from the start (enabled).
check "menu: snooze is offered" grep -q "'label': <'Snooze idle control for 1 hour'>" "$OUT/menu-layout.txt"
check "menu: snooze is enabled" bash -c "! grep -qE \"\\{[^{}]*'enabled': <false>[^{}]*'label': <'Snooze idle control for 1 hour'>|\\{[^{}]*'label': <'Snooze idle control for 1 hour'>[^{}]*'enabled': <false>\" '$OUT/menu-layout.txt'"

# Start at login: off by default; the checkbox writes and removes the desktop's autostart entry.
autostart_entry() { ls "$AUTOSTART"/*.desktop >/dev/null 2>&1; }
check "Start at login is off by default (no autostart entry)" bash -c "! ls '$AUTOSTART'/*.desktop 2>/dev/null"
check "Start at login shows unchecked" [ "$(toggle_state 'Start at login')" = 0 ]
tray_click "$ITEM" "$MENU" "Start at login"
check "checking Start at login writes the autostart entry" waitfor 50 autostart_entry
check "the autostart entry starts this app" bash -c "grep -q '^Exec=.*cernvm-webapi' '$AUTOSTART'/*.desktop"
autostart_checked() { [ "$(toggle_state 'Start at login')" = 1 ]; }
check "Start at login shows checked" waitfor 50 autostart_checked
tray_click "$ITEM" "$MENU" "Start at login"
check "unchecking Start at login removes the autostart entry" waitfor 50 bash -c "! ls '$AUTOSTART'/*.desktop 2>/dev/null"

# A consent request: the dialog waits → a notification and the attention icon.
A=https://notify.example.org
ask a1 "$A" notify-vm
check "the consent dialog opens" waitfor 200 window_exists "$DIALOG"
w1=$(visible_window "$DIALOG")
check "notification: consent waiting reaches dunst" waitfor 100 history_has "A website asks to run a virtual machine"
check "notification names the website" history_has "$A waits for your answer"
check "icon: attention while the dialog waits" waitfor 50 icon_is attention
# The page asks again while the dialog is open: that request waits for the next dialog. Two denials
# within the real five seconds then block the site.
ask a2 "$A" notify-vm
waitfor 100 grep -qF 'lengthyTask ["Session is new, asking user for confirmation",1]' "$OUT/a2.log"
close_window "$w1"
r=$(answer a1); check "closing the dialog denies (got $r)" [ "$r" = "$DENIED" ]
next_dialog() { local w; w=$(visible_window "$DIALOG"); [ -n "$w" ] && [ "$w" != "$w1" ]; }
check "the second dialog opens" waitfor 200 next_dialog
close_window "$(visible_window "$DIALOG")"
r=$(answer a2); check "second denial (got $r)" [ "$r" = "$DENIED" ]

# A third request within the throttle window: the site is blocked → a "Website blocked" notification.
ask a3 "$A" notify-vm
r=$(answer a3); check "third request is blocked (got $r)" [ "$r" = "$THROTTLED" ]
# A click on a notification opens the control panel: `dunstctl action 0` invokes the default action of
# the newest notification on screen, as a click on it does.
on_screen() { [ "$(dunstctl count displayed)" -gt 0 ]; }
check "a notification is on screen" waitfor 50 on_screen
dunstctl action 0
panel_open() { wmctrl -l | grep -qE ' CernVM WebAPI$'; }
check "clicking the notification opens the control panel" waitfor 150 panel_open
check "notification: site blocked reaches dunst" waitfor 50 history_has "Website blocked"
n=$(summary_count 'A website asks to run a virtual machine')
check "rate limit: one consent notification per 30 s for two dialogs (got $n)" [ "$n" = 1 ]
check "icon: back to idle after the answers" waitfor 50 icon_is idle
offers_unblock() { tray_layout "$ITEM" "$MENU" | grep -qF "'label': <'Unblock $A'>"; }
check "the tray offers to unblock it" waitfor 50 offers_unblock
dunstctl history >"$OUT/dunst-history.json"

# Quit with no VM running: no question, the app exits.
tray_click "$ITEM" "$MENU" "Quit"
check "Quit with no VM exits at once" waitfor 100 bash -c "! kill -0 $APP_PID"
exit_code "$APP_PID"; rc=$?
check "Quit exits with code 0 (got $rc)" test "$rc" -eq 0

kill %1 %2 %3 2>/dev/null
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
rm -rf "$DATA" "$APP_HOME"
summary
