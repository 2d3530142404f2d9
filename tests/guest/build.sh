#!/bin/sh
# Builds the project's tiny test guest from Debian packages only, packaged the way a VMCP delivers an image:
# a bootable hybrid ISO (boots as a CD and as a disk) plus its SHA-256.
#
# Usage: tests/guest/build.sh OUTDIR
#   -> OUTDIR/<kernel package>-<script hash>/guest.iso and guest.iso.sha256; prints the ISO's path last.
# A build with the same key is reused, so calling this before every test run is cheap.
#
# Inputs: linux-image-cloud-amd64 (resolved to the current versioned package, unpacked with dpkg-deb) and
# busybox-static, fetched with `apt-get download`; isolinux + syslinux-common + xorriso on the host.
# The guest: busybox init, virtio/fw_cfg/CD/isofs modules, a static IP for QEMU user networking, an HTTP
# API on port 80 (busybox httpd + CGI) that reports uptime, boot id and the context it received over
# fw_cfg (opt/cernvm/context) and on a CONTEXT.SH disk (ISO 9660 on virtio-blk), burns CPU on request and powers off on the ACPI
# power button (busybox acpid).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
SCRIPT=$(realpath "$0")
OUTROOT=$(realpath -m "$1")
for t in apt-get apt-cache dpkg-deb xorriso gzip sha256sum; do
  command -v $t >/dev/null || { echo "build.sh: $t is missing (run scripts/install-deps.sh test)" >&2; exit 1; }
done
ISOLINUX=/usr/lib/ISOLINUX
SYSLINUX=/usr/lib/syslinux/modules/bios
for f in $ISOLINUX/isolinux.bin $ISOLINUX/isohdpfx.bin $SYSLINUX/ldlinux.c32; do
  [ -f $f ] || { echo "build.sh: $f is missing (install isolinux and syslinux-common)" >&2; exit 1; }
done

KPKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || { echo "build.sh: no linux-image-cloud-amd64 kernel package found (run apt-get update)" >&2; exit 1; }
KEY="$KPKG-$(sha256sum "$SCRIPT" | cut -c1-12)"
OUT="$OUTROOT/$KEY"
if [ -f "$OUT/guest.iso.sha256" ] && [ -f "$OUT/guest.iso" ]; then echo "$OUT/guest.iso"; exit 0; fi

DL="$OUTROOT/debs"
mkdir -p "$DL" "$OUT"
# drop builds of older kernels or older versions of this script, and debs of older kernels
for old in "$OUTROOT"/linux-image-*; do [ "$old" = "$OUT" ] || rm -rf "$old"; done
for old in "$DL"/linux-image-*.deb; do case "$old" in "$DL/$KPKG"_*) ;; *) rm -f "$old";; esac; done
WORK=$(mktemp -d "$OUTROOT/.build-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$DL"
ls "$KPKG"_*.deb >/dev/null 2>&1 || apt-get download "$KPKG" >&2
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static >&2
cd "$WORK"
dpkg-deb -x "$(ls "$DL/$KPKG"_*.deb | tail -1)" kx
dpkg-deb -x "$(ls "$DL"/busybox-static_*.deb | tail -1)" bb
KVER=$(ls kx/lib/modules)
MD=kx/lib/modules/$KVER
BB=$WORK/bb/bin/busybox

# Modules wanted in the guest; their dependencies are read from each .ko's "depends=" and loaded first.
WANT="virtio_pci virtio_net virtio_blk qemu_fw_cfg button evdev isofs"
modpath() { find "$MD" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" | head -1; }
ORDER=""
add_mod() { # depth-first: dependencies before the module itself (`local`: dash and busybox sh have it)
  local m f deps d
  m=$(echo "$1" | tr - _)
  case " $ORDER " in *" $m "*) return 0;; esac
  f=$(modpath "$m"); [ -n "$f" ] || f=$(modpath "$(echo "$m" | tr _ -)")
  [ -n "$f" ] || { echo "build.sh: module $m not found in $KVER" >&2; exit 1; }
  case "$f" in *.ko) ;; *) echo "build.sh: compressed module $f is not supported" >&2; exit 1;; esac
  deps=$(strings "$f" 2>/dev/null | sed -n 's/^depends=//p' | head -1 | tr , ' ')
  for d in $deps; do add_mod "$d"; done
  case " $ORDER " in *" $m "*) return 0;; esac
  ORDER="$ORDER $m"
  cp "$f" "$R/lib/modules/$m.ko"
}

R=$WORK/root
mkdir -p "$R"/bin "$R"/proc "$R"/sys "$R"/dev "$R"/tmp "$R"/lib/modules "$R"/www/cgi-bin "$R"/etc/acpi/PWRF \
  "$R"/run "$R"/mnt "$R"/var/log "$R"/var/run
cp "$BB" "$R/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
for m in $WANT; do add_mod "$m"; done
echo $ORDER | tr ' ' '\n' > "$R/modules.order"

cat > "$R/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
for m in $(cat /modules.order); do insmod /lib/modules/$m.ko 2>/dev/null || echo "insmod $m failed"; done
ip link set lo up
# network for QEMU user-mode networking (slirp): devices probe asynchronously, so wait for eth0
for i in $(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || echo "no network"
# contextualisation 1: the fw_cfg blob
C=/sys/firmware/qemu_fw_cfg/by_name/opt/cernvm/context/raw
[ -r $C ] && cat $C > /www/context.txt
# contextualisation 2: an ISO 9660 disk holding CONTEXT.SH (EC2_USER_DATA=base64) on a virtio disk
# wait only for the virtio block devices that exist (virtio device id 0x0002), not a fixed time
NBLK=$(grep -l 0x0002 /sys/bus/virtio/devices/*/device 2>/dev/null | wc -l)
for i in $(seq 50); do [ "$(ls -d /sys/block/vd* 2>/dev/null | wc -l)" -ge "$NBLK" ] && break; sleep 0.1; done
for d in /dev/vd*; do
  [ -b "$d" ] || continue
  mount -t iso9660 -o ro "$d" /mnt 2>/dev/null || continue
  F=$(ls /mnt | grep -i '^context.sh' | head -1)
  if [ -n "$F" ]; then
    cp "/mnt/$F" /www/context.sh
    sed -n 's/^EC2_USER_DATA="\(.*\)"$/\1/p' /www/context.sh | base64 -d > /www/disk-context.txt
  fi
  umount /mnt
done
cat /proc/sys/kernel/random/boot_id > /www/boot_id
echo "guest api alive" > /www/index.html
httpd -p 80 -h /www
acpid -c /etc/acpi -a /etc/acpid.conf -l /dev/null
ip addr show eth0 | grep -q 10.0.2.15 || echo "eth0 has no address"
echo "CVM-GUEST-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
while :; do sleep 3600; done
INIT

cat > "$R/www/cgi-bin/status" <<'CGI'
#!/bin/sh
printf 'Content-Type: application/json\r\nConnection: close\r\n\r\n'
printf '{"uptime":%s,"boot_id":"%s","context_bytes":%s,"disk_context_bytes":%s}\n' \
  "$(cut -d' ' -f1 /proc/uptime)" "$(cat /www/boot_id)" \
  "$(cat /www/context.txt 2>/dev/null | wc -c)" "$(cat /www/disk-context.txt 2>/dev/null | wc -c)"
CGI
cat > "$R/www/cgi-bin/burn" <<'CGI'
#!/bin/sh
# /cgi-bin/burn?seconds=N : a busy loop for N seconds (1..600, default 60)
N=$(echo "$QUERY_STRING" | sed -n 's/.*seconds=\([0-9]\{1,3\}\).*/\1/p')
[ -n "$N" ] || N=60
[ "$N" -ge 1 ] && [ "$N" -le 600 ] || N=60
timeout "$N" sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &
printf 'Content-Type: text/plain\r\nConnection: close\r\n\r\nburning for %s s\n' "$N"
CGI
cat > "$R/www/cgi-bin/poweroff" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\nConnection: close\r\n\r\nbye\n'
( sleep 0.2; echo CVM-GUEST-POWEROFF >/dev/console; poweroff -f ) </dev/null >/dev/null 2>&1 &
CGI
printf 'PWRF PWRF/00000080\n' > "$R/etc/acpid.conf"
printf '#!/bin/sh\necho CVM-ACPI-POWERDOWN >/dev/console\npoweroff -f\n' > "$R/etc/acpi/PWRF/00000080"
chmod +x "$R"/init "$R"/www/cgi-bin/* "$R/etc/acpi/PWRF/00000080"

ISO=$WORK/iso
mkdir -p "$ISO/boot" "$ISO/isolinux"
( cd "$R" && find . | "$BB" cpio -o -H newc 2>/dev/null ) | gzip -6 > "$ISO/boot/initrd.img"
cp kx/boot/vmlinuz-* "$ISO/boot/vmlinuz"
cp $ISOLINUX/isolinux.bin $SYSLINUX/ldlinux.c32 "$ISO/isolinux/"
cat > "$ISO/isolinux/isolinux.cfg" <<CFG
DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  KERNEL /boot/vmlinuz
  APPEND initrd=/boot/initrd.img console=ttyS0 quiet panic=-1
CFG
xorriso -as mkisofs -quiet -o "$WORK/guest.iso" -V CVM_TEST_GUEST -J -R \
  -isohybrid-mbr $ISOLINUX/isohdpfx.bin -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table "$ISO" >&2
mv "$WORK/guest.iso" "$OUT/guest.iso"
( cd "$OUT" && sha256sum guest.iso > guest.iso.sha256 )
echo "$OUT/guest.iso"
