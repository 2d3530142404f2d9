#!/usr/bin/env bash
# Installs the Debian packages the project needs to build, run and test (idempotent, with retries).
# Usage: scripts/install-deps.sh [build|run|test]   (default: test, which includes everything)
set -euo pipefail
what=${1:-test}
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT=($SUDO apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends)

apt_update() {
  for i in 1 2 3 4; do $SUDO apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 update && return 0; sleep $((i * 5)); done
  return 1
}
apt_install() {
  for i in 1 2 3 4; do "${APT[@]}" install "$@" && return 0; $SUDO dpkg --configure -a || true; sleep $((i * 5)); done
  return 1
}
missing() { # prints the packages of "$@" that are not installed
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done
}

build_pkgs=(build-essential pkg-config libwebkit2gtk-4.1-dev libdbus-1-dev libayatana-appindicator3-1 curl ca-certificates)
# run: open the demo page (xdg-open), build the demo's test guest (tests/guest/build.sh: kernel and busybox
# come from `apt-get download`, packed into a bootable ISO)
run_pkgs=(xdg-utils isolinux syslinux-common xorriso gzip)
test_pkgs=(xvfb xauth dbus-daemon dbus-x11 dunst libnotify-bin openbox wmctrl xdotool libglib2.0-bin bc
           haskell-gtk-sni-tray-utils imagemagick x11-utils fonts-dejavu-core
           chromium chromium-driver busybox-static cpio gzip kmod python3 iproute2 procps
           isolinux syslinux-common xorriso binutils curl mount)
test_pkgs+=(genisoimage) # isoinfo: reads back the VirtualBox backend's context ISO in its tests
test_pkgs+=(tesseract-ocr tesseract-ocr-eng) # OCR: tests/gui/panel.sh reads the control panel from screenshots

pkgs=("${build_pkgs[@]}" "${run_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")
# Node.js and npm for ui/sdk/build.sh and the browser tests (tests/browser/run.sh); kept if already present.
if [ "$what" = test ] && ! command -v npm >/dev/null; then pkgs+=(nodejs npm); fi
need=$(missing "${pkgs[@]}")
updated=0
if [ -n "$need" ]; then apt_update; updated=1; apt_install $need; fi

# QEMU 10 from bookworm-backports (bookworm's 7.2 would remove the pre-installed qemu-utils 10).
if [ "$what" != build ] && ! command -v qemu-system-x86_64 >/dev/null; then
  if . /etc/os-release && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    if [ ! -f /etc/apt/sources.list.d/backports.sources ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
      awk 'BEGIN{RS="";ORS="\n\n"} NR==1' /etc/apt/sources.list.d/debian.sources \
        | sed 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null
      updated=0
    fi
    [ "$updated" = 1 ] || apt_update
    apt_install -t bookworm-backports qemu-system-x86 || apt_install qemu-system-x86
  else
    [ "$updated" = 1 ] || apt_update
    apt_install qemu-system-x86 qemu-utils
  fi
fi
# qemu-img (qemu-utils) makes the per-VM overlay and scratch disks.
if [ "$what" != build ] && ! command -v qemu-img >/dev/null; then
  apt_install -t bookworm-backports qemu-utils || apt_install qemu-utils
fi
# The guest kernel for the test VM comes from Debian's linux-image package, unpacked by tests/guest/build.sh.
echo "install-deps: ok ($what)"
