#!/usr/bin/env bash
# Manual suite: the VirtualBox backend against a real VBoxManage in a Debian sid chroot (not run in CI:
# the chroot is ~1.5 GB and takes minutes to build). Needs root. Usage: tests/vbox/run-tests.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
"$here/build-chroot.sh" "$VBOX_CHROOT"
vbox_mount_shared
# The chroot's VirtualBox registry is the suite's own: drop VMs a failed earlier run left behind.
for u in $($VBOX_CMD -q list vms 2>/dev/null | sed -n 's/.*{\(.*\)}$/\1/p'); do
  $VBOX_CMD -q unregistervm "$u" --delete >/dev/null 2>&1 || true
done
export CVMWEBAPI_VBOXMANAGE="$VBOX_CMD" CVMWEBAPI_VBOX_SHARED="$VBOX_SHARED"
cd "$here/../.."
cargo test -p webapi-core --test vbox_real -- --ignored --test-threads 1 "$@"
