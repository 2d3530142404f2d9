#!/usr/bin/env bash
# Benchmark of the tray app's footprint (docs/benchmarks.md, "Tray app memory"): memory of the app process
# plus its WebKit child processes (RSS and PSS summed over the process tree, from /proc) with no window
# open, with the control panel open, and after closing it again; and the startup time from exec until
# /info answers. Runs itself inside a private X server and D-Bus session (tests/gui/run.sh) with the same
# desktop as the GUI tests (openbox, dunst, an SNI tray host); the panel is opened over dbusmenu like a
# click on "Open control panel", and closed like a click on the window's close button.
# Usage: scripts/bench-tray-memory.sh [path/to/cernvm-webapi]   (default: $CARGO_TARGET_DIR/debug/…)
# Environment: RUNS (startup runs, default 5), SETTLE (seconds to wait before each reading, default 5).
set -u
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd)
if [ -z "${TRAY_BENCH_INNER:-}" ]; then
  export TRAY_BENCH_INNER=1
  exec "$root/tests/gui/run.sh" "$0" "$@"
fi
. "$root/tests/gui/lib.sh"
target=${CARGO_TARGET_DIR:-$root/target}
app=${1:-$target/debug/cernvm-webapi}
[ -x "$app" ] || { echo "build first: cargo build -p cernvm-webapi"; exit 1; }
RUNS=${RUNS:-5}; SETTLE=${SETTLE:-5}
OUT=${E2E_OUT:-$(mktemp -d)}
APP_HOME=$(mktemp -d); DATA=$(mktemp -d)
app_pid=
cleanup() { [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null; kill %1 %2 %3 2>/dev/null; rm -rf "$APP_HOME" "$DATA"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The pid $1 and all its descendants.
tree() { local c; echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
kb() { awk -v k="$2:" '$1 == k { print $2; exit }' "$1" 2>/dev/null; }
# measure LABEL: one table row with RSS and PSS (MiB) summed over the app's process tree, and the parts.
measure() {
  local p rss pss trss=0 tpss=0 parts=() name
  for p in $(tree "$app_pid"); do
    rss=$(kb "/proc/$p/status" VmRSS); pss=$(kb "/proc/$p/smaps_rollup" Pss)
    [ -n "$rss" ] || continue
    name=$(cat "/proc/$p/comm" 2>/dev/null)
    trss=$((trss + rss)); tpss=$((tpss + ${pss:-0}))
    parts+=("$name $((rss / 1024))")
  done
  printf '| %s | %d | %d | %s |\n' "$1" $((trss / 1024)) $((tpss / 1024)) "$(IFS=,; echo "${parts[*]}" | sed 's/,/, /g')"
}
start() {
  port=$(free_port)
  HOME=$APP_HOME "$app" --listen "127.0.0.1:$port" --data-dir "$DATA" >>"$OUT/app.log" 2>&1 &
  app_pid=$!
}
stop() { kill "$app_pid" 2>/dev/null; wait "$app_pid" 2>/dev/null; app_pid=; }

start_desktop "$OUT" || { echo "the desktop did not start"; exit 1; }
echo "binary: $app ($(stat -c %s "$app" | awk '{printf "%.0f MB", $1/1e6}'), $(file -b "$app" | grep -q 'not stripped' && echo 'not stripped' || echo stripped))"

# Startup: exec → /info answers, RUNS times (the first run also warms the page cache).
times=()
for i in $(seq "$RUNS"); do
  start; t0=$(date +%s%N)
  until curl -sf --max-time 1 "http://127.0.0.1:$port/info" >/dev/null; do
    kill -0 "$app_pid" 2>/dev/null || { echo "the app exited"; tail -5 "$OUT/app.log"; exit 1; }
    sleep 0.01
  done
  times+=($((($(date +%s%N) - t0) / 1000000)))
  stop
done
echo "startup to /info answering (ms, $RUNS runs): ${times[*]}"
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "startup median: %d ms (min %d, max %d)\n", a[int((NR+1)/2)], a[1], a[NR]}'

# Memory: no window, panel open, panel closed.
start
waitfor 300 curl -sf "http://127.0.0.1:$port/info" || { echo "the app did not answer"; exit 1; }
waitfor 100 has_tray_item || { echo "no tray item"; exit 1; }
ITEM=$(tray_item); MENU=$(tray_menu_path "$ITEM")
sleep "$SETTLE"
echo "| state | RSS MiB | PSS MiB | processes (RSS MiB) |"
echo "|---|---|---|---|"
measure "no window (after start)"
for round in 1 2; do
  tray_click "$ITEM" "$MENU" "Open control panel"
  waitfor 200 window_exists '^CernVM WebAPI$' || { echo "the panel did not open"; exit 1; }
  waitfor 200 has_webview "$app_pid"
  sleep "$SETTLE"
  measure "panel open ($round)"
  wmctrl -c 'CernVM WebAPI'
  waitfor 200 no_window '^CernVM WebAPI$' || { echo "the panel did not close"; exit 1; }
  waitfor 200 no_webview "$app_pid"
  sleep "$SETTLE"
  measure "panel closed again ($round)"
done
stop
