#!/usr/bin/env bash
# GUI end-to-end test of the consent dialog: the real tray app (plain build, product timings) under
# Xvfb + openbox, real `requestSession` requests over real WebSockets with an Origin header per test
# website (tests/bin/webapi_page.rs), VMCPs signed with a key from `cvmwebapi keygen` and served on
# loopback, the dialog answered with xdotool, blocks undone from the tray menu over dbusmenu.
# Prints "N passed, M failed" last; exit status 0 only when nothing failed.
# Usage: tests/gui/run.sh tests/gui/consent.sh [cernvm-webapi [cvmwebapi [webapi-page]]]
#   (defaults: $CARGO_TARGET_DIR/debug/…; build them with
#    cargo build -p cernvm-webapi -p webapi-core -p webapi-e2e --bins)
# Environment: SCREENSHOT (where to save the dialog's picture), CI=true (missing tools fail instead of
# skipping), E2E_OUT (artifacts).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
target=${CARGO_TARGET_DIR:-$root/target}
app=${1:-$target/debug/cernvm-webapi}
cli=${2:-$target/debug/cvmwebapi}
page=${3:-$target/debug/webapi-page}
OUT=${E2E_OUT:-$(mktemp -d)}
need=(openbox dunst gtk-sni-tray-standalone gdbus xdotool import convert curl qemu-system-x86_64)
missing=(); for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "consent.sh: missing tools: ${missing[*]} (scripts/install-deps.sh test installs them)"
  if [ "${CI:-}" = true ]; then echo "0 passed, 1 failed"; exit 1; fi
  echo "0 passed, 0 failed (skipped)"; exit 0
fi
for b in "$app" "$cli" "$page"; do
  [ -x "$b" ] || { echo "consent.sh: $b missing; build: cargo build -p cernvm-webapi -p webapi-core -p webapi-e2e --bins"; echo "0 passed, 1 failed"; exit 1; }
done

pids=()
app_pid=
cleanup() { [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null; for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

# ---- the websites: one key (cvmwebapi keygen), trusted for every test domain; VMCPs signed per request ----
A_DOMAIN=spam.example.org
B=http://fresh.example.net:8080
C=https://lhcathome.cern.ch
data="$OUT/data"; mkdir -p "$data"
check "a site key from cvmwebapi keygen, trusted for the test domains, signs VMCPs on loopback" \
  start_test_site "$OUT" "$cli" "$page" "$A_DOMAIN" fresh.example.net lhcathome.cern.ch
keystore="$OUT/keystore.txt"

check "the desktop (openbox, tray host, notifications) starts" start_desktop "$OUT"
# The tray host (gtk-sni-tray-standalone) may exit when the app's item goes away: restart it as needed.
tray_host() {
  has_bus_name org.kde.StatusNotifierWatcher && return 0
  gtk-sni-tray-standalone --top --watcher --size 32 >>"$OUT/sni.log" 2>&1 &
  waitfor 100 has_bus_name org.kde.StatusNotifierWatcher
}

api_port=$(free_port)
start_app() {
  tray_host
  RUST_LOG=info "$app" --listen "127.0.0.1:$api_port" --data-dir "$data" --keystore "$keystore" \
    --hypervisor qemu >>"$OUT/app.log" 2>&1 &
  app_pid=$!
  waitfor 600 curl -sf "http://127.0.0.1:$api_port/info" && waitfor 100 has_tray_item
}
menu() { ITEM=$(tray_item) && MENU=$(tray_menu_path "$ITEM") && [ -n "$MENU" ]; }
menu_has() { menu && tray_layout "$ITEM" "$MENU" | grep -qF "'label': <'$1'>"; }
menu_lacks() { menu && ! tray_layout "$ITEM" "$MENU" | grep -qF "'label': <'$1'>"; }
click_menu() { menu && tray_click "$ITEM" "$MENU" "$1"; }
quit_app() {
  click_menu Quit || return 1
  waitfor 150 bash -c "! kill -0 $app_pid" || return 1
  wait "$app_pid" 2>/dev/null; app_pid=
}

# ---- pages: each request is one `webapi-page request` (a WebSocket with that Origin) ----
ask() { page_ask "$page" "$api_port" "$OUT" "$@"; }   # NAME ORIGIN VM [--nudge]
has_outcome() { page_has_outcome "$OUT" "$1"; }
no_outcome() { ! has_outcome "$1"; }
# outcome NAME [TENTHS]: waits for the request's outcome and prints it.
outcome() { waitfor "${2:-100}" has_outcome "$1"; tail -1 "$OUT/$1.log" 2>/dev/null; }
# outcome_ms NAME: when (unix ms) the page got its outcome.
outcome_ms() { grep -E '^# (succeed|failed) ' "$OUT/$1.log" | sed -n 's/.* at_ms=\([0-9]*\)$/\1/p' | tail -1; }
# frame_before_outcome NAME PATTERN: the page got a frame matching PATTERN before its outcome.
frame_before_outcome() { sed -n '/^# \(succeed\|failed\) /q;p' "$OUT/$1.log" | grep -qE "$2"; }
DENIED='failed ["User denied the allocation of new session",-10]'
THROTTLED='failed ["Request denied by throttle protection",-10]'
WAITING='Session is new, asking user for confirmation'
SUCCEED='^succeed \["Session open successfully",[1-9][0-9]*\]$'   # [msg, session id]
matches() { [[ $1 =~ $2 ]]; }

# ---- the dialog ----
TITLE='^CernVM WebAPI: allow a new virtual machine\?$'
dialog_window() { xdotool search --onlyvisible --name "$TITLE" 2>/dev/null | head -1; }
# new_dialog [NOT_ID]: waits (up to 60 s) for a dialog window other than NOT_ID; prints its id.
new_dialog() {
  local w
  for _ in $(seq 600); do
    w=$(dialog_window); [ -n "$w" ] && [ "$w" != "${1:-}" ] && { echo "$w"; return 0; }
    sleep 0.1
  done
  return 1
}
# painted WINDOW: the dialog's page has drawn its content (it shows it only once filled in and armed).
painted() {
  local v
  v=$(import -window "$1" png:- 2>/dev/null | convert - -format '%[fx:standard_deviation>0.05]' info: 2>/dev/null)
  [ "$v" = 1 ]
}
no_dialog_for() { for _ in $(seq $(($1 * 10))); do [ -n "$(dialog_window)" ] && return 1; sleep 0.1; done; }
dialog_waits() { [ -n "$(dialog_window)" ] && no_outcome "$1"; }
dialog_gone() { waitfor 100 bash -c "[ -z \"\$(xdotool search --onlyvisible --name '$TITLE' 2>/dev/null)\" ]"; }
# answer_keys NAME WINDOW KEYS...: presses KEYS in the dialog until request NAME has its outcome (a key
# sent before the dialog's page is ready is lost, so it is repeated; none of these keys can allow).
answer_keys() {
  local name=$1 w=$2; shift 2
  for _ in $(seq 60); do
    xdotool windowactivate --sync "$w" key --clearmodifiers "$@" 2>/dev/null
    waitfor 3 has_outcome "$name" && return 0
  done
  has_outcome "$name"
}
# click_allow WINDOW: clicks Allow (the dialog has a fixed size; Allow sits at a fixed offset from
# its bottom-right corner).
ALLOW_FROM_RIGHT=78
ALLOW_FROM_BOTTOM=120
click_allow() {
  eval "$(xdotool getwindowgeometry --shell "$1")"
  xdotool windowactivate --sync "$1" 2>/dev/null
  xdotool mousemove --sync $((X + WIDTH - ALLOW_FROM_RIGHT)) $((Y + HEIGHT - ALLOW_FROM_BOTTOM)) click 1
}

check "the tray app starts (plain build) and answers /info" start_app
check "no dialog at start" no_dialog_for 1

# 1. Two denials within the real five seconds block the site. A spamming page asks again while the
# first dialog is open, so the second dialog follows the first denial at once. The rule counts from
# the first denial; if this machine is too slow to show and answer the second dialog within 4.5 s, the
# round proves nothing and is repeated with another origin of the same site.
A=
for attempt in 1 2 3 4 5; do
  origin="https://$A_DOMAIN"; [ "$attempt" -gt 1 ] && origin="https://$A_DOMAIN:844$attempt"
  ask a1 "$origin" spam-vm --nudge
  if ! w1=$(new_dialog); then bad "a requestSession over a WebSocket opens the consent dialog"; break; fi
  if [ "$attempt" = 1 ]; then
    ok "a requestSession over a WebSocket opens the consent dialog"
    check "while it waits, the page got progress and lengthyTask [msg, 1]" \
      waitfor 50 bash -c "grep -q '^# progress ' '$OUT/a1.log' && grep -qF '# lengthyTask [\"$WAITING\",1]' '$OUT/a1.log'"
    check "the page sent interactionCallback {result: 1} (its OK) while waiting" waitfor 50 grep -q '^# sent interactionCallback' "$OUT/a1.log"
    sleep 1 # (give the page's OK time to arrive: it must not answer the dialog)
    check "the page's interactionCallback does not answer the dialog" \
      dialog_waits a1
  fi
  ask a2 "$origin" spam-vm --nudge   # queued behind the open dialog
  waitfor 100 grep -qF "# lengthyTask [\"$WAITING\",1]" "$OUT/a2.log"
  answer_keys a1 "$w1" Escape
  r=$(outcome a1); [ "$attempt" = 1 ] && check "Escape denies: failed [msg, -10] (got $r)" [ "$r" = "$DENIED" ]
  if w2=$(new_dialog "$w1"); then
    answer_keys a2 "$w2" Return   # Deny has the focus
  fi
  r=$(outcome a2); [ "$attempt" = 1 ] && check "the queued request gets the next dialog; Return denies (got $r)" [ "$r" = "$DENIED" ]
  t1=$(outcome_ms a1); t2=$(outcome_ms a2)
  gap=$(( ${t2:-999999} - ${t1:-0} ))
  echo "the two denials were $gap ms apart"
  if [ "$gap" -lt 4500 ]; then A=$origin; break; fi
  echo "NOTE: too slow to prove the 5 s rule this round; again with another origin"
  ask a3 "$origin" spam-vm   # blocked (denials just within 5 s) or a dialog to deny
  for _ in $(seq 600); do
    has_outcome a3 && break
    w3=$(dialog_window); [ -n "$w3" ] && [ "$w3" != "$w2" ] && { answer_keys a3 "$w3" Escape; break; }
    sleep 0.1
  done
  outcome a3 >/dev/null; dialog_gone
done
if [ -n "$A" ]; then
  ok "two denials within 5 s ($gap ms apart) from $A"
  ask a3 "$A" spam-vm --nudge
  r=$(outcome a3 50); check "the third request is rejected: $THROTTLED (got $r)" [ "$r" = "$THROTTLED" ]
  check "no dialog is shown for the blocked site" no_dialog_for 2
  check "the tray lists the blocked site" waitfor 50 menu_has "Unblock $A"
else
  bad "two denials within 5 s (five rounds were too slow)"
  A="https://$A_DOMAIN"
fi

# 2. A fresh origin still gets a dialog; Enter right when it opens (Deny has the focus) does not allow.
ask b1 "$B" fresh-vm
if w=$(new_dialog); then
  ok "a fresh origin still gets a dialog"
  answer_keys b1 "$w" Return
  r=$(outcome b1); check "Enter on open does not allow: it denies (got $r)" [ "$r" = "$DENIED" ]
else
  bad "a fresh origin still gets a dialog"
fi
check "the dialog window is destroyed after the answer" dialog_gone

# 3. Allow after the delay creates the session; the page's interactionCallback did not answer for it.
ask c1 "$C" "LHC-Theory-1&cpus=2&memory=2048&disk=20480" --nudge
if w=$(new_dialog) && waitfor 300 painted "$w"; then
  ok "the dialog for a third origin opens"
  waitfor 50 grep -q '^# sent interactionCallback' "$OUT/c1.log"
  sleep 2 # past the 1.5 s delay of Allow
  check "no answer before the user acts (the page's interactionCallback was ignored)" no_outcome c1
  if [ -n "${SCREENSHOT:-}" ]; then
    eval "$(xdotool getwindowgeometry --shell "$w")"
    import -window root -crop "$((WIDTH + 40))x$((HEIGHT + 60))+$((X - 20))+$((Y - 40))" +repage "$SCREENSHOT"
  fi
  import -window root "$OUT/dialog.png"
  for _ in $(seq 10); do click_allow "$w"; waitfor 10 has_outcome c1 && break; done
  r=$(outcome c1)
  check "a click on Allow after the delay creates the session: succeed [msg, id] (got $r)" matches "$r" "$SUCCEED"
  check "the page got lengthyTask [msg, 1] before succeed" frame_before_outcome c1 "^# lengthyTask \[\"$WAITING\",1\]"
  check "the page then gets the new session's stateVariables and stateChanged" \
    bash -c "grep -q '^# stateVariables ' '$OUT/c1.log' && grep -q '^# stateChanged ' '$OUT/c1.log'"
else
  bad "the dialog for a third origin opens"
fi
check "the dialog window is gone" dialog_gone

# 4. Keyboard only: Tab from the focused Deny to Allow (after the delay), then Space. One try only: a
# Tab while Allow is still disabled would reach the "remember" box instead.
ask c2 "$C" lhc-theory-2
if w=$(new_dialog) && waitfor 300 painted "$w"; then
  xdotool windowactivate --sync "$w" 2>/dev/null   # (re-arms the delay if the dialog had lost the focus)
  sleep 2
  xdotool key --clearmodifiers Tab space
  r=$(outcome c2); check "Allow by keyboard after the delay creates the session (got $r)" matches "$r" "$SUCCEED"
else
  bad "the dialog opens for keyboard use"
fi
check "the dialog window is gone" dialog_gone

# 5. The block survives a restart.
check "the app quits from the tray (no VM runs)" quit_app
check "the app starts again" start_app
ask a4 "$A" spam-vm
r=$(outcome a4 50); check "after the restart the site is still blocked: $THROTTLED (got $r)" [ "$r" = "$THROTTLED" ]
check "no dialog for it after the restart" no_dialog_for 2

# 6. "Unblock <origin>" in the tray's "Blocked sites…" menu (dbusmenu) brings the dialog back.
check "the tray menu unblocks the site" waitfor 50 click_menu "Unblock $A"
check "the tray no longer lists it" waitfor 50 menu_lacks "Unblock $A"
ask a5 "$A" spam-vm
if w=$(new_dialog); then
  ok "an unblocked site gets a dialog again"
  answer_keys a5 "$w" Escape
else
  bad "an unblocked site gets a dialog again"
fi
r=$(outcome a5); check "and one denial does not block it again (got $r)" [ "$r" = "$DENIED" ]
check "the app quits" quit_app
summary
