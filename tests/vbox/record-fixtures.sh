#!/usr/bin/env bash
# Records real VBoxManage output into src-tauri/core/tests/fixtures/vbox/ for the parser and command
# tests. VirtualBox cannot run VMs on the build machines (no vboxdrv), so this uses VBoxManage from a
# Debian sid chroot (tests/vbox/build-chroot.sh) for every command that needs no running VM, and records
# the errors of those that do. Needs root. Usage: tests/vbox/record-fixtures.sh
# Each fixture NAME has NAME.stdout, NAME.stderr and a line "NAME <exit code> <argv>" in INDEX.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
out="$here/../../src-tauri/core/tests/fixtures/vbox"
"$here/build-chroot.sh" "$VBOX_CHROOT" >/dev/null || exit 1
vbox_mount_shared
work="$VBOX_SHARED/fixtures"
rm -rf "$work" "$out"; mkdir -p "$work" "$out"
index="$out/INDEX"

rec() { # rec NAME ARGS...: run VBoxManage, keep its output
  local name=$1; shift
  $VBOX_CMD "$@" >"$out/$name.stdout" 2>"$out/$name.stderr"
  local rc=$?
  echo "$name $rc $*" >>"$index"
  return 0
}

vm=cvmwebapi-fixture
rec version --version
rec createvm -q createvm --name $vm --ostype Linux26_64 --basefolder "$work" --register
uuid=$(sed -n 's/^UUID: *//p' "$out/createvm.stdout")
rec createvm-exists -q createvm --name $vm --ostype Linux26_64 --basefolder "$work" --register
rec showvminfo-created -q showvminfo $uuid --machinereadable
rec list-vms -q list vms
rec setextradata -q setextradata $uuid CernVM-WebAPI/Owner "$work/sessions/fixture"
rec getextradata -q getextradata $uuid CernVM-WebAPI/Owner
rec getextradata-unset -q getextradata $uuid CernVM-WebAPI/Nothing
rec storagectl-ide -q storagectl $uuid --name IDE --add ide
rec storagectl-sata -q storagectl $uuid --name SATA --add sata --portcount 3
rec modifyvm -q modifyvm $uuid --cpus 2 --memory 256 --vram 32 --cpuexecutioncap 50 --acpi on --ioapic on \
  --boot1 dvd --boot2 none --nic1 nat --natdnshostresolver1 on --natpf1 guestapi,tcp,127.0.0.1,18200,,80 \
  --vrde on --vrdeaddress 127.0.0.1 --vrdeport 18300 --draganddrop hosttoguest --clipboard-mode bidirectional
rec modifyvm-bad-cap -q modifyvm $uuid --cpuexecutioncap 0
# A boot "ISO" and a scratch disk: the ISO is any file with an ISO 9660 header (VirtualBox checks no more here).
head -c 409600 /dev/zero > "$work/boot.iso"; printf 'CD001' | dd of="$work/boot.iso" bs=1 seek=32769 conv=notrunc 2>/dev/null
rec storageattach-iso -q storageattach $uuid --storagectl IDE --port 0 --device 0 --type dvddrive --medium "$work/boot.iso"
rec createmedium -q createmedium disk --filename "$work/scratch.vdi" --size 64 --format VDI
rec storageattach-scratch -q storageattach $uuid --storagectl SATA --port 0 --device 0 --type hdd --medium "$work/scratch.vdi"
rec showvminfo-poweroff -q showvminfo $uuid --machinereadable
rec controlvm-not-running -q controlvm $uuid pause
rec controlvm-cap-not-running -q controlvm $uuid cpuexecutioncap 30
rec modifyvm-cap -q modifyvm $uuid --cpuexecutioncap 30
rec startvm -q startvm $uuid --type headless
rec showvminfo-after-failed-start -q showvminfo $uuid --machinereadable
log=$(sed -n 's/^LogFldr="\(.*\)"$/\1/p' "$out/showvminfo-after-failed-start.stdout")/VBox.log
[ -f "$log" ] && tail -c 65536 "$log" > "$out/VBox-failed-start.log"
# A saved state adopted from a file: gives the real `saved` output without running the VM.
head -c 4096 /dev/zero > "$work/state.sav"
rec adoptstate -q adoptstate $uuid "$work/state.sav"
rec showvminfo-saved -q showvminfo $uuid --machinereadable
rec modifyvm-cap-saved -q modifyvm $uuid --cpuexecutioncap 40
rec discardstate -q discardstate $uuid
# Shared base disk: the multi-attach registration dance and a differencing child per VM.
rec createmedium-base -q createmedium disk --filename "$work/base.vdi" --size 32 --format VDI
rec storageattach-multiattach-direct -q storageattach $uuid --storagectl IDE --port 1 --device 0 --type hdd --mtype multiattach --medium "$work/base.vdi"
rec showmediuminfo-base-normal -q showmediuminfo disk "$work/base.vdi"
# Lock errors: many concurrent modifyvm on one VM; some find it locked by another.
for i in $(seq 1 12); do
  $VBOX_CMD -q modifyvm $uuid --cpuexecutioncap $((10 + i)) >"$work/lock-$i.stdout" 2>"$work/lock-$i.stderr" &
done
wait
lockfile=$(grep -l "locked" "$work"/lock-*.stderr | head -1)
if [ -n "$lockfile" ]; then cp "$lockfile" "$out/lock-error.stderr"; echo "lock-error 1 (concurrent modifyvm)" >>"$index"; fi
# Reads racing writes: showvminfo while modifyvm holds the write lock reports "The object is not ready".
for i in $(seq 1 12); do
  $VBOX_CMD -q modifyvm $uuid --cpuexecutioncap $((20 + i)) >/dev/null 2>&1 &
  $VBOX_CMD -q showvminfo $uuid --machinereadable >"$work/ready-$i.stdout" 2>"$work/ready-$i.stderr" &
done
wait
readyfile=$(grep -l "not ready" "$work"/ready-*.stderr | head -1)
if [ -n "$readyfile" ]; then cp "$readyfile" "$out/not-ready-error.stderr"; echo "not-ready-error 1 (showvminfo during modifyvm)" >>"$index"; fi
rec unregistervm -q unregistervm $uuid --delete
rec showvminfo-missing -q showvminfo $uuid --machinereadable
rec list-vms-empty -q list vms
$VBOX_CMD -q closemedium disk "$work/base.vdi" --delete >/dev/null 2>&1
{ echo "VirtualBox $(cat "$out/version.stdout") in a Debian sid chroot (tests/vbox/build-chroot.sh),"
  echo "recorded $(date -u +%Y-%m-%d) by tests/vbox/record-fixtures.sh. No VM could run (no vboxdrv)."; } >"$out/VERSION"
echo "record-fixtures: $(wc -l <"$index") commands recorded in $out"
