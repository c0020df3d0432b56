#!/bin/sh
# pvmatrix: published reproducer: the boot's QEMU script, run against the
# pvmatrix cache that has its inputs ($PVMATRIX_CACHE, else ~/.cache/pvmatrix).
cache=${PVMATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pvmatrix}
script=$(mktemp) || exit 2
trap 'rm -f "$script"' EXIT
sed "s|@CACHE@|$cache|g" >"$script" <<'PVMATRIX_SCRIPT'
#!/bin/sh
# Xen 4.20 boot with 7.2.13-23321d36 as dom0, pv_pt
# Reproduces one pvmatrix boot without pvmatrix (written by pvmatrix 0.1.0
# at boot time; paths point into its cache). Prints the serial console and
# exits 0 when every expected marker is seen (and no panic/crash), else 1.
# QEMU=/path/to/qemu-system-x86_64 overrides the QEMU program.
set -u
if [ ! -d @CACHE@/boot/runs/20261128-140219-xen-62c99b ]; then
    echo "reproduce: "@CACHE@/boot/runs/20261128-140219-xen-62c99b" is gone (pvmatrix deletes the oldest boot dirs past"          "PVMATRIX_BOOT_KEEP_MB); 'pvmatrix rerun RUN CELL' boots the cell again" >&2
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
cat @CACHE@/boot/userspace/dom0-xen4.20-a8124885f6885c14.cpio @CACHE@/boot/runs/20261128-140219-xen-62c99b/overlay.cpio >"$work/part0" || exit 2
"$QEMU" -machine q35 \
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
    -append 'console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_max_vcpus=1 iommu=1,verbose dom0_mem=512M,max:512M' \
    -initrd '@CACHE@/boot/runs/20261128-140219-xen-62c99b/dom0-kernel console=hvc0 earlyprintk=xen loglevel=5 panic=1 sym53c8xx.settle=0,'"$work/part0" \
    -device intel-iommu,intremap=on \
    -netdev hubport,id=pvmdev0,hubid=10 \
    -object filter-dump,id=pvmdump0,netdev=pvmdev0,file=@CACHE@/boot/runs/20261128-140219-xen-62c99b/nic-e1000e.pcap \
    -device e1000e,id=pvmdev0,addr=0x10,netdev=pvmdev0 \
    -drive if=none,id=pvmdisk1,format=raw,file=@CACHE@/boot/runs/20261128-140219-xen-62c99b/disk-ich9-ahci.img \
    -device ich9-ahci,id=pvmdev1,addr=0x11 \
    -device ide-hd,drive=pvmdisk1,bus=pvmdev1.0 \
    -netdev hubport,id=pvmdev2,hubid=12 \
    -object filter-dump,id=pvmdump2,netdev=pvmdev2,file=@CACHE@/boot/runs/20261128-140219-xen-62c99b/nic-passthrough-e1000.pcap \
    -device e1000,id=pvmdev2,addr=0xf,netdev=pvmdev2 &
qpid=$!
tail -s 0.3 -n +1 -f --pid="$qpid" "$log" &
tpid=$!
end=$(( $(date +%s) + 350 ))
while kill -0 "$qpid" 2>/dev/null; do
    if grep -v 'PVMG ' "$log" | grep -v ' guest=' | grep -q 'PVM .*stage=done' \
            || grep -Eq 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log"; then
        sleep 3; break
    fi
    if [ "$(date +%s)" -ge "$end" ]; then echo "reproduce: deadline (350 s) passed" >&2; break; fi
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
seen pv_pt 'guest=* stage=assignable ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=assignable ok=1'"'"' (pv_pt)' >&2; status=1; }
seen pv_pt 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pv_pt)' >&2; status=1; }
seen pv_pt stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pv_pt)' >&2; status=1; }
seen pv_pt 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pv_pt)' >&2; status=1; }
seen pv_pt 'probe=disk ok=1 data=PVMDISK-pv_pt-2a197848' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pv_pt-2a197848'"'"' (pv_pt)' >&2; status=1; }
seen pv_pt 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pv_pt)' >&2; status=1; }
seen pv_pt probe=passthrough || { echo 'reproduce: missing marker '"'"'probe=passthrough'"'"' (pv_pt)' >&2; status=1; }
seen pv_pt stage=done || { echo 'reproduce: missing marker '"'"'stage=done'"'"' (pv_pt)' >&2; status=1; }
if grep -Eq 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log"; then echo "reproduce: crash: $(grep -Em1 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log")" >&2; status=1; fi
[ "$status" = 0 ] && echo "reproduce: ok: every expected marker seen" >&2
exit "$status"
PVMATRIX_SCRIPT
sh "$script" "$@"
