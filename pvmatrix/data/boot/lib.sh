# Shared probe functions for the pvmatrix inits (POSIX sh: busybox ash or dash).
# Every fact is one line "PVM key=value ..." on the console; command output
# worth keeping as evidence is relayed as "PVMOUT tag| line".

say() { echo "PVM $* up=$(cut -d' ' -f1 /proc/uptime)"; }

relay() {  # relay TAG FILE: copy FILE's lines to the console, tagged
    [ -f "$2" ] && sed -e 's/\r$//' -e "s/^/PVMOUT $1| /" "$2"
}

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

pvm_coldplug() {  # load the module of every PCI device's modalias, like udev would
    for f in /sys/bus/pci/devices/*/modalias; do
        [ -f "$f" ] || continue
        modprobe -q "$(cat "$f")" 2>/dev/null
    done
    [ -f /proc/modules ] && while read -r name _; do say probe=module name="$name"; done </proc/modules
}

pvm_pci() {  # which driver bound to which PCI device
    for d in /sys/bus/pci/devices/*; do
        [ -d "$d" ] || continue
        drv=none
        [ -e "$d/driver" ] && drv=$(basename "$(readlink -f "$d/driver")")
        say probe=pci dev="$(basename "$d")" id="$(sed 's/^0x//' "$d/vendor"):$(sed 's/^0x//' "$d/device")" \
            class="$(cat "$d/class")" driver="$drv"
    done
}

pvm_pci_of() {  # PCI address of a sysfs device path, or none
    p=$(readlink -f "$1" 2>/dev/null)
    echo "$p" | tr '/' '\n' | grep -E '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]$' | tail -n1 | grep . || echo none
}

pvm_storage_bound() {  # is a driver bound to some mass storage controller (class 01)?
    for d in /sys/bus/pci/devices/*; do
        case "$(cat "$d/class" 2>/dev/null)" in 0x01*) [ -e "$d/driver" ] && return 0 ;; esac
    done
    return 1
}

pvm_block() {  # every disk: where it hangs, and what sector 1 holds
    i=0
    while pvm_storage_bound && [ $i -lt "${1:-20}" ]; do   # disk scans are asynchronous
        ls /sys/block | grep -qvE '^(loop|ram|zram)' && break
        sleep 0.1; i=$((i + 1))
    done
    for b in /sys/block/*; do
        n=$(basename "$b")
        case "$n" in loop*|ram*|zram*) continue ;; esac
        data=$(dd if="/dev/$n" bs=512 skip=1 count=1 2>/dev/null | tr -dc 'A-Za-z0-9_.-' | cut -c1-48)
        say probe=block dev="$n" pci="$(pvm_pci_of "$b/device")" sectors="$(cat "$b/size")" data="${data:-none}"
    done
}

pvm_netif() {  # every network interface: its driver, PCI device and link
    for n in /sys/class/net/*; do
        i=$(basename "$n")
        [ "$i" = lo ] && continue
        drv=none
        [ -e "$n/device/driver" ] && drv=$(basename "$(readlink -f "$n/device/driver")")
        ip link set "$i" up 2>/dev/null
        say probe=netif dev="$i" pci="$(pvm_pci_of "$n/device")" driver="$drv" \
            mac="$(cat "$n/address")"
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
