# Sourced by the tests/vbox scripts: the chroot and a folder shared with it at the same path, so paths
# given to VBoxManage inside the chroot are the same as on the host.
VBOX_CHROOT=${VBOX_CHROOT:-${TMPDIR:-/tmp}/cvmwebapi-vbox-sid}
VBOX_SHARED=${VBOX_SHARED:-${TMPDIR:-/tmp}/cvmwebapi-vbox-shared}
vbox_mount_shared() {
  mkdir -p "$VBOX_SHARED" "$VBOX_CHROOT$VBOX_SHARED"
  mountpoint -q "$VBOX_CHROOT$VBOX_SHARED" || mount --bind "$VBOX_SHARED" "$VBOX_CHROOT$VBOX_SHARED"
  mountpoint -q "$VBOX_CHROOT/proc" || mount -t proc proc "$VBOX_CHROOT/proc"
  mountpoint -q "$VBOX_CHROOT/dev" || mount --bind /dev "$VBOX_CHROOT/dev"
}
# The VBoxManage command as argv words (used by the Rust tests through CVMWEBAPI_VBOXMANAGE).
VBOX_CMD="chroot $VBOX_CHROOT env HOME=/root VBoxManage"
