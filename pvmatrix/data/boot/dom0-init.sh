#!/bin/sh
# pvmatrix dom0 init (Debian userspace with xen-utils): hardware probes, the
# Xen toolstack (xenstored, xen-init-dom0, xenconsoled, xl list), then each
# planned guest with xl create; guest consoles are relayed as "PVMG name| line".
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
. /pvm/lib.sh
. /pvm/plan.env
pvm_mounts
say stage=init role=dom0 kernel="$(uname -r)"
pvm_hardware

check() {  # check NAME CMD...: run, say ok or not, relay output on failure
    name=$1; shift
    "$@" >/tmp/out.$name 2>&1; rc=$?
    if [ $rc -eq 0 ]; then say check="$name" ok=1; else say check="$name" ok=0 rc=$rc; relay "$name" /tmp/out.$name; fi
    return $rc
}

XENBIN=$(ls -d /usr/lib/xen-[0-9]*/bin 2>/dev/null | tail -n1)
export PATH="$XENBIN:$PATH"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback xen-netback loop; do
    modprobe -q "$m" 2>/dev/null
done
mkdir -p /proc/xen /run/xen /run/xenstored /var/lib/xenstored /var/lib/xen /var/log/xen \
         /run/xencons /run/lock /var/lock
check xenfs mount -t xenfs xenfs /proc/xen
say probe=xen caps="$(cat /proc/xen/capabilities 2>/dev/null)" version="$(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)"

xs_up() {  # the C xenstored if shipped, else oxenstored; wait until it answers
    xs=$(command -v xenstored || command -v oxenstored) || { echo "no xenstored in dom0"; return 1; }
    say probe=xenstored path="$xs"
    "$xs" --pid-file=/run/xenstored.pid || return 1
    i=0; while [ $i -lt 50 ]; do xenstore-read / >/dev/null 2>&1 && return 0; sleep 0.2; i=$((i + 1)); done
    xenstore-read /
}
check xenstored xs_up
check xen-init-dom0 xen-init-dom0
check xenconsoled xenconsoled --log=guest --log-dir=/run/xencons --pid-file=/run/xenconsoled.pid
check xl-list xl list && relay xl-list /tmp/out.xl-list

now() { cut -d' ' -f1 /proc/uptime; }

guest_start() {  # guest_start NAME TYPE N
    g=$1; img=/run/disk-$1.img
    dd if=/dev/zero of="$img" bs=1024 count=1024 2>/dev/null
    printf 'PVMDISK-%s-%s' "$1" "$NONCE" | dd of="$img" bs=512 seek=1 conv=notrunc 2>/dev/null
    loop=$(losetup -f --show "$img") || { say guest="$g" stage=disk ok=0; loop=/dev/null; }
    cat >/run/$g.cfg <<CFG
name = "$g"
type = "$2"
kernel = "/pvm/guest/bzImage"
ramdisk = "/pvm/guest/initrd.gz"
extra = "console=hvc0 panic=1 pvm.name=$g pvm.ip=10.99.$3.2 pvm.peer=10.99.$3.1"
memory = $GUEST_MB
vcpus = 1
disk = [ "format=raw,vdev=xvda,access=w,script=/etc/xen/scripts/pvm-block,target=$loop" ]
vif = [ "mac=00:16:3e:99:00:0$3,script=/etc/xen/scripts/pvm-vif" ]
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "preserve"
CFG
    xl create /run/$g.cfg >/tmp/out.$g 2>&1; rc=$?
    if [ $rc -ne 0 ]; then
        say guest="$g" stage=create ok=0 rc=$rc; relay "$g" /tmp/out.$g; return 1
    fi
    id=$(xl domid "$g")
    say guest="$g" stage=create ok=1 domid="$id"
    ip addr add "10.99.$3.1/24" dev "vif$id.0" && ip link set "vif$id.0" up
    echo "$(now)" >/run/$g.start
}

guest_state() {  # done, crashed, gone or running
    grep -q 'PVM stage=done' "/run/xencons/guest-$1.log" 2>/dev/null && { echo done; return; }
    line=$(xl list "$1" 2>/dev/null | tail -n +2)
    [ -z "$line" ] && { echo gone; return; }
    case "$(echo "$line" | awk '{print $5}')" in *c*) echo crashed ;; *) echo running ;; esac
}

guest_finish() {  # guest_finish NAME STATE
    sed -e 's/\r$//' -e "s/^/PVMG $1| /" "/run/xencons/guest-$1.log" 2>/dev/null
    say guest="$1" stage=exit state="$2" start="$(cat /run/$1.start)"
    xl destroy "$1" >/dev/null 2>&1
}

wait_guests() {  # wait_guests NAME...: until each is done, gone, crashed or late
    pending="$*"
    t0=$(now)
    while [ -n "$pending" ]; do
        left=""
        for g in $pending; do
            s=$(guest_state "$g")
            if [ "$s" = running ] && awk -v a="$(now)" -v b="$t0" -v d="$GUEST_DEADLINE" 'BEGIN{exit !(a-b>d)}'; then
                s=timeout
            fi
            if [ "$s" = running ]; then left="$left $g"; else guest_finish "$g" "$s"; fi
        done
        pending=$left
        [ -n "$pending" ] && sleep 0.3
    done
}

if [ -n "$GUESTS" ] && [ -n "$(xl list 2>/dev/null)" ]; then
    started=""
    for spec in $GUESTS; do
        IFS=: read -r g t n <<EOS
$spec
EOS
        guest_start "$g" "$t" "$n" && started="$started $g"
        [ "$PARALLEL" = 1 ] || { [ -n "$started" ] && wait_guests $started; started=""; }
    done
    [ -n "$started" ] && wait_guests $started
fi
pvm_off
