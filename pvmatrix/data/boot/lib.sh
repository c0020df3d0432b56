# Shared probe functions for the pvmatrix inits (busybox ash or dash).
# Every fact is one line "PVM key=value ..." on the console; command output
# worth keeping as evidence is relayed as "PVMOUT tag| line".
# Under TCG, and more so in a PV dom0, every exec costs: files are read with
# the shell's own `read`, names cut with parameter expansion.

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

pvm_coldplug() {  # load modules by modalias, like udev would: PCI first, then what appeared
    # one modprobe per round (most aliases match nothing): each run parses the indexes
    _a=$(modaliases /sys/bus/pci/devices/*/modalias)
    [ -n "$_a" ] && modprobe -q -a $_a 2>/dev/null
    i=0   # storage drivers scan their buses asynchronously: let SCSI/ATA devices show up
    while pvm_storage_bound && ! ls /sys/bus/scsi/devices 2>/dev/null | grep -q '^[0-9]*:[0-9]*:' &&
            ! has_disk && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    _a=$(modaliases /sys/bus/*/devices/*/modalias)
    [ -n "$_a" ] && modprobe -q -a $_a 2>/dev/null
    [ -f /proc/modules ] && while read -r name _; do say probe=module name="$name"; done </proc/modules
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

# sysfs, for the functions below that take it from here (a test points it at a copy)
: "${PVM_SYS:=/sys}"

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

pvm_block() {  # every disk: where it hangs, and what sector 1 holds
    i=0
    while pvm_storage_bound && ! has_disk && [ $i -lt "${1:-20}" ]; do   # disk scans are asynchronous
        sleep 0.1; i=$((i + 1))
    done
    for b in /sys/block/*; do
        n=${b##*/}
        case "$n" in loop*|ram*|zram*|\*) continue ;; esac
        data=$(dd if="/dev/$n" bs=512 skip=1 count=1 2>/dev/null | tr -dc 'A-Za-z0-9_.-' | cut -c1-48)
        say probe=block dev="$n" pci="$(pvm_pci_of "$b/device")" sectors="$(rd "$b/size")" data="${data:-none}"
    done
}

pvm_netif() {  # every network interface: its driver, PCI device and link
    for n in /sys/class/net/*; do
        i=${n##*/}
        case "$i" in lo|sit*|\*) continue ;; esac
        ip link set "$i" up 2>/dev/null
        say probe=netif dev="$i" pci="$(pvm_pci_of "$n/device")" driver="$(link_name "$n/device/driver")" \
            mac="$(rd "$n/address")"
    done
}

pvm_hardware() {
    pvm_coldplug
    pvm_pci
    pvm_block 30
    pvm_netif
}

pvm_off() {
    say stage=done
    sync
    poweroff -f 2>/dev/null || busybox poweroff -f
    sleep 10
}
