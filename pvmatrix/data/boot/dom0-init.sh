#!/pvm/bin/busybox sh
# pvmatrix dom0 init (Debian userspace with xen-utils, plus a static busybox
# in /pvm/bin for the small tools): hardware probes, the Xen toolstack
# (xenstored, xen-init-dom0, xenconsoled, xl list), then each planned guest
# with xl create; guest consoles are relayed as "PVMG name| line". A boot
# hosting several guest kernels names each guest for its kernel (pv_2) and
# finds that kernel's files in DIR_name (default /pvm/guest).
XENBIN=$(/pvm/bin/busybox ls -d /usr/lib/xen-[0-9]*/bin 2>/dev/null | /pvm/bin/busybox tail -n1)
export PATH="/pvm/bin:$XENBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
. /pvm/lib.sh
. /pvm/plan.env
pvm_mounts
say stage=init role=dom0 kernel="$(uname -r)"
pvm_depmod
pvm_hardware

check() {  # check NAME CMD...: run, say ok or not, relay output on failure
    name=$1; shift
    "$@" >/tmp/out.$name 2>&1; rc=$?
    if [ $rc -eq 0 ]; then say check="$name" ok=1; else say check="$name" ok=0 rc=$rc; relay "$name" /tmp/out.$name; fi
    return $rc
}

# the role's modules (roles.toml): Xen drivers a modular kernel has as modules
# (built-in ones: modprobe says nothing)
[ -n "$MODULES" ] && modprobe -q -a $MODULES 2>/dev/null
mkdir -p /proc/xen /run/xen /run/xenstored /var/lib/xenstored /var/lib/xen /var/log/xen \
         /run/xencons /run/lock /var/lock
check xenfs mount -t xenfs xenfs /proc/xen
say probe=xen caps="$(rd /proc/xen/capabilities)" version="$(rd /sys/hypervisor/version/major).$(rd /sys/hypervisor/version/minor)"

xs_up() {  # the C xenstored if shipped, else oxenstored; wait until it answers
    xs=$(command -v xenstored || command -v oxenstored) || { echo "no xenstored in dom0"; return 1; }
    "$xs" || return 1   # no --pid-file: it lockf()s it, and exits quietly if that fails
    # a read with no daemon behind it blocks forever (on /dev/xen/xenbus): bound
    # each read, and stop at once when the daemon is gone (e.g. no evtchn device)
    i=0; while [ $i -lt 40 ]; do
        # asked twice: once, right after it daemonized, pidof saw no xenstored in a
        # boot that passed when run again (a transient, not a dead daemon)
        pidof "${xs##*/}" >/dev/null || { sleep 0.2; pidof "${xs##*/}" >/dev/null; } ||
            { echo "${xs##*/} exited"; return 1; }
        timeout 1 xenstore-read / >/dev/null 2>&1 && return 0; sleep 0.2; i=$((i + 1))
    done
    timeout 3 xenstore-read /
}
toolstack=
if check xenstored xs_up; then   # without xenstored the rest would block on it
    check xen-init-dom0 xen-init-dom0
    check xenconsoled xenconsoled --log=guest --log-dir=/run/xencons
    check xl-list xl list && { relay xl-list /tmp/out.xl-list; toolstack=1; }
fi

secs() { read -r _u _ </proc/uptime; echo "${_u%.*}"; }

batch_find() {  # sets BATCH, BATCH_NONCE, BATCH_SIZE: the virtio disk whose first
    # line says "PVMBATCH NONCE SIZE" (pvmatrix/boot/snapshot.py), read past the page
    # cache: dom0 saw the disk all zeros before the harness wrote it (a snapshot)
    for _b in /sys/block/vd*; do
        [ -e "$_b" ] || continue
        read -r _m BATCH_NONCE BATCH_SIZE _ <<EOB
$(dd if="/dev/${_b##*/}" bs=4096 count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -n1)
EOB
        [ "$_m" = PVMBATCH ] && { BATCH=/dev/${_b##*/}; return 0; }
    done
    return 1
}

park() {  # PARK: Xen and dom0 are up, with no guest yet: the harness snapshots the
    # machine here (stage=parked) and restores it for each batch of guest kernels.
    # The batch (a cpio from 1 MiB into the disk: plan.env and the guests' files)
    # comes on the disk; then the plan is the batch's.
    modprobe -q -a virtio_pci virtio_blk 2>/dev/null
    say stage=parked
    until batch_find; do sleep 0.2; done
    stamp; _t0=$_t
    dd if="$BATCH" bs=1M skip=1 count=$(( (BATCH_SIZE + 1048575) / 1048576 )) iflag=direct 2>/dev/null |
        (cd / && busybox cpio -i -d -m -u 2>/tmp/out.batch); _rc=$?
    stamp
    [ -f /pvm/plan.env ] && . /pvm/plan.env
    if [ $_rc -eq 0 ] && [ "$NONCE" = "$BATCH_NONCE" ]; then
        say stage=batch nonce="$NONCE" disk="${BATCH#/dev/}" bytes="$BATCH_SIZE" ok=1 secs="$(took "$_t0")"
    else
        say stage=batch nonce="$BATCH_NONCE" disk="${BATCH#/dev/}" ok=0 rc=$_rc; relay batch /tmp/out.batch
        GUESTS=
    fi
}

hvm_cfg() {  # hvm_cfg NAME N LOOP: an HVM guest booting from its disk (LOOP), which
    # the harness made a PC's boot disk (pvmatrix/boot/bootdisk.py: SYSLINUX with the
    # kernel, initrd and command line). The disk is AHCI (hdtype): SeaBIOS reads it
    # by DMA, where QEMU's direct kernel boot (fw_cfg, a byte per port read) took
    # longer than 600 s under nested TCG.
    # Its console is the emulated serial port: an HVM console is QEMU's, not
    # xenconsoled's, so QEMU writes it where xenconsoled writes the others' logs.
    # Disk and an e1000 NIC are emulated; a PVHVM kernel binds its front-ends to
    # the same disk (blkback) and vif (QEMU unplugs the NIC; bookworm's 7.2 leaves
    # an AHCI disk, later QEMUs unplug it too). The NIC has no option ROM: SeaBIOS
    # running the e1000's iPXE ROM did not finish in 150 s under nested TCG (4.17).
    # SeaBIOS still shows its boot menu (-boot menu=off does not reach it) and at
    # times never goes on from "Press ESC for boot menu": xen.toml not_run.
    cat >/run/$1.cfg <<CFG
name = "$1"
uuid = "$(rd /proc/sys/kernel/random/uuid)"
type = "hvm"
device_model_version = "qemu-xen"
hdtype = "ahci"
boot = "c"
memory = $GUEST_MB
vcpus = 1
serial = "file:/run/xencons/guest-$1.log"
vnc = 0
sdl = 0
vga = "none"
disk = [ "format=raw,vdev=hda,access=w,script=/etc/xen/scripts/pvm-block,target=$3" ]
vif = [ "mac=00:16:3e:99:00:$(printf %02x "$2"),model=e1000,script=/etc/xen/scripts/pvm-vif" ]
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "preserve"
tsc_mode = "native"
device_model_args_hvm = [ "-global", "e1000.romfile=" ]
CFG
}

hvm_net() {  # hvm_net N VIF: dom0's address on a bridge holding the PV vif and
    # QEMU's tap (VIF-emu), so the guest answers over whichever NIC its kernel drives
    # (iproute2's ip: bridges and master are beyond busybox's)
    for _ip in /usr/sbin/ip /usr/bin/ip /sbin/ip /bin/ip; do [ -x "$_ip" ] && break; done
    br=pvmbr$1
    [ -e "/sys/class/net/$br" ] || "$_ip" link add name "$br" type bridge
    "$_ip" addr add "10.99.$1.1/24" dev "$br" 2>/dev/null; "$_ip" link set "$br" up
    for p in "$2" "$2-emu"; do
        [ -e "/sys/class/net/$p" ] && "$_ip" link set "$p" master "$br" && "$_ip" link set "$p" up
    done
    say hvm_net bridge="$br" ports="$(ls /sys/class/net/$br/brif 2>/dev/null | tr '\n' ',')"
}

pci_give() {  # pci_give NAME: the PCI device passed through to the guest (PCI_NAME in
    # plan.env, roles.toml passthrough): dom0's backend (PCIBACK_NAME) takes it over
    # with xl pci-assignable-add (unbinding dom0's own driver), and pcis is the
    # guest's pci=[...] line (xl then sets e820_host itself, xl_parse.c)
    eval "pci=\"\$PCI_$1\" back=\"\$PCIBACK_$1\""
    pcis=
    [ -n "$pci" ] || return 0
    modprobe -q "$back" 2>/dev/null
    xl_step "$1" assignable xl pci-assignable-add "$pci" || return 1
    pcis="pci = [ \"$pci\" ]"
}

guest_start() {  # guest_start NAME TYPE N
    g=$1; img=/run/disk-$1.img
    eval "dir=\"\${DIR_$g:-/pvm/guest}\""
    # an HVM guest's disk is its boot disk (the harness's), sector 1 free for the marker
    if [ "$2" = hvm ]; then cat "$dir/boot-$g.img" >"$img"
    else dd if=/dev/zero of="$img" bs=1024 count=1024 2>/dev/null; fi
    printf 'PVMDISK-%s-%s' "$1" "$NONCE" | dd of="$img" bs=512 seek=1 conv=notrunc 2>/dev/null
    loop=$(losetup -f) && losetup "$loop" "$img" || { say guest="$g" stage=disk ok=0; loop=/dev/null; }
    echo "$loop" >/run/$g.loop
    # the guest role's command line and lifecycle (roles.toml), its kernel's files
    eval "cmdline=\"\$CMDLINE_$g\" life=\"\$LIFE_$g\""
    steps=$(echo $life | tr ' ' ,); STEP=
    pci_give "$g" || return 1
    # each config names its uuid (the kernel's, no exec): xl's own (libuuid) took
    # 3 s of every xl create in dom0 under nested TCG
    if [ "$2" = hvm ]; then hvm_cfg "$g" "$3" "$loop"; else
    cat >/run/$g.cfg <<CFG
name = "$g"
uuid = "$(rd /proc/sys/kernel/random/uuid)"
type = "$2"
kernel = "$dir/kernel"
ramdisk = "$dir/initrd.gz"
extra = "$cmdline pvm.name=$g pvm.ip=10.99.$3.2 pvm.peer=10.99.$3.1${life:+ pvm.life=$LIFE_PORT pvm.steps=$steps}"
memory = $GUEST_MB
vcpus = 1
disk = [ "format=raw,vdev=xvda,access=w,script=/etc/xen/scripts/pvm-block,target=$loop" ]
vif = [ "mac=00:16:3e:99:00:$(printf %02x "$3"),script=/etc/xen/scripts/pvm-vif" ]
$pcis
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "preserve"
# RDTSC not trapped: fewer VM exits, each slow under TCG, and it is on VM exits
# (RDTSC, port I/O) that PVH guests sometimes triple-faulted under QEMU's
# nested SVM (tests/fixtures/boot/pvh-triple-fault.log; see run_guest).
tsc_mode = "native"
CFG
    fi
    read -r t0 _ </proc/uptime
    say guest="$g" stage=start
    if [ -n "$XL_DEBUG" ]; then   # timestamped verbose xl output, relayed (for debugging)
        { xl -vvv create /run/$g.cfg 2>&1; echo "rc=$?"; } | ts -s %.S >/tmp/out.$g
        relay "$g-debug" /tmp/out.$g; rc=0
    else
        xl create /run/$g.cfg >/tmp/out.$g 2>&1; rc=$?
    fi
    if [ $rc -ne 0 ]; then
        say guest="$g" stage=create ok=0 rc=$rc; relay "$g" /tmp/out.$g
        # an HVM guest's device model says why it did not start in its own log
        [ -f "/var/log/xen/qemu-dm-$g.log" ] && relay "$g" "/var/log/xen/qemu-dm-$g.log"
        return 1
    fi
    id=0   # the newest domain's vif (its domid is the highest): no xl exec
    for v in /sys/class/net/vif*.0; do d=${v##*/vif}; d=${d%.0}; [ "$d" -gt "$id" ] 2>/dev/null && id=$d; done
    vif=vif$id.0
    say guest="$g" stage=create ok=1 domid="$id"
    if [ "$2" = hvm ]; then hvm_net "$3" "$vif"
    else ip addr add "10.99.$3.1/24" dev "$vif" && ip link set "$vif" up; fi
    echo "$t0" >/run/$g.start
    secs >/run/$g.since
}

log_has() {  # log_has FILE TEXT: does a line of FILE contain TEXT (no exec)
    [ -f "$1" ] || return 1
    while IFS= read -r _l || [ -n "$_l" ]; do case "$_l" in *"$2"*) return 0 ;; esac; done <"$1"
    return 1
}

guest_logs() {  # guest_logs NAME: its console's logs in order. A saved or migrated
    # guest's old domain's log is set aside as .K at step K (log_aside), a migrated
    # one's first lines (its incoming name) as .Ki when step K+1 begins; then the
    # current domain's under its incoming name and under its own.
    _b=/run/xencons/guest-$1
    for _f in "$_b".log.[0-9]* "$_b--incoming.log" "$_b.log"; do [ -f "$_f" ] && echo "$_f"; done
}

logs_have() {  # logs_have NAME TEXT: does any of its console's logs hold TEXT
    for _g in $(guest_logs "$1"); do log_has "$_g" "$2" && return 0; done
    return 1
}

guest_state() {  # sets state: done, stopped (its lifecycle chain could not go on),
    # panicked, crashed, gone or running (the panic and xl checks only every few
    # rounds: slow)
    logs_have "$1" 'PVM stage=done' && { state=done; return; }
    # a chain stopped because its guest died in a step: panicked (retried) if it did
    if [ -f "/run/$1.stop" ]; then
        state=stopped; logs_have "$1" 'Kernel panic - not syncing' && state=panicked; return
    fi
    state=running
    [ $((round % 8)) -eq 7 ] || return
    # a kernel that panicked may spin instead of rebooting (panic=1 needs a timer)
    logs_have "$1" 'Kernel panic - not syncing' && { state=panicked; return; }
    line=$(xl list "$1" 2>/dev/null | tail -n +2)
    [ -z "$line" ] && { state=gone; return; }
    set -- $line
    case "$5" in *c*) state=crashed ;; esac
}

guest_finish() {  # guest_finish NAME STATE: relay its console, clean up
    log=/run/xencons/guest-$1.log; tag=$1
    # crashed, panicked or gone (a timeout is not retried): run_guest tries once more
    if [ -n "$RETRYABLE" ] && { [ "$2" = crashed ] || [ "$2" = panicked ] || [ "$2" = gone ] ||
            { [ "$2" != done ] && [ "$2" != timeout ] && ! logs_have "$1" 'PVM stage=init'; }; }; then
        tag="$1#1"; echo "$2" >/run/$1.retry
    fi
    # a saved or migrated guest's console: each domain's in turn (guest_logs)
    for f in $(guest_logs "$1"); do
        while IFS= read -r l || [ -n "$l" ]; do echo "PVMG $tag| $l"; done <"$f"
    done
    say guest="$1" stage=exit state="$2" start="$(rd /run/$1.start)"
    [ -f "$log" ] && mv "$log" "$log.old"
    rm -f "$log".[0-9]* "/run/xencons/guest-$1--incoming.log" "/run/$1.stop"
    # teardown (seconds of backend handshakes) overlaps whatever comes next
    loop=$(rd /run/$1.loop)
    { xl destroy "$1"; losetup -d "$loop"; } >/dev/null 2>&1 &
}

wait_guests() {  # wait_guests NAME...: until each is done, gone, crashed or late
    pending="$*"; round=0
    while [ -n "$pending" ]; do
        left=""; read -r now _ </proc/uptime; now=${now%.*}
        for g in $pending; do
            guest_state "$g"; read -r since </run/$g.since
            eval "dl=\"\${DEADLINE_$g:-$GUEST_DEADLINE}\""
            [ "$state" = running ] && [ $((now - since)) -gt "$dl" ] && state=timeout
            if [ "$state" = running ]; then left="$left $g"; else guest_finish "$g" "$state"; fi
        done
        pending=$left; round=$((round + 1))
        [ -n "$pending" ] && sleep 0.3
    done
}

# -- lifecycle (roles.toml `lifecycle`, LIFE_NAME in plan.env: its steps in
# order): once the guest says stage=ready step=STEP, save and restore it or
# migrate it to a local receiver, give its new vif (a new domid) dom0's
# address, and send the go-ahead it waits for; then the next step. Markers of
# a step name it (step=STEP, set by guest_life).

stamp() { read -r _t _ </proc/uptime; }   # sets _t: seconds since boot
took() { awk -v a="$1" -v b="$_t" 'BEGIN { printf "%.1f", b - a }'; }   # since $1, to $_t

xl_step() {  # xl_step NAME STAGE CMD...: run an xl step, timed; say ok (and the
    # lifecycle step it is part of, STEP), relay xl on failure
    _g=$1; _s=$2; shift 2
    stamp; _t0=$_t
    "$@" >/tmp/out.$_g 2>&1; _rc=$?
    stamp
    if [ $_rc -eq 0 ]; then say guest="$_g" stage="$_s" ${STEP:+step=$STEP} ok=1 secs="$(took "$_t0")"; return 0; fi
    say guest="$_g" stage="$_s" ${STEP:+step=$STEP} ok=0 rc=$_rc secs="$(took "$_t0")"; relay "$_g" /tmp/out.$_g
    return 1
}

log_aside() {  # log_aside NAME K: the old domain is gone after step K: its console
    # log is set aside (.K, see guest_logs), and xenconsoled (SIGHUP: reopen logs)
    # logs the new domain under its own name
    log=/run/xencons/guest-$1.log
    [ -f "$log" ] && mv "$log" "$log.$2"
}

life_save() {  # life_save NAME K: xl save to dom0's tmpfs, then xl restore
    xl_step "$1" save xl save "$1" "/tmp/$1.save" || return 1
    log_aside "$1" "$2"
    xl_step "$1" restore xl restore "/tmp/$1.save"; _rc=$?
    rm -f "/tmp/$1.save"
    return $_rc
}

life_migrate() {  # life_migrate NAME K: live migration to this host; an empty -s makes
    # xl run the host argument as the receiver's command (xl.1: migrate -s)
    xl_step "$1" migrate xl migrate -s "" "$1" "xl migrate-receive" || return 1
    log_aside "$1" "$2"
    pid=$(pidof xenconsoled) && kill -HUP $pid
}

life_go() {  # life_go NAME N: dom0's address on the domain's vif (new domid after a
    # step), then the go-ahead to the guest's port, retried while the vif comes up;
    # 1: no domain left, 2: the guest did not answer
    stamp; _t0=$_t
    id=$(xl domid "$1" 2>/dev/null) || { say guest="$1" stage=go step="$STEP" ok=0 why=no-domain; return 1; }
    vif=vif$id.0
    i=0; while [ ! -e "/sys/class/net/$vif" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
    ip addr add "10.99.$2.1/24" dev "$vif" 2>/dev/null; ip link set "$vif" up 2>/dev/null
    ok=0; i=0; end=$(($(secs) + 20))
    while [ "$(secs)" -le $end ]; do
        i=$((i + 1))
        # bounded: a guest that dies once connected leaves nc in TCP retransmits (15 min)
        if echo go | timeout 4 nc -w 2 "10.99.$2.2" "$LIFE_PORT" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.5
    done
    stamp
    say guest="$1" stage=go step="$STEP" ok=$ok domid="$id" vif="$vif" tries=$i secs="$(took "$_t0")"
    [ $ok = 1 ] || return 2
}

guest_life() {  # guest_life NAME N: the guest's lifecycle steps (LIFE_NAME), one
    # chain: each once the guest says it is ready for it. A failed step whose guest
    # still runs and answers goes on to the next; a guest gone or not answering
    # ends the chain (its later steps never begin: their cells are blocked), one
    # not answering is then stopped rather than waited for.
    eval "life=\"\$LIFE_$1\" dl=\"\${DEADLINE_$1:-$GUEST_DEADLINE}\""
    k=0; read -r since </run/$1.since
    for STEP in $life; do
        k=$((k + 1)); round=0
        until logs_have "$1" "PVM stage=ready step=$STEP"; do   # or it died, or its time is up
            guest_state "$1"; [ "$state" = running ] || { STEP=; return 0; }
            [ $(($(secs) - since)) -gt "$dl" ] && { STEP=; return 0; }
            round=$((round + 1)); sleep 0.3
        done
        # a migrated domain's first lines (its incoming name) stay before the next step's
        inc=/run/xencons/guest-$1--incoming.log
        [ -f "$inc" ] && mv "$inc" "/run/xencons/guest-$1.log.$((k - 1))i"
        say guest="$1" stage=begin step="$STEP"
        case "$STEP" in
            save) life_save "$1" "$k" ;;
            migrate) life_migrate "$1" "$k" ;;
            *) say guest="$1" stage="$STEP" step="$STEP" ok=0 why=unknown-lifecycle ;;
        esac
        life_go "$1" "$2"; rc=$?   # after a failed step too: a guest still running goes on
        [ $rc -eq 2 ] && echo unreachable >/run/$1.stop
        [ $rc -eq 0 ] || break
    done
    STEP=
}

run_guest() {  # run_guest NAME TYPE N: start and wait; once more if it crashed
    # (a PVH guest sometimes triple-faults on a VM exit under QEMU's nested SVM,
    # or double-faults on its first interrupt after a migration under TCG;
    # the first attempt's console is relayed as NAME#1, Xen's dump stays in the log)
    RETRYABLE=${RETRIES:-0}; [ "$RETRYABLE" = 0 ] && RETRYABLE=
    guest_start "$1" "$2" "$3" && { guest_life "$1" "$3"; wait_guests "$1"; }
    if [ -f "/run/$1.retry" ]; then
        say guest="$1" stage=retry after="$(rd /run/$1.retry)"
        wait   # the first attempt's teardown: its name is taken until it is gone
        RETRYABLE=
        guest_start "$1" "$2" "$3" && { guest_life "$1" "$3"; wait_guests "$1"; }
    fi
}

[ -n "$PARK" ] && [ -n "$toolstack" ] && park
if [ -n "$GUESTS" ] && [ -n "$toolstack" ]; then
    started=""
    for spec in $GUESTS; do
        IFS=: read -r g t n <<EOS
$spec
EOS
        if [ "$PARALLEL" = 1 ]; then guest_start "$g" "$t" "$n" && started="$started $g:$n"
        else run_guest "$g" "$t" "$n"; fi
    done
    names=""
    for gn in $started; do guest_life "${gn%:*}" "${gn#*:}"; names="$names ${gn%:*}"; done
    [ -n "$names" ] && wait_guests $names
fi
pvm_off
