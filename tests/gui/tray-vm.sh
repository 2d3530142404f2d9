#!/usr/bin/env bash
# GUI e2e of the tray menu following a real session: the demo site (`cvmwebapi demo-site`) serves a
# signed VMCP for the test guest; its page, in headless Chromium (tests/browser/tray-vm-driver.mjs),
# asks the real tray app for a session over the WebSocket API; the consent dialog is answered with
# xdotool; the guest boots under QEMU. Over dbusmenu the test checks the session's submenu (origin, VM,
# state line), pauses and resumes the VM with the submenu's own items, sees "VM image downloaded" and
# "Virtual machine started" reach dunst. Quit asks: Escape cancels (app and VM run on); Return answers
# the default, hibernate: the QEMU process is gone and the VM's state saved. The restarted app shows the
# session hibernated and resumes it from the menu: the guest answers with the same boot id and a larger
# uptime (restored, not rebooted). Then Stop, Start (a fresh boot), Quit with "Leave running and quit"
# (Tab, Return): QEMU outlives the app, and the app started again takes the same process over. Last, the
# QEMU process killed as the OOM killer would: "Virtual machine failed" reaches dunst, the session shows
# stopped, offering Start, and the icon and status line show the failure until the panel is opened.
# Prints "N passed, M failed".
# Usage: tests/gui/run.sh tests/gui/tray-vm.sh [path/to/cernvm-webapi [path/to/cvmwebapi]]
# Environment: CI=true (missing tools fail instead of skipping), E2E_OUT (artifacts).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
target=${CARGO_TARGET_DIR:-$root/target}
app=${1:-$target/debug/cernvm-webapi}
cli=${2:-$target/debug/cvmwebapi}
OUT=${E2E_OUT:-$(mktemp -d)}
need=(openbox dunst dunstctl gtk-sni-tray-standalone gdbus xdotool wmctrl compare ss curl node qemu-system-x86_64 /usr/bin/chromium)
missing=(); for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tray-vm.sh: missing tools: ${missing[*]} (scripts/install-deps.sh test installs them)"
  if [ "${CI:-}" = true ]; then echo "0 passed, 1 failed"; exit 1; fi
  echo "0 passed, 0 failed (skipped)"; exit 0
fi
[ -x "$app" ] && [ -x "$cli" ] || { echo "tray-vm.sh: build first: cargo build -p cernvm-webapi -p webapi-core"; echo "0 passed, 1 failed"; exit 1; }
[ -d "$root/tests/browser/node_modules/playwright-core" ] \
  || (cd "$root/tests/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

DATA=$OUT/data
APP_HOME=$(mktemp -d)   # the app's HOME, so nothing of the tester's desktop is touched
pids=()
# The QEMU processes of this test: those running in this test's data folder.
our_qemu() { qemu_under "$DATA"; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in $(our_qemu); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$APP_HOME"
}
trap cleanup EXIT
no_qemu() { [ -z "$(our_qemu)" ]; }
has_qemu() { [ -n "$(our_qemu)" ]; }

check "the desktop (openbox, tray host, notifications) starts" start_desktop "$OUT"
guest=$(sh "$root/tests/guest/build.sh" "$root/tests/.cache/guest" 2>"$OUT/guest-build.log" | tail -1)
check "the test guest is built" test -f "$guest"

site_port=$(free_port); app_port=$(free_port)
mkdir -p "$DATA"
start_demo_site "$DATA"
origin="http://127.0.0.1:$site_port"
vm=cernvm-webapi-demo

# start_app LOG: the tray app on this test's port, data folder and keystore; waits for /info.
start_app() {
  HOME=$APP_HOME RUST_LOG=info "$app" --listen "127.0.0.1:$app_port" --data-dir "$DATA" --keystore "$keystore" \
    --hypervisor qemu >"$1" 2>&1 &
  app_pid=$!; pids+=($app_pid)
  waitfor 300 curl -sf "http://127.0.0.1:$app_port/info"
}
# The tray item and its menu path, once registered (they change with every start of the app).
find_menu() {
  ITEM=$(tray_item); [ -n "$ITEM" ] || return 1
  MENU=$(tray_menu_path "$ITEM"); [ -n "$MENU" ]
}
# The session submenu's title ("<origin> — <vm>") is in the menu.
has_session_entry() { tray_layout "$ITEM" "$MENU" | grep -qF "'label': <'$origin — $vm'>"; }
# The session's state line, e.g. "Running · CPU cap 50%".
state_line() { tray_layout "$ITEM" "$MENU" | grep -oE "'label': <'[A-Z][a-z ]* · CPU cap [0-9]+%'>" | head -1 | sed -E "s/^'label': <'//; s/'>$//"; }
state_is() { [[ "$(state_line)" == "$1 · "* ]]; }
no_session_entry() { ! tray_layout "$ITEM" "$MENU" | grep -qF "$origin"; }
has_entry() { [ -n "$(tray_entry_id "$ITEM" "$MENU" "$1")" ]; }
offers() { local l; for l; do has_entry "$l" || return 1; done; }
# Records every change of the state line in $OUT/states-$1.txt, until killed.
record_states() {
  local last= now
  while :; do
    now=$(state_line 2>/dev/null)
    if [ -n "$now" ] && [ "$now" != "$last" ]; then echo "$now" >>"$OUT/states-$1.txt"; last=$now; fi
    sleep 0.2
  done
}
# The guest's status JSON through the VM's port forward (the QEMU process's loopback listener).
guest_status() {
  local p port
  for p in $(our_qemu); do
    for port in $(ss -Hltnp 2>/dev/null | grep "pid=$p," | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2); do
      curl -sf --max-time 3 "http://127.0.0.1:$port/cgi-bin/status" && return 0
    done
  done
  return 1
}
guest_silent() { ! guest_status >/dev/null; }
history_has() { dunstctl history >"$OUT/dunst-history.json"; grep -qF -- "$1" "$OUT/dunst-history.json"; }

# ---- first start: a session from the page, up to a running VM ----
if ! start_app "$OUT/app-1.log"; then
  bad "the tray app answers /info"; tail -5 "$OUT/app-1.log"; summary; exit 1
fi
ok "the tray app answers /info"
check "the tray item registers" waitfor 100 find_menu
check "no session in the menu at first" no_session_entry
record_states 1 & rec=$!; pids+=($rec)

mkfifo "$OUT/driver.in"
node "$root/tests/browser/tray-vm-driver.mjs" "$origin/?daemon=http://127.0.0.1:$app_port" \
  <"$OUT/driver.in" >"$OUT/driver.log" 2>"$OUT/driver.err" &
driver=$!; pids+=($driver)
exec 7>"$OUT/driver.in"
marker() { grep -q "^$1" "$OUT/driver.log"; }
if ! waitfor 600 marker CONNECTED; then
  bad "the page connects to the app"; tail -5 "$OUT/driver.err"; summary; exit 1
fi
ok "the page connects to the app"
dialog_window() { xdotool search --onlyvisible --name "^CernVM WebAPI: allow a new virtual machine\\?\$" 2>/dev/null | head -1; }
w=
for _ in $(seq 600); do w=$(dialog_window); [ -n "$w" ] && break; sleep 0.1; done
if [ -n "$w" ]; then
  ok "the consent dialog opens"
  # Allow is enabled 1.5 s after the dialog (re)gains focus and its page has painted: focus it, wait,
  # then Tab from the focused Deny to Allow and press it. Repeated if the keys came before the page.
  waitfor 300 window_rendered "^CernVM WebAPI: allow a new virtual machine\\?\$" "$OUT/consent.png"
  for _ in 1 2 3; do
    xdotool windowactivate --sync "$w" 2>/dev/null
    sleep 2.5
    xdotool key --clearmodifiers Tab space 2>/dev/null
    waitfor 50 bash -c "! xdotool search --onlyvisible --name '^CernVM WebAPI: allow a new virtual machine' | grep -q ." && break
  done
else
  bad "the consent dialog opens"
fi
if ! waitfor 600 marker SESSION; then
  bad "the page gets its session after Allow"; tail -3 "$OUT/driver.err"; summary; exit 1
fi
ok "the page gets its session after Allow"
check "the menu shows the session's submenu ($origin — $vm)" waitfor 100 has_session_entry
line=$(state_line)
check "its state line names the session's state before the VM runs (got '$line')" \
  grep -qE '^(Not created yet|Stopped|Running) · CPU cap' <<<"$line"
check "the state line follows to running" waitfor 3000 state_is Running
check "the running session offers Pause and Stop" offers Pause Stop
check "the VM boots and its API answers the page" waitfor 4000 marker RUNNING
grep "^RUNNING" "$OUT/driver.log"
boot_id=$(sed -n 's/^RUNNING .*boot_id=\([^ ]*\).*/\1/p' "$OUT/driver.log")
check "a QEMU process runs the VM" has_qemu
check "notification: 'Virtual machine started' reaches dunst" waitfor 100 history_has "Virtual machine started"
check "notification: 'VM image downloaded' names the image" history_has "“guest.iso”"
check "the notification names the website and the VM" history_has "$origin started “$vm”"

# ---- Pause and Resume with the submenu's own items ----
tray_click "$ITEM" "$MENU" Pause
check "Pause from the menu: the state line shows paused" waitfor 300 state_is Paused
check "the paused session offers Resume" has_entry Resume
check "the paused guest does not answer" guest_silent
tray_click "$ITEM" "$MENU" Resume
check "Resume from the menu: the state line shows running" waitfor 300 state_is Running
check "the resumed guest answers again" waitfor 300 guest_status
kill "$rec" 2>/dev/null
echo "state lines seen: $(paste -sd '>' "$OUT/states-1.txt" | sed 's/>/ → /g')"
check "the state line went through running, paused and running again" \
  bash -c "paste -sd '|' '$OUT/states-1.txt' | grep -qE 'Running[^|]*\|Paused[^|]*\|Running'"
up1=$(guest_status | grep -oE '"uptime":[0-9.]+' | cut -d: -f2)
echo "guest uptime before Quit: $up1 s, boot id $boot_id"

# The page goes away; the session stays with the app.
echo leave >&7
check "the page closes, leaving the VM" waitfor 300 marker LEFT
check "the VM still runs without its page" has_qemu

# ---- Quit asks: Escape cancels, Return hibernates ----
quit_window() { xdotool search --onlyvisible --name "^Quit CernVM WebAPI\$" 2>/dev/null | head -1; }
no_quit_window() { [ -z "$(quit_window)" ]; }
# answer_quit WHAT KEY...: clicks Quit in the menu, checks (as WHAT) that its question appears, keeps a
# picture of it and answers it with the KEYs.
answer_quit() {
  local what=$1 q=; shift
  tray_click "$ITEM" "$MENU" Quit
  for _ in $(seq 300); do q=$(quit_window); [ -n "$q" ] && break; sleep 0.1; done
  if [ -z "$q" ]; then bad "$what"; return 1; fi
  ok "$what"
  import -window root "$OUT/quit-question.png" 2>/dev/null
  xdotool windowactivate --sync "$q" key --clearmodifiers "$@" 2>/dev/null
}
if answer_quit "Quit with a running VM asks" Escape; then
  check "Escape cancels the Quit" waitfor 100 grep -q "Quit dialog answered.*Cancel" "$OUT/app-1.log"
  check "... the question goes away" waitfor 100 no_quit_window
  check "... and the app and its VM run on" bash -c "kill -0 $app_pid && [ -n \"$(our_qemu)\" ]"
fi
answer_quit "Quit asks again" Return
check "Return answers the default: hibernate" waitfor 100 grep -q "Quit dialog answered.*Hibernate" "$OUT/app-1.log"
check "the app exits after saving the VM" waitfor 3000 bash -c "! kill -0 $app_pid"
exit_code "$app_pid"; rc=$?
check "it exits with code 0 (got $rc)" test "$rc" -eq 0
check "the QEMU process is gone" waitfor 100 no_qemu
check "the VM's state file is on disk" bash -c "ls '$DATA'/vms/*/state.bin >/dev/null 2>&1 || find '$DATA/vms' -name 'state*' -size +1k | grep -q ."
find "$DATA/vms" -name 'state*' -exec ls -l {} \; 2>/dev/null

# ---- restart: the session is back, hibernated; Resume brings the same VM back ----
if ! start_app "$OUT/app-2.log"; then
  bad "the restarted app answers /info"; tail -5 "$OUT/app-2.log"; summary; exit 1
fi
ok "the restarted app answers /info"
check "the restarted app's tray item registers" waitfor 100 find_menu
check "the menu shows the session again" waitfor 200 has_session_entry
check "its state line shows hibernated" waitfor 200 state_is Hibernated
echo "state line after the restart: $(state_line)"
check "the hibernated session offers Resume" has_entry Resume
check "no QEMU process runs while hibernated" no_qemu
tray_click "$ITEM" "$MENU" Resume
check "Resume from the menu: the state line shows running" waitfor 1200 state_is Running
check "the restored guest answers" waitfor 1200 guest_status
after=$(guest_status)
echo "guest after restore: $after"
boot2=$(echo "$after" | grep -oE '"boot_id":"[^"]*"' | cut -d'"' -f4)
up2=$(echo "$after" | grep -oE '"uptime":[0-9.]+' | cut -d: -f2)
check "the same VM came back: same boot id ($boot2)" test -n "$boot_id" -a "$boot2" = "$boot_id"
check "its uptime went on ($up1 s → $up2 s)" bash -c "[ -n '$up1' ] && [ -n '$up2' ] && awk 'BEGIN{exit !($up2 >= $up1)}'"

# ---- clean up through the menu: Stop, then Quit without a question ----
tray_click "$ITEM" "$MENU" Stop
check "Stop from the menu: the state line shows stopped" waitfor 1200 state_is Stopped
check "Stop ends the QEMU process" waitfor 300 no_qemu

# ---- Start from the menu: the stopped VM boots again ----
check "the stopped session offers Start" has_entry Start
tray_click "$ITEM" "$MENU" Start
check "Start from the menu boots the stopped VM" waitfor 1200 has_qemu
check "... and the state line shows running" waitfor 1200 state_is Running
qemu_before=$(our_qemu)

# ---- Quit, "Leave running and quit": the VM outlives the app, which takes it over when restarted ----
# The buttons: Hibernate and quit (default, focused), Leave running and quit, Cancel.
answer_quit "Quit with the started VM asks" Tab Return
check "Tab, Return answers: leave running" waitfor 100 grep -q "Quit dialog answered.*LeaveRunning" "$OUT/app-2.log"
check "the app exits at once" waitfor 150 bash -c "! kill -0 $app_pid"
exit_code "$app_pid"; rc=$?
check "it exits with code 0 (got $rc)" test "$rc" -eq 0
check "the VM's QEMU process runs on without the app" bash -c "[ -n '$qemu_before' ] && kill -0 $qemu_before"
if ! start_app "$OUT/app-3.log"; then
  bad "the app starts again"; tail -5 "$OUT/app-3.log"; summary; exit 1
fi
ok "the app starts again"
check "its tray item registers" waitfor 100 find_menu
check "the menu shows the session, running" waitfor 200 state_is Running
check "it took over the same QEMU process" test "$(our_qemu)" = "$qemu_before"
check "the taken-over guest answers" waitfor 1200 guest_status

# ---- the VM's process dies (as by the OOM killer): the volunteer is told ----
kill -KILL $(our_qemu) 2>/dev/null
check "notification: 'Virtual machine failed' reaches dunst" waitfor 300 history_has "Virtual machine failed"
check "it says the VM's process ended unexpectedly" history_has "ended unexpectedly"
check "the state line shows stopped after the crash" waitfor 300 state_is Stopped
check "the crashed session offers Start" has_entry Start
icon_is() { tray_icon_is "$ITEM" "${MENU%/Menu}" "$1"; }
status_has() { tray_layout "$ITEM" "$MENU" | grep -qF "$1"; }
check "icon: attention after the VM failed" waitfor 50 icon_is attention
check "the status line counts the failure" status_has "· 1 VM failed (see the control panel)"
tray_click "$ITEM" "$MENU" "Open control panel"
check "Open control panel shows the panel" waitfor 150 window_exists '^CernVM WebAPI$'
check "... which counts the failure as seen: icon back to idle" waitfor 50 icon_is idle
no_failure_counted() { ! status_has "VM failed"; }
check "... and the status line no longer counts it" waitfor 50 no_failure_counted
wmctrl -c 'CernVM WebAPI'
check "the panel closes" waitfor 100 no_window '^CernVM WebAPI$'
tray_click "$ITEM" "$MENU" Quit
check "Quit with no VM running exits at once" waitfor 100 bash -c "! kill -0 $app_pid"
dunstctl history >"$OUT/dunst-history.json" 2>/dev/null
[ -s "$OUT/driver.err" ] && sed 's/^/driver: /' "$OUT/driver.err"
summary
