#!/bin/sh
# pvmatrix: published reproducer: the boot's QEMU script, run against the
# pvmatrix cache that has its inputs ($PVMATRIX_CACHE, else ~/.cache/pvmatrix).
cache=${PVMATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pvmatrix}
script=$(mktemp) || exit 2
trap 'rm -f "$script"' EXIT
sed "s|@CACHE@|$cache|g" >"$script" <<'PVMATRIX_SCRIPT'
#!/bin/sh
# Xen 4.20 boot with 6.1.0-50-amd64 as dom0, pv, pvh
# Reproduces one pvmatrix boot without pvmatrix (written by pvmatrix 0.1.0
# at boot time; paths point into its cache). Prints the serial console and
# exits 0 when every expected marker is seen (and no panic/crash), else 1.
# QEMU=/path/to/qemu-system-x86_64 overrides the QEMU program.
set -u
if [ ! -d @CACHE@/boot/runs/20261128-132730-xen-b85f79 ]; then
    echo "reproduce: "@CACHE@/boot/runs/20261128-132730-xen-b85f79" is gone (pvmatrix deletes the oldest boot dirs past"          "PVMATRIX_BOOT_KEEP_MB); 'pvmatrix rerun RUN CELL' boots the cell again" >&2
    exit 2
fi
QEMU=${QEMU:-qemu-system-x86_64}
work=$(mktemp -d)
qpid=; tpid=
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
log="$work/serial.log"
: >"$log"
cat @CACHE@/boot/userspace/dom0-xen4.20-a8124885f6885c14.cpio @CACHE@/boot/runs/20261128-132730-xen-b85f79/overlay.cpio >"$work/part0" || exit 2
"$QEMU" -machine pc \
    -accel tcg,thread=single,tb-size=512 \
    -cpu qemu64,+svm,+npt \
    -smp 2 \
    -m 1280 \
    -nodefaults \
    -display none \
    -no-reboot \
    -no-user-config \
    -monitor none \
    -serial "file:$log" \
    -kernel @CACHE@/boot/xen/xen-4.20 \
    -append 'console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_max_vcpus=1 dom0_mem=512M,max:512M' \
    -initrd '@CACHE@/boot/runs/20261128-132730-xen-b85f79/dom0-kernel console=hvc0 earlyprintk=xen loglevel=5 panic=1 sym53c8xx.settle=0,'"$work/part0" \
    -netdev hubport,id=pvmdev0,hubid=10 \
    -object filter-dump,id=pvmdump0,netdev=pvmdev0,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/nic-e1000.pcap \
    -device e1000,id=pvmdev0,addr=0x10,netdev=pvmdev0 \
    -netdev hubport,id=pvmdev1,hubid=11 \
    -object filter-dump,id=pvmdump1,netdev=pvmdev1,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/nic-e1000e.pcap \
    -device e1000e,id=pvmdev1,addr=0x11,netdev=pvmdev1 \
    -netdev hubport,id=pvmdev2,hubid=12 \
    -object filter-dump,id=pvmdump2,netdev=pvmdev2,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/nic-rtl8139.pcap \
    -device rtl8139,id=pvmdev2,addr=0x12,netdev=pvmdev2 \
    -netdev hubport,id=pvmdev3,hubid=13 \
    -object filter-dump,id=pvmdump3,netdev=pvmdev3,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/nic-vmxnet3.pcap \
    -device vmxnet3,id=pvmdev3,addr=0x13,netdev=pvmdev3 \
    -drive if=none,id=pvmdisk4,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-ich9-ahci.img \
    -device ich9-ahci,id=pvmdev4,addr=0x14 \
    -device ide-hd,drive=pvmdisk4,bus=pvmdev4.0 \
    -drive if=none,id=pvmdisk5,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-nvme.img \
    -device nvme,id=pvmdev5,addr=0x15,serial=pvm5,drive=pvmdisk5 \
    -drive if=none,id=pvmdisk6,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-megasas.img \
    -device megasas,id=pvmdev6,addr=0x16 \
    -device scsi-hd,drive=pvmdisk6,bus=pvmdev6.0 \
    -drive if=none,id=pvmdisk7,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-megasas-gen2.img \
    -device megasas-gen2,id=pvmdev7,addr=0x17 \
    -device scsi-hd,drive=pvmdisk7,bus=pvmdev7.0 \
    -drive if=none,id=pvmdisk8,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-mptsas1068.img \
    -device mptsas1068,id=pvmdev8,addr=0x18 \
    -device scsi-hd,drive=pvmdisk8,bus=pvmdev8.0 \
    -drive if=none,id=pvmdisk9,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-lsi53c895a.img \
    -device lsi53c895a,id=pvmdev9,addr=0x19 \
    -device scsi-hd,drive=pvmdisk9,bus=pvmdev9.0 \
    -drive if=none,id=pvmdisk10,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-pvscsi.img \
    -device pvscsi,id=pvmdev10,addr=0x1a \
    -device scsi-hd,drive=pvmdisk10,bus=pvmdev10.0 \
    -drive if=none,id=pvmdisk11,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-qemu-xhci.img \
    -device qemu-xhci,id=pvmdev11,addr=0x1b \
    -device usb-storage,drive=pvmdisk11,bus=pvmdev11.0 \
    -drive if=none,id=pvmdisk12,format=raw,file=@CACHE@/boot/runs/20261128-132730-xen-b85f79/disk-nec-usb-xhci.img \
    -device nec-usb-xhci,id=pvmdev12,addr=0x1c \
    -device usb-storage,drive=pvmdisk12,bus=pvmdev12.0 &
qpid=$!
tail -s 0.3 -n +1 -f --pid="$qpid" "$log" &
tpid=$!
end=$(( $(date +%s) + 1910 ))
while kill -0 "$qpid" 2>/dev/null; do
    if grep -v 'PVMG ' "$log" | grep -v ' guest=' | grep -q 'PVM .*stage=done' \
            || grep -Eq 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log"; then
        sleep 3; break
    fi
    if [ "$(date +%s)" -ge "$end" ]; then echo "reproduce: deadline (1910 s) passed" >&2; break; fi
    sleep 0.5
done
kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=
wait "$tpid" 2>/dev/null
seen() { awk -v region="$1" -v pat="$2" '{ line = $0; sub(/\r$/, "", line); r = "host"
  j = index(line, "PVMG ")
  if (j) { rest = substr(line, j + 5); k = index(rest, "|"); if (!k) next
           r = substr(rest, 1, k - 1); line = substr(rest, k + 1) }
  i = index(line, "PVM "); if (!i) next
  f = " " substr(line, i + 4) " "
  if (r == "host" && match(f, / guest=[^ ]+ /)) r = substr(f, RSTART + 7, RLENGTH - 8)
  if (r != region) next
  n = split(pat, t, " "); ok = 1
  for (x = 1; x <= n; x++) {
    if (t[x] ~ /=\*$/) { if (!index(f, " " substr(t[x], 1, length(t[x]) - 1))) ok = 0 }
    else if (!index(f, " " t[x] " ")) ok = 0 }
  if (ok) { found = 1; exit } }
END { exit found ? 0 : 1 }' "$log"; }
status=0
seen host stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (host)' >&2; status=1; }
seen host 'check=xenfs ok=1' || { echo 'reproduce: missing marker '"'"'check=xenfs ok=1'"'"' (host)' >&2; status=1; }
seen host 'check=xenstored ok=1' || { echo 'reproduce: missing marker '"'"'check=xenstored ok=1'"'"' (host)' >&2; status=1; }
seen host 'check=xen-init-dom0 ok=1' || { echo 'reproduce: missing marker '"'"'check=xen-init-dom0 ok=1'"'"' (host)' >&2; status=1; }
seen host 'check=xenconsoled ok=1' || { echo 'reproduce: missing marker '"'"'check=xenconsoled ok=1'"'"' (host)' >&2; status=1; }
seen host 'check=xl-list ok=1' || { echo 'reproduce: missing marker '"'"'check=xl-list ok=1'"'"' (host)' >&2; status=1; }
seen host stage=done || { echo 'reproduce: missing marker '"'"'stage=done'"'"' (host)' >&2; status=1; }
seen pv 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pv)' >&2; status=1; }
seen pv 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'probe=disk ok=1 data=PVMDISK-pv-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pv-bff80ab2'"'"' (pv)' >&2; status=1; }
seen pv 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=done || { echo 'reproduce: missing marker '"'"'stage=done'"'"' (pv)' >&2; status=1; }
seen pvh 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=disk ok=1 data=PVMDISK-pvh-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pvh-bff80ab2'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=done || { echo 'reproduce: missing marker '"'"'stage=done'"'"' (pvh)' >&2; status=1; }
seen pv 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pv)' >&2; status=1; }
seen pv 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'probe=disk ok=1 data=PVMDISK-pv-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pv-bff80ab2'"'"' (pv)' >&2; status=1; }
seen pv 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=ready || { echo 'reproduce: missing marker '"'"'stage=ready'"'"' (pv)' >&2; status=1; }
seen pv 'guest=* stage=save ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=save ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'guest=* stage=restore ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=restore ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'guest=* stage=go ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=go ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'probe=disk when=resumed ok=1 data=PVMDISK-pv-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk when=resumed ok=1 data=PVMDISK-pv-bff80ab2'"'"' (pv)' >&2; status=1; }
seen pv 'probe=net when=resumed ok=1' || { echo 'reproduce: missing marker '"'"'probe=net when=resumed ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=resumed || { echo 'reproduce: missing marker '"'"'stage=resumed'"'"' (pv)' >&2; status=1; }
seen pvh 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=disk ok=1 data=PVMDISK-pvh-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pvh-bff80ab2'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=ready || { echo 'reproduce: missing marker '"'"'stage=ready'"'"' (pvh)' >&2; status=1; }
seen pvh 'guest=* stage=save ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=save ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'guest=* stage=restore ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=restore ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'guest=* stage=go ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=go ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=disk when=resumed ok=1 data=PVMDISK-pvh-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk when=resumed ok=1 data=PVMDISK-pvh-bff80ab2'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=net when=resumed ok=1' || { echo 'reproduce: missing marker '"'"'probe=net when=resumed ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=resumed || { echo 'reproduce: missing marker '"'"'stage=resumed'"'"' (pvh)' >&2; status=1; }
seen pv 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pv)' >&2; status=1; }
seen pv 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'probe=disk ok=1 data=PVMDISK-pv-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pv-bff80ab2'"'"' (pv)' >&2; status=1; }
seen pv 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=ready || { echo 'reproduce: missing marker '"'"'stage=ready'"'"' (pv)' >&2; status=1; }
seen pv 'guest=* stage=migrate ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=migrate ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'guest=* stage=go ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=go ok=1'"'"' (pv)' >&2; status=1; }
seen pv 'probe=disk when=resumed ok=1 data=PVMDISK-pv-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk when=resumed ok=1 data=PVMDISK-pv-bff80ab2'"'"' (pv)' >&2; status=1; }
seen pv 'probe=net when=resumed ok=1' || { echo 'reproduce: missing marker '"'"'probe=net when=resumed ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=resumed || { echo 'reproduce: missing marker '"'"'stage=resumed'"'"' (pv)' >&2; status=1; }
seen pvh 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=disk ok=1 data=PVMDISK-pvh-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pvh-bff80ab2'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=ready || { echo 'reproduce: missing marker '"'"'stage=ready'"'"' (pvh)' >&2; status=1; }
seen pvh 'guest=* stage=migrate ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=migrate ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'guest=* stage=go ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=go ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=disk when=resumed ok=1 data=PVMDISK-pvh-bff80ab2' || { echo 'reproduce: missing marker '"'"'probe=disk when=resumed ok=1 data=PVMDISK-pvh-bff80ab2'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=net when=resumed ok=1' || { echo 'reproduce: missing marker '"'"'probe=net when=resumed ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=resumed || { echo 'reproduce: missing marker '"'"'stage=resumed'"'"' (pvh)' >&2; status=1; }
if grep -Eq 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log"; then echo "reproduce: crash: $(grep -Em1 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log")" >&2; status=1; fi
[ "$status" = 0 ] && echo "reproduce: ok: every expected marker seen" >&2
exit "$status"
PVMATRIX_SCRIPT
sh "$script" "$@"
