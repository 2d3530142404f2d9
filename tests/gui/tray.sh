#!/usr/bin/env bash
# GUI e2e of the tray app shell: on a desktop without tray icons the control panel opens by itself; tray
# registration and menu (its fixed entries) over dbusmenu, no webview at start, the control
# panel opened from the menu in a process of its own and gone on close (no WebKit process left), opened again, /info, single
# instance, Quit. Run through run.sh.
# Usage (inside run.sh): tray.sh APP_BINARY CLI_BINARY
set -u
APP=${1:?usage: tray.sh APP_BINARY CLI_BINARY}; CLI=${2:?usage: tray.sh APP_BINARY CLI_BINARY}
. "$(dirname "$0")/lib.sh"
OUT=$E2E_OUT; DATA=$(mktemp -d); PORT=$((20000 + RANDOM % 20000)); TITLE='^CernVM WebAPI$'
info() { curl -sf --max-time 5 -H "Origin: http://test.local:8080" "http://127.0.0.1:$PORT/info"; }
port_closed() { ! curl -s --max-time 2 "http://127.0.0.1:$PORT/info" >/dev/null; }
alive() { kill -0 "$APP_PID" 2>/dev/null; }

check "desktop services up (tray watcher, notifications)" start_desktop "$OUT"

# Without a display the app says so and exits non-zero (GTK would abort).
env -u DISPLAY -u WAYLAND_DISPLAY "$APP" --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$OUT/nodisplay.log" 2>&1
rc=$?
check "no display: clear message, exit code 4 (got $rc)" \
  bash -c "[ $rc -eq 4 ] && grep -q 'no graphical display' '$OUT/nodisplay.log'"

# A desktop that shows no tray icons (a session bus without a StatusNotifierItem watcher, and no XEmbed
# tray: like GNOME without the AppIndicator extension): the app opens its control panel instead.
NOTRAY_DATA=$(mktemp -d); NOTRAY_PORT=$((PORT + 1))
# (dunst on that bus takes the notifications.)
setsid dbus-run-session -- sh -c 'dunst >/dev/null 2>&1 & exec "$0" "$@"' \
  "$APP" --listen "127.0.0.1:$NOTRAY_PORT" --data-dir "$NOTRAY_DATA" >"$OUT/no-tray.log" 2>&1 &
NOTRAY_GROUP=$!
check "no tray host: the control panel opens by itself" waitfor 300 window_exists "$TITLE"
check "... and the log says why" grep -q "shows no tray icons" "$OUT/no-tray.log"
check "... and so does a notification" waitfor 50 bash -c "grep -q 'notification shown.*runs without a tray icon' '$OUT/no-tray.log'"
kill -- -"$NOTRAY_GROUP" 2>/dev/null
check "... its window goes with the app" waitfor 100 no_window "$TITLE"
rm -rf "$NOTRAY_DATA"

"$APP" --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$OUT/app.log" 2>&1 &
APP_PID=$!
check "/info answers on the custom port" waitfor 300 info
check "/info reports the caller's domain" bash -c "curl -sf -H 'Origin: http://test.local:8080' http://127.0.0.1:$PORT/info | grep -q '\"domain\":\"test.local\"'"

check "tray item registered with the SNI watcher" waitfor 100 has_tray_item
ITEM=$(tray_item); MENU=$(tray_menu_path "$ITEM")
LAYOUT=$(tray_layout "$ITEM" "$MENU" 2>&1); echo "$LAYOUT" >"$OUT/menu-layout.txt"
check "menu: status line shows the listening address" grep -q "'label': <'Listening on 127.0.0.1:$PORT · no sessions'>" <<<"$LAYOUT"
check "menu: 'Open control panel' entry" grep -q "'label': <'Open control panel'>" <<<"$LAYOUT"
check "menu: 'Quit' entry" grep -q "'label': <'Quit'>" <<<"$LAYOUT"
check "menu: idle control status line (the controller runs)" \
  grep -q "'label': <'Idle control: in use · no VM under idle control'>" <<<"$LAYOUT"
for entry in 'Pause all' 'Resume all' 'Snooze idle control for 1 hour' \
  'Blocked sites…' 'Open logs folder' 'Start at login'; do
  check "menu: '$entry' entry" grep -q "'label': <'$entry'>" <<<"$LAYOUT"
done
# With no session there is nothing to pause or resume, and nothing to snooze without idle control.
check "menu: 'Pause all' is disabled with no session" \
  grep -qE "'enabled': <false>, 'label': <'Pause all'>|'label': <'Pause all'>, 'enabled': <false>" <<<"$LAYOUT"
check "menu: 'Start at login' is an unchecked checkbox (opt-in)" \
  grep -qE "\{[^{}]*'label': <'Start at login'>[^{}]*'toggle-state': <0>|\{[^{}]*'toggle-state': <0>[^{}]*'label': <'Start at login'>" <<<"$LAYOUT"

check "the app found the tray host" waitfor 100 grep -q "a tray host shows the icon" "$OUT/app.log"
check "no window at start" no_window "$TITLE"
check "no WebKit process at start" no_webkit_process "$APP_PID"

# A second launch must not start a second listener: it hands over to us (we show the panel) and exits.
timeout 30 "$APP" --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$OUT/second.log" 2>&1
rc=$?
check "second launch exits at once (exit $rc) and the first lives on" bash -c "[ $rc -ne 124 ] && kill -0 $APP_PID"
check "second launch showed the control panel" waitfor 100 window_exists "$TITLE"
wmctrl -c 'CernVM WebAPI'; waitfor 50 no_window "$TITLE"

# The CLI refuses to start next to the app.
"$CLI" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$OUT/cli.log" 2>&1
rc=$?
check "cvmwebapi serve refuses the taken port (exit $rc)" bash -c "[ $rc -eq 3 ] && grep -q 'already listens' '$OUT/cli.log'"

tray_click "$ITEM" "$MENU" "Open control panel"
check "'Open control panel' shows the window" waitfor 100 window_exists "$TITLE"
panel_running() { [ -n "$(panel_process_of "$APP_PID")" ]; }
check "the panel runs in a process of its own (cernvm-webapi --panel-window)" waitfor 50 panel_running
check "the panel runs in a WebKit web process" waitfor 50 has_webview "$APP_PID"
check "the panel renders its page" waitfor 200 window_rendered "$TITLE" "$OUT/panel.png"
# The README's picture: the tray menu (opened with a right click on the icon) over the panel.
xdotool mousemove 16 16 click 3; sleep 1.5
import -window root -crop 1130x720+0+0 "$OUT/tray-and-panel.png" 2>/dev/null
# The user guide's picture of the menu alone (docs/img/tray-menu.png).
convert "$OUT/tray-and-panel.png" -crop 334x294+0+0 +repage "$OUT/tray-menu.png" 2>/dev/null; xdotool key Escape

wmctrl -c 'CernVM WebAPI'
check "closing the panel removes the window" waitfor 50 no_window "$TITLE"
check "closing the panel ends its WebKit web process" waitfor 100 no_webview "$APP_PID"
# ... and its process, with every WebKit process of it: the tray process never loaded the web engine.
panel_gone() { [ -z "$(panel_process_of "$APP_PID")" ]; }
check "closing the panel ends the panel process" waitfor 100 panel_gone
check "with no window left, no WebKit process is left" waitfor 100 no_webkit_process "$APP_PID"
pgrep -a -P "$APP_PID" >"$OUT/children-after-close.txt"
# The app also unmaps the code pages it no longer runs (webapi_core::footprint); the panel must still
# work after.
check "after the panel closed, the app released its unused code pages" \
  waitfor 100 grep -q 'control panel closed: unused code pages released' "$OUT/app.log"
tray_click "$ITEM" "$MENU" "Open control panel"
check "the panel opens again (after the release)" waitfor 100 window_exists "$TITLE"
check "the panel renders its page again" waitfor 200 window_rendered "$TITLE" "$OUT/panel-again.png"
wmctrl -c 'CernVM WebAPI'
check "closing it again removes the window" waitfor 50 no_window "$TITLE"
# Opened from the tray right after asking the window to close: a panel must appear, shown by a new panel
# process (the closing one tells the tray it is ending, or that it could not show itself; the timing
# here does not single out which of these paths runs).
tray_click "$ITEM" "$MENU" "Open control panel"
check "the panel opens once more" waitfor 100 window_exists "$TITLE"
waitfor 200 window_rendered "$TITLE" "$OUT/panel-third.png"
wmctrl -c 'CernVM WebAPI'
tray_click "$ITEM" "$MENU" "Open control panel"
sleep 1  # the closing window is gone by now; what shows is the new process's
check "a panel opened right as the last one closes appears" waitfor 150 window_exists "$TITLE"
check "... and renders" waitfor 200 window_rendered "$TITLE" "$OUT/panel-reopened.png"
wmctrl -c 'CernVM WebAPI'; waitfor 50 no_window "$TITLE"
check "the app lives on in the tray after closing the panel" alive
check "/info still answers" info

tray_click "$ITEM" "$MENU" "Quit"
check "Quit exits the app" waitfor 100 bash -c "! kill -0 $APP_PID"
exit_code "$APP_PID"; rc=$?
check "Quit exits with code 0 (got $rc)" test "$rc" -eq 0
check "the listener is closed after Quit" port_closed

kill %1 %2 %3 2>/dev/null
rm -rf "$DATA"
summary
