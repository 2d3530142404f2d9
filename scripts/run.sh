#!/usr/bin/env bash
# Sets up and runs the tray app on its embedded defaults (the README's `make run`): installs what is
# missing, builds the app and the CLI, builds (or reuses) the tiny test guest, starts the demo website
# (`cvmwebapi demo-site` on http://127.0.0.1:8080/, stopped when the app exits), runs the tray app
# trusting the demo's development key, and opens the demo page in the default browser.
# Extra arguments go to the app, e.g. scripts/run.sh --listen 127.0.0.1:5625
# Environment: DEMO_LISTEN (default 127.0.0.1:8080), DEMO=0 (run the app alone, no demo site).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh run
if ! command -v cargo >/dev/null; then
  echo "run.sh: Rust is missing. Install it with rustup (https://rustup.rs), then run this again" \
    "(the app needs Rust 1.86 or newer; Debian's own rustc package is older)." >&2
  exit 1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -p cernvm-webapi -p webapi-core --bin cernvm-webapi --bin cvmwebapi --locked
app="$CARGO_TARGET_DIR/debug/cernvm-webapi"
cli="$CARGO_TARGET_DIR/debug/cvmwebapi"
if [ "${DEMO:-1}" = 0 ]; then exec "$app" "$@"; fi

listen=${DEMO_LISTEN:-127.0.0.1:8080}
url="http://$listen/"
guest=$(sh tests/guest/build.sh tests/.cache/guest | tail -1)
data_args=()
app_listen=127.0.0.1:5624
prev=
for a in "$@"; do
  case "$prev|$a" in
    # the app's own --data-dir, if given, holds the demo's key too
    --data-dir\|*) data_args=(--data-dir "$a") ;;
    *\|--data-dir=*) data_args=(--data-dir "${a#--data-dir=}") ;;
    --listen\|*) app_listen=$a ;;
    *\|--listen=*) app_listen=${a#--listen=} ;;
  esac
  prev=$a
done
# an app on another address than the standard one: the page is told where (?daemon=)
page=$url
[ "$app_listen" = 127.0.0.1:5624 ] || page="$url?daemon=http://$app_listen"
log=$(mktemp -t cvmwebapi-demo-site.XXXXXX)
"$cli" demo-site --listen "$listen" "${data_args[@]}" --image "$guest" >"$log" 2>&1 &
site=$!
trap 'kill "$site" 2>/dev/null; wait "$site" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q "^CernVM WebAPI demo site" "$log" && break
  kill -0 "$site" 2>/dev/null || { cat "$log" >&2; echo "run.sh: the demo site did not start" >&2; exit 1; }
  sleep 0.1
done
keystore=$(sed -n 's/^  cernvm-webapi --keystore //p' "$log")
echo "Demo website: $page (trusted by the app through $keystore)"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null; then
  (sleep 2; xdg-open "$page" >/dev/null 2>&1 || echo "Open $page in your browser.") &
else
  echo "Open $page in your browser."
fi
"$app" --keystore "$keystore" "$@"
