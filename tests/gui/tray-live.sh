#!/usr/bin/env bash
# GUI e2e of the live tray: notifications reach the desktop's notification server (dunst) through real
# paths, rate-limited; the tray icon switches to "attention" while a consent dialog waits and back after;
# "Start at login" is off by default and toggles the autostart entry; Quit with no VM exits at once.
# Consent requests enter through the test-only hook of a build with the `e2e-hooks` feature (the same
# ConsentBroker and dialog the daemon uses). Run through run.sh:
#   cargo build -p cernvm-webapi --features e2e-hooks
#   tests/gui/run.sh tests/gui/tray-live.sh target/debug/cernvm-webapi
set -u
APP=${1:?usage: tray-live.sh APP_BINARY (built with --features e2e-hooks)}
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
for t in dunstctl wmctrl compare; do
  command -v "$t" >/dev/null && continue
  echo "tray-live.sh: missing $t (scripts/install-deps.sh test installs it)"
  if [ "${CI:-}" = true ]; then bad "tools present"; summary; exit 1; fi
  echo "SKIPPED (CI is not set)"; exit 0
done
OUT=$E2E_OUT; DATA=$(mktemp -d); PORT=$((20000 + RANDOM % 20000)); HOOK=$((PORT + 1))
APP_HOME=$(mktemp -d)   # the app's HOME: "Start at login" writes $HOME/.config/autostart/*.desktop
AUTOSTART=$APP_HOME/.config/autostart
DIALOG='allow a new virtual machine'
ctl() { curl -sf --max-time 10 "http://127.0.0.1:$HOOK/$1"; }
ask() { # ORIGIN NAME: a consent request in the background; its answer lands in $OUT/NAME
  rm -f "$OUT/$2"
  curl -s --max-time 120 -G "http://127.0.0.1:$HOOK/consent" --data-urlencode "origin=$1" \
    --data-urlencode "vm=Notify test VM" >"$OUT/$2.tmp" && mv "$OUT/$2.tmp" "$OUT/$2" &
}
answer() { local n; for n in $(seq 300); do [ -s "$OUT/$1" ] && { cat "$OUT/$1"; return 0; }; sleep 0.1; done; echo "(none)"; }
# history_has TEXT: dunst's history (all notifications, once closed) contains TEXT.
history_has() { dunstctl close-all; dunstctl history >"$OUT/dunst-history.json"; grep -qF -- "$1" "$OUT/dunst-history.json"; }
# summary_count SUMMARY: how many notifications in dunst's history have exactly that summary.
summary_count() { dunstctl close-all; dunstctl history | grep -cF -- "\"data\" : \"$1\""; }
# icon_is KIND: the tray item's current icon has the pixels of icons/tray/KIND.png.
icon_is() {
  local name dir file
  name=$(gdbus call --session --dest "$ITEM" --object-path "$ITEM_PATH" --method org.freedesktop.DBus.Properties.Get \
    org.kde.StatusNotifierItem IconName 2>/dev/null | grep -o "'[^']*'" | tr -d "'")
  dir=$(gdbus call --session --dest "$ITEM" --object-path "$ITEM_PATH" --method org.freedesktop.DBus.Properties.Get \
    org.kde.StatusNotifierItem IconThemePath 2>/dev/null | grep -o "'[^']*'" | tr -d "'")
  file=$name; [ -f "$file" ] || file="$dir/$name.png"; [ -f "$file" ] || file="$dir/$name"
  [ -f "$file" ] || return 1
  [ "$(compare -metric AE "$file" "$root/icons/tray/$1.png" null: 2>&1)" = 0 ]
}
toggle_state() { # LABEL: the dbusmenu toggle-state of the entry with that label
  tray_layout "$ITEM" "$MENU" | grep -oE "\{[^{}]*'label': <'$1'>[^{}]*\}" | grep -oE "'toggle-state': <-?[0-9]+>" | grep -oE '<-?[0-9]+>' | tr -d '<>'
}

check "desktop services up (tray watcher, notifications)" start_desktop "$OUT"
HOME=$APP_HOME CERNVM_WEBAPI_E2E_PORT=$HOOK CERNVM_WEBAPI_E2E_THROTTLE_WINDOW_MS=120000 RUST_LOG=info \
  "$APP" --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$OUT/app.log" 2>&1 &
APP_PID=$!
check "the app starts with its test hooks" waitfor 300 ctl dialog
check "tray item registered" waitfor 100 has_tray_item
ITEM=$(tray_item); MENU=$(tray_menu_path "$ITEM"); ITEM_PATH=${MENU%/Menu}
tray_layout "$ITEM" "$MENU" >"$OUT/menu-layout.txt"
check "icon: idle at start (no session)" waitfor 50 icon_is idle
check "menu: snooze is disabled without idle control" \
  grep -qE "\{[^{}]*'enabled': <false>[^{}]*'label': <'Snooze idle control for 1 hour'>|\{[^{}]*'label': <'Snooze idle control for 1 hour'>[^{}]*'enabled': <false>" "$OUT/menu-layout.txt"

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
ask "$A" a1
check "the consent dialog opens" waitfor 200 window_exists "$DIALOG"
check "notification: consent waiting reaches dunst" waitfor 100 history_has "A website asks to run a virtual machine"
check "notification names the website" history_has "$A waits for your answer"
check "icon: attention while the dialog waits" waitfor 50 icon_is attention
wmctrl -c "$DIALOG"
r=$(answer a1); check "closing the dialog denies (got $r)" [ "$r" = Denied ]
check "icon: back to idle after the answer" waitfor 50 icon_is idle

# A second request within 30 s: the dialog comes, its notification is held back by the rate limit.
ask "$A" a2
check "the second dialog opens" waitfor 200 window_exists "$DIALOG"
sleep 2
n=$(summary_count 'A website asks to run a virtual machine')
check "rate limit: one consent notification per 30 s (got $n)" [ "$n" = 1 ]
wmctrl -c "$DIALOG"
r=$(answer a2); check "second denial (got $r)" [ "$r" = Denied ]

# A third request within the throttle window blocks the site → a "Website blocked" notification.
ask "$A" a3
r=$(answer a3); check "third request is blocked (got $r)" [ "$r" = Blocked ]
check "notification: site blocked reaches dunst" waitfor 50 history_has "Website blocked"
offers_unblock() { tray_layout "$ITEM" "$MENU" | grep -qF "'label': <'Unblock $A'>"; }
check "the tray offers to unblock it" waitfor 50 offers_unblock
dunstctl history >"$OUT/dunst-history.json"

# Quit with no VM running: no question, the app exits.
tray_click "$ITEM" "$MENU" "Quit"
check "Quit with no VM exits at once" waitfor 100 bash -c "! kill -0 $APP_PID"
wait "$APP_PID"; rc=$?
check "Quit exits with code 0 (got $rc)" test "$rc" -eq 0

kill %1 %2 %3 2>/dev/null
rm -rf "$DATA" "$APP_HOME"
summary
