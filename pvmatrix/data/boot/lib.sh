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
    pvm_usb_wait 60
    _a=$(modaliases /sys/bus/*/devices/*/modalias)
    [ -n "$_a" ] && modprobe -q -a $_a 2>/dev/null
    [ -f /proc/modules ] && while read -r name _; do say probe=module name="$name"; done </proc/modules
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
    for u in /sys/bus/usb/drivers/usb-storage/*:*; do
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

storage_pending() {  # is a bound storage controller (class 01) still without a disk under
    # it? SAS controllers (mptsas) find their disks by an asynchronous discovery,
    # after the first controller's disk is long there. One exec per call: the
    # links' targets name the PCI function of each disk
    _disks=$(ls -l /sys/block/ 2>/dev/null)
    for d in /sys/bus/pci/devices/*; do
        read -r c <"$d/class"
        case "$c" in 0x01*) [ -e "$d/driver" ] || continue
            case "$_disks" in *"/${d##*/}/"*) ;; *) return 0 ;; esac ;;
        esac
    done
    return 1
}

uptime_s() { read -r _u _ </proc/uptime; echo "${_u%.*}"; }

pvm_block() {  # every disk: where it hangs, and what sector 1 holds (waiting SECONDS
    # at most for disks still being scanned: scans are asynchronous)
    _end=$(( $(uptime_s) + ${1:-2} ))
    while { storage_pending || usb_disks_pending; } && [ "$(uptime_s)" -lt "$_end" ]; do
        sleep 0.1
    done
    for b in /sys/block/*; do
        n=${b##*/}
        case "$n" in loop*|ram*|zram*|\*) continue ;; esac
        data=$(dd if="/dev/$n" bs=512 skip=1 count=1 2>/dev/null | tr -dc 'A-Za-z0-9_.-' | cut -c1-48)
        say probe=block dev="$n" pci="$(pvm_pci_of "$b/device")" sectors="$(rd "$b/size")" data="${data:-none}"
    done
}

pvm_nonce() {  # the boot's nonce: dom0's plan.env, else the command line (pvm.nonce=)
    [ -n "$NONCE" ] && { echo "$NONCE"; return; }
    for _w in $(cat /proc/cmdline); do case "$_w" in pvm.nonce=*) echo "${_w#pvm.nonce=}" ;; esac; done
}

nics() {  # the network interfaces the probes look at
    for n in /sys/class/net/*; do i=${n##*/}; case "$i" in lo|sit*|\*) ;; *) echo "$i" ;; esac; done
}

pvm_netif() {  # every network interface: its driver, PCI device, link (carrier within
    # TRIES x 0.1 s of going up), and one frame sent out of it: a DHCP discover
    # whose hostname option is "PVMNET-<nonce>" (the harness finds it in QEMU's
    # dump of that NIC; the NIC's hub has no other port, so no reply comes)
    _ifs=$(nics); _tok="PVMNET-$(pvm_nonce)"
    for i in $_ifs; do ip link set "$i" up 2>/dev/null; done
    for i in $_ifs; do
        _t=0; while [ "$(rd "/sys/class/net/$i/carrier")" != 1 ] && [ $_t -lt "${1:-30}" ]; do
            sleep 0.1; _t=$((_t + 1)); done
        [ "$(rd "/sys/class/net/$i/carrier")" = 1 ] &&
            busybox udhcpc -i "$i" -n -q -t 1 -T 1 -s /bin/true -x "hostname:$_tok" >/dev/null 2>&1 &
    done
    wait
    for i in $_ifs; do
        n=/sys/class/net/$i
        say probe=netif dev="$i" pci="$(pvm_pci_of "$n/device")" driver="$(link_name "$n/device/driver")" \
            mac="$(rd "$n/address")" link="$(rd "$n/carrier")"
    done
}

pvm_hardware() {
    pvm_coldplug
    pvm_pci
    pvm_block 4
    pvm_netif
}

pvm_off() {
    say stage=done
    sync
    poweroff -f 2>/dev/null || busybox poweroff -f
    sleep 10
}
