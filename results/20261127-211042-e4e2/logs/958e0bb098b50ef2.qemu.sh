#!/bin/sh
# pvmatrix: published reproducer: the boot's QEMU script, run against the
# pvmatrix cache that has its inputs ($PVMATRIX_CACHE, else ~/.cache/pvmatrix).
cache=${PVMATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pvmatrix}
script=$(mktemp) || exit 2
trap 'rm -f "$script"' EXIT
sed "s|@CACHE@|$cache|g" >"$script" <<'PVMATRIX_SCRIPT'
#!/bin/sh
# Xen 4.20 boot with 7.3-amd64 as dom0, domU-pv, domU-pvh
# Reproduces one pvmatrix boot without pvmatrix (written by pvmatrix 0.1.0
# at boot time; paths point into its cache). Prints the serial console and
# exits 0 when every expected marker is seen (and no panic/crash), else 1.
# QEMU=/path/to/qemu-system-x86_64 overrides the QEMU program.
set -u
if [ ! -d @CACHE@/boot/runs/20261127-212657-xen-e3eaf6 ]; then
    echo "reproduce: "@CACHE@/boot/runs/20261127-212657-xen-e3eaf6" is gone (pvmatrix deletes the oldest boot dirs past"          "PVMATRIX_BOOT_KEEP_MB); 'pvmatrix rerun RUN CELL' boots the cell again" >&2
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
cat @CACHE@/boot/userspace/dom0-xen4.20-a8124885f6885c14.cpio @CACHE@/boot/runs/20261127-212657-xen-e3eaf6/overlay.cpio >"$work/part0" || exit 2
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
    -initrd '@CACHE@/boot/runs/20261127-212657-xen-e3eaf6/dom0-kernel console=hvc0 earlyprintk=xen loglevel=5 panic=1,'"$work/part0" \
    -netdev hubport,id=pvmdev0,hubid=10 \
    -device e1000e,id=pvmdev0,addr=0x10,netdev=pvmdev0 \
    -drive if=none,id=pvmdisk1,format=raw,file=@CACHE@/boot/runs/20261127-212657-xen-e3eaf6/disk-ich9-ahci.img \
    -device ich9-ahci,id=pvmdev1,addr=0x11 \
    -device ide-hd,drive=pvmdisk1,bus=pvmdev1.0 &
qpid=$!
tail -s 0.3 -n +1 -f --pid="$qpid" "$log" &
tpid=$!
end=$(( $(date +%s) + 470 ))
while kill -0 "$qpid" 2>/dev/null; do
    if grep -v 'PVMG ' "$log" | grep -v ' guest=' | grep -q 'PVM .*stage=done' \
            || grep -Eq 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log"; then
        sleep 3; break
    fi
    if [ "$(date +%s)" -ge "$end" ]; then echo "reproduce: deadline (470 s) passed" >&2; break; fi
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
seen pv 'probe=disk ok=1 data=PVMDISK-pv-383cb6b6' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pv-383cb6b6'"'"' (pv)' >&2; status=1; }
seen pv 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pv)' >&2; status=1; }
seen pv stage=done || { echo 'reproduce: missing marker '"'"'stage=done'"'"' (pv)' >&2; status=1; }
seen pvh 'guest=* stage=create ok=1' || { echo 'reproduce: missing marker '"'"'guest=* stage=create ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=init || { echo 'reproduce: missing marker '"'"'stage=init'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=console ok=1' || { echo 'reproduce: missing marker '"'"'probe=console ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=disk ok=1 data=PVMDISK-pvh-383cb6b6' || { echo 'reproduce: missing marker '"'"'probe=disk ok=1 data=PVMDISK-pvh-383cb6b6'"'"' (pvh)' >&2; status=1; }
seen pvh 'probe=net ok=1' || { echo 'reproduce: missing marker '"'"'probe=net ok=1'"'"' (pvh)' >&2; status=1; }
seen pvh stage=done || { echo 'reproduce: missing marker '"'"'stage=done'"'"' (pvh)' >&2; status=1; }
if grep -Eq 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log"; then echo "reproduce: crash: $(grep -Em1 'Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))' "$log")" >&2; status=1; fi
[ "$status" = 0 ] && echo "reproduce: ok: every expected marker seen" >&2
exit "$status"
PVMATRIX_SCRIPT
sh "$script" "$@"
