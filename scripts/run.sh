#!/usr/bin/env bash
# Sets up and runs the tray app on its embedded defaults (the README's `make run`).
# Extra arguments go to the app, e.g. scripts/run.sh --listen 127.0.0.1:5625
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh run
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -p cernvm-webapi --locked
exec "$CARGO_TARGET_DIR/debug/cernvm-webapi" "$@"
