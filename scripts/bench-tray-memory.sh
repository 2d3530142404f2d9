#!/usr/bin/env bash
# Benchmark of the tray app's footprint (docs/benchmarks.md, "Tray app memory"): memory of the app process
# plus its WebKit child processes (RSS and PSS summed over the process tree, from /proc) with no window
# open, with the control panel open, and after closing it again; and the startup time from exec until
# /info answers. Runs itself inside a private X server and D-Bus session (tests/gui/run.sh) with the same
# desktop as the GUI tests (openbox, dunst, an SNI tray host); the panel is opened over dbusmenu like a
# click on "Open control panel", and closed like a click on the window's close button.
# The baseline, measured in the same run: the headless daemon `cvmwebapi serve` (same core, no GUI) from
# exec to /info answering, and its RSS.
# Usage: scripts/bench-tray-memory.sh [path/to/cernvm-webapi [path/to/cvmwebapi]]
#        (defaults: $CARGO_TARGET_DIR/debug/…, or target/debug/…)
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
cli=${2:-$target/debug/cvmwebapi}
[ -x "$app" ] && [ -x "$cli" ] || { echo "build first: cargo build -p cernvm-webapi -p webapi-core --bins"; exit 1; }
RUNS=${RUNS:-5}; SETTLE=${SETTLE:-5}
OUT=${E2E_OUT:-$(mktemp -d)}
APP_HOME=$(mktemp -d); DATA=$(mktemp -d)
app_pid=
cleanup() { [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null; kill %1 %2 %3 2>/dev/null; rm -rf "$APP_HOME" "$DATA"; }
trap cleanup EXIT

# The pid $1 and all its descendants.
tree() { local c; echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
kb() { awk -v k="$2:" '$1 == k { print $2; exit }' "$1" 2>/dev/null; }
# measure LABEL: one table row with RSS and PSS (MiB) summed over the app's process tree, and the parts.
# (RssAnon is the process's own heap and stacks; RssFile is mapped files, mostly shared libraries.)
measure() {
  local p rss anon file pss trss=0 tanon=0 tfile=0 tpss=0 parts=() name
  for p in $(tree "$app_pid"); do
    rss=$(kb "/proc/$p/status" VmRSS); pss=$(kb "/proc/$p/smaps_rollup" Pss)
    anon=$(kb "/proc/$p/status" RssAnon); file=$(kb "/proc/$p/status" RssFile)
    [ -n "$rss" ] || continue
    name=$(cat "/proc/$p/comm" 2>/dev/null)
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- '--panel-window' && name="$name (panel)"
    trss=$((trss + rss)); tpss=$((tpss + ${pss:-0})); tanon=$((tanon + ${anon:-0})); tfile=$((tfile + ${file:-0}))
    parts+=("$name $((rss / 1024))")
  done
  printf '| %s | %d | %d | %d | %d | %s |\n' "$1" $((trss / 1024)) $((tanon / 1024)) $((tfile / 1024)) \
    $((tpss / 1024)) "$(IFS=,; echo "${parts[*]}" | sed 's/,/, /g')"
}
start() { # [LOG]
  port=$(free_port)
  HOME=$APP_HOME NO_COLOR=1 RUST_LOG=info "$app" --listen "127.0.0.1:$port" --data-dir "$DATA" >"${1:-$OUT/app.log}" 2>&1 &
  app_pid=$!
}
# ms from $1 (ns since the epoch) to the timestamp of the first log line of file $2 matching $3.
log_ms() {
  local ts; ts=$(sed 's/\x1b\[[0-9;]*m//g' "$2" | grep -m1 -E "$3" | grep -oE '^[0-9T:.-]+Z')
  [ -n "$ts" ] && echo $((($(date -d "$ts" +%s%N) - $1) / 1000000)) || echo "?"
}
stop() { kill "$app_pid" 2>/dev/null; wait "$app_pid" 2>/dev/null; app_pid=; }

start_desktop "$OUT" || { echo "the desktop did not start"; exit 1; }
echo "binary: $app ($(stat -c %s "$app" | awk '{printf "%.0f MB", $1/1e6}'), $(file -b "$app" | grep -q 'not stripped' && echo 'not stripped' || echo stripped))"

# Startup: exec → /info answers, RUNS times (the first run also warms the page cache).
times=()
echo "| run | exec → first log line ms | → hypervisor probed ms | → listening (log) ms | → /info answers ms |"
echo "|---|---|---|---|---|"
for i in $(seq "$RUNS"); do
  t0=$(date +%s%N); start "$OUT/app-start-$i.log"
  until curl -sf --max-time 1 "http://127.0.0.1:$port/info" >/dev/null; do
    kill -0 "$app_pid" 2>/dev/null || { echo "the app exited"; tail -5 "$OUT/app-start-$i.log"; exit 1; }
    sleep 0.01
  done
  times+=($((($(date +%s%N) - t0) / 1000000)))
  stop
  f=$OUT/app-start-$i.log
  echo "| $i | $(log_ms "$t0" "$f" 'Z ') | $(log_ms "$t0" "$f" 'hypervisor ready') | $(log_ms "$t0" "$f" 'listening') | ${times[-1]} |"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d ms (min %d, max %d)", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "tray app, exec → /info answers: median $(median "${times[@]}")"

# Baseline: the headless daemon, same runs.
base=(); base_rss=
for i in $(seq "$RUNS"); do
  port=$(free_port); t0=$(date +%s%N)
  NO_COLOR=1 "$cli" serve --listen "127.0.0.1:$port" --data-dir "$DATA" >"$OUT/serve-$i.log" 2>&1 &
  serve_pid=$!
  until curl -sf --max-time 1 "http://127.0.0.1:$port/info" >/dev/null; do
    kill -0 "$serve_pid" 2>/dev/null || { echo "cvmwebapi serve exited"; tail -5 "$OUT/serve-$i.log"; exit 1; }
    sleep 0.01
  done
  base+=($((($(date +%s%N) - t0) / 1000000)))
  [ "$i" = "$RUNS" ] && { sleep "$SETTLE"; base_rss=$(($(kb "/proc/$serve_pid/status" VmRSS) / 1024)); }
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null
done
echo "baseline cvmwebapi serve, exec → /info answers: median $(median "${base[@]}"); RSS $base_rss MiB"

# Memory: no window, panel open, panel closed.
start
waitfor 300 curl -sf "http://127.0.0.1:$port/info" || { echo "the app did not answer"; exit 1; }
# The tray item of this app process (items of the startup runs may linger in the watcher a moment).
own_item() {
  local n
  for n in $(gdbus call --session --dest org.kde.StatusNotifierWatcher --object-path /StatusNotifierWatcher \
      --method org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierWatcher RegisteredStatusNotifierItems \
      2>/dev/null | grep -o "':[0-9.]*" | tr -d "'"); do
    gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
      --method org.freedesktop.DBus.GetConnectionUnixProcessID "$n" 2>/dev/null | grep -q "uint32 $app_pid," \
      && { ITEM=$n; return 0; }
  done
  return 1
}
own_item_found() { own_item; }
waitfor 300 own_item_found || { echo "no tray item"; exit 1; }
own_item; MENU=$(tray_menu_path "$ITEM")
sleep "$SETTLE"
echo "| state | RSS MiB | of it anon | of it file | PSS MiB | processes (RSS MiB) |"
echo "|---|---|---|---|---|---|"
measure "no window (${SETTLE} s after start)"
# Ten seconds after start the app unmaps the code pages it no longer uses (webapi_core::footprint).
released() { grep -q 'start-up done: unused code pages released' "$OUT/app.log"; }
waitfor 300 released || echo "(the app did not log its start-up release)"
sleep "$SETTLE"
measure "no window (start-up pages released)"
for round in 1 2; do
  tray_click "$ITEM" "$MENU" "Open control panel"
  waitfor 200 window_exists '^CernVM WebAPI$' || { echo "the panel did not open"; exit 1; }
  waitfor 200 has_webview "$app_pid"
  waitfor 300 window_rendered '^CernVM WebAPI$' "$OUT/panel-$round.png" || echo "(the panel did not render in round $round)"
  sleep "$SETTLE"
  measure "panel open ($round)"
  wmctrl -c 'CernVM WebAPI'
  waitfor 200 no_window '^CernVM WebAPI$' || { echo "the panel did not close"; exit 1; }
  waitfor 200 no_webview "$app_pid"
  sleep "$SETTLE"
  measure "panel closed again ($round)"
done
# What stays mapped after the last close: the files with the most resident pages in the app process.
echo "largest resident files in the app process after the last close (kB, private/anonymous kB):"
awk '/^[0-9a-f]+-[0-9a-f]+ / { path = $6 } /^Rss:/ { rss[path] += $2 } /^Anonymous:/ { anon[path] += $2 }
     END { for (p in rss) if (p != "") printf "%8d %6d %s\n", rss[p], anon[p], p }' "/proc/$app_pid/smaps" \
  | sort -rn | head -12
grep -h 'unused code pages released' "$OUT/app.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/log: /'
stop
