# Shared probe functions for the pvmatrix inits (busybox ash or dash).
# Every fact is one line "PVM key=value ..." on the console; command output
# worth keeping as evidence is relayed as "PVMOUT tag| line".
# Under TCG, and more so in a PV dom0, every exec costs: files are read with
# the shell's own `read`, names cut with parameter expansion.

# sysfs, for the functions that take it from here (a test points it at a copy)
: "${PVM_SYS:=/sys}"

say() { read -r _up _ </proc/uptime; echo "PVM $* up=$_up"; }

relay() {  # relay TAG FILE: copy FILE's lines to the console, tagged
    [ -f "$2" ] && while IFS= read -r _l || [ -n "$_l" ]; do echo "PVMOUT $1| $_l"; done <"$2"
}

rd() { _v=; read -r _v <"$1" 2>/dev/null; echo "$_v"; }   # rd FILE: its first line

pvm_mounts() {
    mkdir -p /proc /sys /dev /run /tmp
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev 2>/dev/null
    mkdir -p /dev/pts /dev/shm
    mount -t devpts devpts /dev/pts
    mount -t tmpfs tmpfs /run
    mount -t tmpfs tmpfs /tmp
}

modaliases() { _a=; for f in "$@"; do [ -f "$f" ] && read -r _m <"$f" && _a="$_a $_m"; done; echo "$_a"; }

pvm_modprobe() {  # pvm_modprobe MODALIAS...: load what each names, as udev would. With
    # PVM_MODPROBE=each (the init made the indexes for the shipped modules only, so
    # a modprobe starts cheaply): one modprobe per device, all at once, so one
    # driver's waits (a SCSI bus's 3 s settle delay, an IOC's bring-up, a USB
    # port's reset) overlap the others' loads instead of adding up; each still loads
    # all its alias's matches in order. Else one for all: busybox's modprobe parses
    # the text indexes at every start, a whole tree's costs under TCG
    [ $# -gt 0 ] || return 0
    if [ "$PVM_MODPROBE" = each ]; then
        _pids=
        for _m in "$@"; do modprobe -q "$_m" 2>/dev/null & _pids="$_pids $!"; done
        wait $_pids
    else
        modprobe -q -a "$@" 2>/dev/null
    fi
}

pvm_depmod() {  # index the modules shipped, unless the tree was indexed when built
    # (binary indexes: kbuild's depmod). A kernel package's tree has only its whole
    # tree's text indexes, which busybox's modprobe (the inits' shell runs its own
    # applets, not kmod) would parse at every start; busybox depmod's cover just the
    # modules shipped: each device then gets a modprobe of its own (PVM_MODPROBE=each)
    _r=/lib/modules/$(uname -r)
    [ -d "$_r" ] && [ ! -e "$_r/modules.dep.bin" ] && depmod -a 2>/dev/null && PVM_MODPROBE=each
}

pvm_coldplug_pci() {  # load modules by the PCI devices' modaliases; every PCI driver
    # has bound (or not) when it returns: a driver probes within its modprobe
    pvm_modprobe $(modaliases /sys/bus/pci/devices/*/modalias)
    say probe=coldplug round=pci
}

pvm_coldplug_found() {  # then by what the drivers found (disks, USB devices), like udev
    i=0   # storage drivers scan their buses asynchronously: let SCSI/ATA devices show up
    while pvm_storage_bound && ! ls /sys/bus/scsi/devices 2>/dev/null | grep -q '^[0-9]*:[0-9]*:' &&
            ! has_disk && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    pvm_usb_wait 60
    # one modprobe for these (most aliases match nothing): each run parses the indexes
    _a=$(modaliases /sys/bus/*/devices/*/modalias)
    [ -n "$_a" ] && modprobe -q -a $_a 2>/dev/null
    say probe=coldplug round=found
    [ -f /proc/modules ] && while read -r name _; do say probe=module name="$name"; done </proc/modules
}

pvm_coldplug() {  # load modules by modalias, like udev would: PCI first, then what appeared
    pvm_coldplug_pci
    pvm_coldplug_found
}

usb_hosts() {  # how many USB host controllers (class 0c03) have a driver bound
    _h=0
    for d in /sys/bus/pci/devices/*; do
        read -r c <"$d/class"
        case "$c" in 0x0c03*) [ -e "$d/driver" ] && _h=$((_h + 1)) ;; esac
    done
    echo "$_h"
}

usb_devices() {  # devices on root-hub ports (1-1, 3-2.1, ...), interfaces (1-1:1.0) left out
    _n=0
    for u in /sys/bus/usb/devices/[0-9]*-*; do case "${u##*/}" in *:*|\*) ;; *) _n=$((_n + 1)) ;; esac; done
    echo "$_n"
}

pvm_usb_wait() {  # let each bound USB host's device enumerate (TRIES x 0.1 s at most);
    # usb-storage then scans at once instead of after its default 1 s delay
    _want=$(usb_hosts); [ "$_want" -gt 0 ] || return 0
    i=0; while [ "$(usb_devices)" -lt "$_want" ] && [ $i -lt "$1" ]; do sleep 0.1; i=$((i + 1)); done
    modprobe -q usb-storage delay_use=0 2>/dev/null
    [ -w /sys/module/usb_storage/parameters/delay_use ] && echo 0 >/sys/module/usb_storage/parameters/delay_use
}

usb_disks_pending() {  # is a usb-storage interface still without its disk?
    for u in "$PVM_SYS"/bus/usb/drivers/usb-storage/*:*; do
        [ -e "$u" ] || continue
        ls -d "$u"/host*/target*/*/block/* >/dev/null 2>&1 || return 0
    done
    return 1
}

link_name() {  # link_name LINK: last component of a symlink's target, or none
    if [ -L "$1" ]; then _t=$(readlink "$1"); echo "${_t##*/}"; else echo none; fi
}

pvm_pci() {  # which driver bound to which PCI device
    for d in /sys/bus/pci/devices/*; do
        [ -d "$d" ] || continue
        read -r v <"$d/vendor"; read -r p <"$d/device"; read -r c <"$d/class"
        say probe=pci dev="${d##*/}" id="${v#0x}:${p#0x}" class="$c" driver="$(link_name "$d/driver")"
    done
}

pvm_pci_of() {  # PCI address of a sysfs device path (from its resolved path), or none
    _p=$(readlink -f "$1" 2>/dev/null); _r=none
    IFS=/; for _c in $_p; do
        case "$_c" in [0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7]) _r=$_c ;; esac
    done; unset IFS
    echo "$_r"
}

pvm_disk_name() {  # a guest's probe disk by whatever name its driver gave it: xvda
    # (xen-blkfront), sda (libata: ata_piix / ahci), hda (the old IDE driver), vda
    for _n in xvda sda hda vda; do [ -e "$PVM_SYS/block/$_n" ] && { echo "$_n"; return 0; }; done
    return 1
}

pvm_driver_of() {  # pvm_driver_of SYSDEV: "DRIVER BUS" for a disk's or a NIC's device: the
    # PCI function's driver when it hangs off PCI (ata_piix for sda, e1000 for eth0),
    # else its own driver and bus (xen-blkfront is "vbd", xen-netfront "vif", on xen)
    _a=$(pvm_pci_of "$1")
    if [ "$_a" != none ]; then echo "$(link_name "$PVM_SYS/bus/pci/devices/$_a/driver") pci"
    else echo "$(link_name "$1/driver") $(link_name "$1/subsystem")"; fi
}

pvm_storage_bound() {  # is a driver bound to some mass storage controller (class 01)?
    for d in /sys/bus/pci/devices/*; do
        read -r c <"$d/class"
        case "$c" in 0x01*) [ -e "$d/driver" ] && return 0 ;; esac
    done
    return 1
}

has_disk() {
    for b in /sys/block/*; do case "${b##*/}" in loop*|ram*|zram*|\*) ;; *) return 0 ;; esac; done
    return 1
}

storage_pending() {  # is a bound storage controller (class 01) still without a disk under
    # it? SAS controllers (mptsas) find their disks by an asynchronous discovery,
    # after the first controller's disk is long there. One exec per call: the
    # links' targets name the PCI function of each disk
    _disks=$(ls -l "$PVM_SYS"/block/ 2>/dev/null)
    for d in "$PVM_SYS"/bus/pci/devices/*; do
        read -r c <"$d/class"
        case "$c" in 0x01*) [ -e "$d/driver" ] || continue
            case "$_disks" in *"/${d##*/}/"*) ;; *) return 0 ;; esac ;;
        esac
    done
    return 1
}

now_cs() { read -r _u _ </proc/uptime; _cs=$(( ${_u%.*} * 100 + 1${_u#*.} - 100 )); }  # sets _cs: uptime in 1/100 s

pvm_disk_wait() {  # pvm_disk_wait SECONDS [SINCE]: while a bound controller still has no
    # disk, until SECONDS after SINCE (uptime in 1/100 s, e.g. when the controllers
    # bound; default: now): scans are asynchronous, SAS discovery and USB enumeration late
    now_cs; _end=$(( ${2:-$_cs} + ${1:-2} * 100 ))
    while { storage_pending || usb_disks_pending; } && now_cs && [ "$_cs" -lt "$_end" ]; do
        sleep 0.1
    done
}

block_read() {  # each disk not read yet (not in $_read): where it hangs, what sector 1 holds
    for b in "$PVM_SYS"/block/*; do
        n=${b##*/}
        case "$n" in loop*|ram*|zram*|\*) continue ;; esac
        case "$_read" in *" $n "*) continue ;; esac
        _read="$_read $n "
        data=$(dd if="/dev/$n" bs=512 skip=1 count=1 2>/dev/null | tr -dc 'A-Za-z0-9_.-' | cut -c1-48)
        say probe=block dev="$n" pci="$(pvm_pci_of "$b/device")" sectors="$(rd "$b/size")" data="${data:-none}"
    done
}

pvm_block() {  # every disk: where it hangs, and what sector 1 holds; the disks there
    # are read at once, those still being scanned once they come (waiting as
    # pvm_disk_wait SECONDS [SINCE] does)
    _read=" "
    block_read
    pvm_disk_wait "$@"
    block_read
}

pvm_nonce() {  # the boot's nonce: dom0's plan.env, else the command line (pvm.nonce=)
    [ -n "$NONCE" ] && { echo "$NONCE"; return; }
    for _w in $(cat /proc/cmdline); do case "$_w" in pvm.nonce=*) echo "${_w#pvm.nonce=}" ;; esac; done
}

nics() {  # the network interfaces the probes look at
    for n in "$PVM_SYS"/class/net/*; do i=${n##*/}; case "$i" in lo|sit*|\*) ;; *) echo "$i" ;; esac; done
}

net_send() {  # net_send TRIES TOKEN IFACE...: once an interface's carrier is up (within
    # TRIES x 0.1 s of going up), one frame out of it: a DHCP discover whose hostname
    # option is TOKEN (the harness finds it in QEMU's dump of that NIC; the NIC's hub
    # has no other port, so no reply comes: -T 0 sends the one discover and gives up
    # at once; busybox 1.35 measured: one frame out, exit in 0.06 s where -T 1 took
    # 1.06 s). Every interface is waited for at once.
    _tries=$1 _tok=$2; shift 2
    _left="$*" _t=0 _pids=
    while [ -n "$_left" ]; do
        _next=
        for i in $_left; do
            _c=; read -r _c <"$PVM_SYS/class/net/$i/carrier" 2>/dev/null
            if [ "$_c" = 1 ]; then
                busybox udhcpc -i "$i" -n -q -t 1 -T 0 -s /bin/true -x "hostname:$_tok" >/dev/null 2>&1 &
                _pids="$_pids $!"
            else _next="$_next $i"; fi
        done
        _left=$_next
        [ -n "$_left" ] && [ $_t -lt "$_tries" ] || break
        sleep 0.1; _t=$((_t + 1))
    done
    [ -z "$_pids" ] || wait $_pids
}

pvm_net_start() {  # pvm_net_start [TRIES]: every network interface up, and its frame sent
    # in the background (net_send), while the other probes run: links negotiate for
    # seconds (e1000e's watchdog). pvm_net_report waits for it.
    PVM_IFS=
    for i in $(nics); do PVM_IFS="$PVM_IFS $i"; ip link set "$i" up 2>/dev/null; done
    net_send "${1:-30}" "PVMNET-$(pvm_nonce)" $PVM_IFS &
    PVM_NET_JOB=$!
}

pvm_net_report() {  # pvm_net_report [TRIES]: after pvm_net_start's frames (and those of an
    # interface that appeared since), every interface: its driver, PCI device, link
    [ -z "$PVM_NET_JOB" ] || wait "$PVM_NET_JOB"
    _late=
    for i in $(nics); do case " $PVM_IFS " in *" $i "*) ;; *) _late="$_late $i" ;; esac; done
    if [ -n "$_late" ]; then
        for i in $_late; do ip link set "$i" up 2>/dev/null; done
        net_send "${1:-30}" "PVMNET-$(pvm_nonce)" $_late
    fi
    for i in $(nics); do
        n=$PVM_SYS/class/net/$i
        say probe=netif dev="$i" pci="$(pvm_pci_of "$n/device")" driver="$(link_name "$n/device/driver")" \
            mac="$(rd "$n/address")" link="$(rd "$n/carrier")"
    done
}

pvm_netif() {  # pvm_netif [TRIES]: every network interface up, its frame out, its facts
    pvm_net_start "$@"
    pvm_net_report "$@"
}

pvm_hardware() {  # NICs go up as soon as their drivers bound: their links negotiate
    # and their frames leave while the disks are waited for and read
    pvm_coldplug_pci
    now_cs; _bound=$_cs
    pvm_net_start
    pvm_coldplug_found
    pvm_pci
    pvm_block 4 "$_bound"
    pvm_net_report
}

pvm_off() {
    say stage=done
    sync
    poweroff -f 2>/dev/null || busybox poweroff -f
    sleep 10
}
