# Shared helpers for the GUI end-to-end tests (sourced, not run). They run inside a private X server and
# D-Bus session made by run.sh, with a real window manager, notification daemon and tray host.

pass=0; fail=0
ok()  { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
summary() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }

# waitfor TENTHS CMD...: retries CMD every 0.1 s, up to TENTHS times.
# free_port: a TCP port on 127.0.0.1 that is free right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# qemu_under DIR: the pids of QEMU processes running in DIR (a test's data folder).
qemu_under() {
  local p
  for p in $(pgrep -f qemu-system 2>/dev/null); do
    [[ "$(readlink "/proc/$p/cwd" 2>/dev/null)" == "$1/"* ]] && echo "$p"
  done
}
waitfor() { local n=$1; shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

# exit_code PID: the exit status of background process PID; one still running (a check before failed) is
# killed first, so that a failed test never hangs on `wait`.
exit_code() {
  if kill -0 "$1" 2>/dev/null; then kill "$1" 2>/dev/null; sleep 2; kill -9 "$1" 2>/dev/null; fi
  wait "$1"
}

has_bus_name() {
  gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.NameHasOwner "$1" 2>/dev/null | grep -q true
}

# Starts dunst, openbox and an SNI tray host (the watcher first: apps register only with a running one).
# The tray host (gtk-sni-tray-standalone) sometimes dies right at start ("Pattern match failure" after an
# UnknownObject reply, seen once in CI): it is started again, up to three times.
start_desktop() {
  local out=$1 try sni
  dunst >"$out/dunst.log" 2>&1 &
  openbox >"$out/openbox.log" 2>&1 &
  for try in 1 2 3; do
    gtk-sni-tray-standalone --top --watcher --size 32 >>"$out/sni.log" 2>&1 &
    sni=$!
    if waitfor 150 has_bus_name org.kde.StatusNotifierWatcher; then
      sleep 0.5
      kill -0 "$sni" 2>/dev/null && has_bus_name org.kde.StatusNotifierWatcher && break
    fi
    kill "$sni" 2>/dev/null
    echo "start_desktop: the tray host did not come up (try $try of 3)" >&2
  done
  has_bus_name org.kde.StatusNotifierWatcher && waitfor 100 has_bus_name org.freedesktop.Notifications
}

# The bus name of the first registered tray item.
tray_item() {
  gdbus call --session --dest org.kde.StatusNotifierWatcher --object-path /StatusNotifierWatcher \
    --method org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierWatcher RegisteredStatusNotifierItems \
    2>/dev/null | grep -o "':[0-9.]*" | head -1 | tr -d "'"
}

# The dbusmenu object path of tray item $1.
tray_menu_path() {
  gdbus introspect --session --dest "$1" --object-path / --recurse 2>/dev/null \
    | grep -o '/org/ayatana/NotificationItem/[^ ]*/Menu' | head -1
}

# The whole menu layout of tray item $1 at path $2, as gdbus prints it.
tray_layout() {
  gdbus call --session --dest "$1" --object-path "$2" --method com.canonical.dbusmenu.GetLayout -- 0 -1 '[]'
}

# The dbusmenu id of the entry labelled $3 (exact label) in the menu of tray item $1 at path $2.
tray_entry_id() {
  tray_layout "$1" "$2" | grep -o "([0-9]*, {[^}]*'label': <'$3'>" | head -1 | grep -o '^([0-9]*' | tr -d '('
}

# tray_icon_is ITEM ITEM_PATH KIND: the tray item's current icon has the pixels of icons/tray/KIND.png
# (ITEM_PATH is the menu path without its /Menu).
tray_icon_is() {
  local name dir file
  name=$(gdbus call --session --dest "$1" --object-path "$2" --method org.freedesktop.DBus.Properties.Get \
    org.kde.StatusNotifierItem IconName 2>/dev/null | grep -o "'[^']*'" | tr -d "'")
  dir=$(gdbus call --session --dest "$1" --object-path "$2" --method org.freedesktop.DBus.Properties.Get \
    org.kde.StatusNotifierItem IconThemePath 2>/dev/null | grep -o "'[^']*'" | tr -d "'")
  file=$name; [ -f "$file" ] || file="$dir/$name.png"; [ -f "$file" ] || file="$dir/$name"
  [ -f "$file" ] || return 1
  [ "$(compare -metric AE "$file" "$root/icons/tray/$3.png" null: 2>&1)" = 0 ]
}

# Clicks entry $3 (label) of the tray menu of item $1 at path $2.
tray_click() {
  local id; id=$(tray_entry_id "$1" "$2" "$3")
  [ -n "$id" ] || return 1
  gdbus call --session --dest "$1" --object-path "$2" --method com.canonical.dbusmenu.Event -- "$id" clicked '<0>' 0 >/dev/null
}

visible_window() { xdotool search --onlyvisible --name "$1" 2>/dev/null | head -1; }
window_exists() { [ -n "$(visible_window "$1")" ]; }
no_window() { [ -z "$(visible_window "$1")" ]; }

# The descendants of pid $1 (children, their children, ...), one per line.
descendants() { local c; for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done; }
# How many descendants of pid $1 have a command line matching the regex $2.
descendants_matching() {
  local p n=0
  for p in $(descendants "$1"); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qE "$2" && n=$((n + 1))
  done
  echo "$n"
}
# WebKit web (renderer) processes under pid $1 (the control panel runs in a child process of the app):
# one per live webview.
webviews_of() { descendants_matching "$1" 'WebKitWebProcess'; }
has_webview() { [ "$(webviews_of "$1")" -gt 0 ]; }
no_webview() { [ "$(webviews_of "$1")" -eq 0 ]; }
# Any WebKit helper process (web or network) under pid $1.
webkit_processes_of() { descendants_matching "$1" 'WebKit(Web|Network)Process'; }
no_webkit_process() { [ "$(webkit_processes_of "$1")" -eq 0 ]; }
# The app's control panel process (`cernvm-webapi --panel-window`), if it runs under pid $1.
panel_process_of() { local p; for p in $(pgrep -P "$1" 2>/dev/null); do
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- '--panel-window' && echo "$p"; done; }
has_tray_item() { [ -n "$(tray_item)" ]; }

# Whether window $1 (a title regex) shows rendered content: a blank or unpainted webview has a handful of
# colours, a rendered page with text and an icon has hundreds. Saves the window's picture to $2.
window_rendered() {
  local w; w=$(visible_window "$1"); [ -n "$w" ] || return 1
  import -window "$w" "$2" 2>/dev/null || return 1
  [ "$(convert "$2" -format %k info: 2>/dev/null)" -gt 64 ]
}

# ---- scripted websites (tests/bin/webapi_page.rs) ----
# start_test_site OUT CLI PAGE DOMAIN...: makes a key with `cvmwebapi keygen`, a keystore trusting it for
# each DOMAIN (OUT/keystore.txt, for the app's --keystore) and starts `webapi-page site`, which serves
# VMCPs signed with it; sets TEST_SITE to the site's address. Its pid is added to the caller's `pids`.
start_test_site() {
  local out=$1 cli=$2 page=$3 d; shift 3
  "$cli" keygen --algorithm ed25519 --out "$out/site" >"$out/keygen.log" 2>&1 || return 1
  for d in "$@"; do echo "$d=$(cat "$out/site.pub")"; done >"$out/keystore.txt"
  "$page" site --key "$out/site.key" >"$out/site.log" 2>&1 &
  pids+=($!)
  waitfor 300 grep -q '^listening ' "$out/site.log" || return 1
  TEST_SITE=$(sed -n 's/^listening //p' "$out/site.log")
}
# page_ask PAGE API_PORT OUT NAME ORIGIN VM [ARGS...]: a page at ORIGIN sends requestSession over a
# WebSocket for a session called VM (a VMCP from TEST_SITE), in the background; its frames and, as the
# last line, its outcome (`succeed [msg, id]`, `failed [msg, code]` or `error …`) land in OUT/NAME.log.
page_ask() {
  local page=$1 port=$2 out=$3 name=$4 origin=$5 vm=$6; shift 6
  "$page" request --daemon "127.0.0.1:$port" --origin "$origin" --vmcp "http://$TEST_SITE/vmcp?name=$vm" "$@" \
    >"$out/$name.log" 2>&1 &
}
# page_has_outcome OUT NAME: the request has its outcome.
page_has_outcome() { tail -1 "$1/$2.log" 2>/dev/null | grep -qE '^(succeed|failed|error) '; }

# start_demo_site DATA_DIR: `cvmwebapi demo-site` ($cli) serving the test guest ($guest) on $site_port,
# log in $OUT/site.log, pid added to `pids`; sets `keystore` to the keystore the tray app must trust.
start_demo_site() {
  "$cli" demo-site --listen "127.0.0.1:$site_port" --data-dir "$1" --image "$guest" >"$OUT/site.log" 2>&1 &
  pids+=($!)
  check "demo-site prints how to trust it" waitfor 100 grep -q "cernvm-webapi --keystore" "$OUT/site.log"
  keystore=$(sed -n 's/^  cernvm-webapi --keystore //p' "$OUT/site.log")
}
