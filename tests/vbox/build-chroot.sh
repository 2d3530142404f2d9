#!/usr/bin/env bash
# Builds a Debian sid chroot with VirtualBox's VBoxManage in it (VirtualBox is only packaged in sid/contrib and
# needs a newer libc than the host). VBoxManage runs there for every configuration command; VMs cannot start
# (no vboxdrv). Needs root, debootstrap and network access to a Debian mirror; ~1.5 GB, a few minutes.
# Usage: tests/vbox/build-chroot.sh DIR        (idempotent: an existing, working chroot is kept)
set -euo pipefail
dir=${1:?usage: build-chroot.sh DIR}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "build-chroot: needs root (debootstrap, chroot, mount)" >&2; exit 1; }

if [ -x "$dir/usr/bin/VBoxManage" ]; then echo "build-chroot: $dir already has VBoxManage"; else
  command -v debootstrap >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends debootstrap
  [ -x "$dir/usr/bin/apt-get" ] || debootstrap --variant=minbase sid "$dir" "$mirror"
  echo "deb $mirror sid main contrib" > "$dir/etc/apt/sources.list"
fi
mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
mountpoint -q "$dir/dev" || mount --bind /dev "$dir/dev"
if [ ! -x "$dir/usr/bin/VBoxManage" ]; then
  chroot "$dir" apt-get -o Acquire::Check-Valid-Until=false -o Acquire::Retries=3 update
  # virtualbox-source only satisfies the kernel-module dependency (no dkms build is attempted).
  chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false \
    -o Acquire::Retries=3 install -y --no-install-recommends virtualbox virtualbox-source
fi
chroot "$dir" env HOME=/root VBoxManage --version
echo "build-chroot: ok ($dir)"
