#!/bin/busybox sh
# pvmatrix domU probe init (busybox): the console, the disk dom0 wrote, a ping
# to dom0; each with the driver it went through (PV front-ends, or an HVM
# guest's emulated devices).
# With pvm.life=PORT and pvm.steps=save,migrate (lifecycle roles riding on this
# guest: dom0 saves/restores it, then migrates it), a running system is then
# kept for dom0 to act on, step after step (see life below).
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
. /pvm/lib.sh
pvm_mounts
for w in $(cat /proc/cmdline); do
    case "$w" in pvm.name=*) NAME=${w#*=} ;; pvm.ip=*) IP=${w#*=} ;; pvm.peer=*) PEER=${w#*=} ;;
        pvm.life=*) LIFE=${w#*=} ;; pvm.steps=*) STEPS=${w#*=} ;; pvm.pt=*) PT=${w#*=} ;;
        console=*) CON=${w#*=}; CON=${CON%%,*} ;; esac
done
say stage=init role=guest name="$NAME" kernel="$(uname -r)"
read -r con </sys/class/tty/console/active
con=$(echo ${con:-none} | tr ' ' ',')
# the console the role asked for (its last console=): hvc0 for PV and PVH, ttyS0 for HVM
case "$con" in *"${CON:-hvc}"*) say probe=console dev="$con" ok=1 ;; *) say probe=console dev="$con" ok=0 ;; esac
# the role's modules (roles.toml), listed by the harness
[ -d /lib/modules ] && [ -s /pvm/modules ] && modprobe -q -a $(cat /pvm/modules) 2>/dev/null

disk() {  # disk [when=...]: sector 1 of the disk (xvda, or sda/hda emulated), read past
    # the page cache (a re-read after a restore must reach the disk), plainly if
    # O_DIRECT is refused; with the driver that serves it
    n=$(pvm_disk_name) || n=none
    dv=$(pvm_driver_of "$PVM_SYS/block/$n/device")
    d=1; data=$(dd if=/dev/$n bs=512 skip=1 count=1 iflag=direct 2>/dev/null | tr -dc 'A-Za-z0-9_.-' | cut -c1-48)
    [ -n "$data" ] || { d=0; data=$(dd if=/dev/$n bs=512 skip=1 count=1 2>/dev/null | tr -dc 'A-Za-z0-9_.-' | cut -c1-48); }
    case "$data" in PVMDISK-*) ok=1 ;; *) ok=0 ;; esac
    say probe=disk "$@" dev=$n driver="${dv% *}" bus="${dv#* }" ok=$ok direct=$d data="${data:-none}"
}

net() {  # net [when=...]: ping dom0 over the vif
    ok=0; i=0
    while [ -e /sys/class/net/eth0 ] && [ $i -lt 20 ]; do
        if ping -c 1 -W 1 "$PEER" >/dev/null 2>&1; then ok=1; break; fi
        i=$((i + 1))
    done
    dv=$(pvm_driver_of "$PVM_SYS/class/net/eth0/device")
    say probe=net "$@" dev=eth0 driver="${dv% *}" bus="${dv#* }" ok=$ok peer="$PEER" tries=$i
}

passthrough() {  # pvm.pt=1: the PCI device dom0 passed through (pcifront): its driver
    # is loaded by modalias as udev would, only now (so eth0 stayed the vif), then
    # dom0's own hardware probes (driver, link, and a frame out of it carrying
    # pvm.nonce, which the harness finds in QEMU's dump of that NIC)
    i=0; while ! ls /sys/bus/pci/devices/* >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    say probe=passthrough devices="$(ls /sys/bus/pci/devices 2>/dev/null | tr '\n' ',')"
    pvm_coldplug
    pvm_pci
    pvm_netif
}

ticker() {  # count every second (the proof of continuity), each round rewriting
    # 4 MB of tmpfs so a live migration has dirty pages to send again
    n=0
    while :; do
        n=$((n + 1)); echo "$n" >/tmp/tick.new && mv /tmp/tick.new /tmp/tick
        say tick=$n
        dd if=/dev/zero of=/tmp/dirt bs=65536 count=64 conv=notrunc 2>/dev/null
        sleep 1
    done
}

life() {  # a running system for dom0 to save/restore or migrate, each step of
    # pvm.steps in turn, and after each its proof (the markers name the step)
    read -r boot </proc/sys/kernel/random/boot_id
    ticker &
    tick=$!
    i=0; while [ ! -s /tmp/tick ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    for step in $(echo "$STEPS" | tr , ' '); do
        # dom0 connects once the guest runs again: its go-ahead also proves the network
        rm -f /tmp/go
        nc -l -p "$LIFE" </dev/null >/tmp/go 2>&1 &
        go=$!
        say stage=ready step="$step" boot_id="$boot" n="$(rd /tmp/tick)" port="$LIFE"
        wait $go
        disk when=resumed step="$step"
        net when=resumed step="$step"
        read -r now </proc/sys/kernel/random/boot_id
        say stage=resumed step="$step" boot_id="$now" n="$(rd /tmp/tick)" go="$(rd /tmp/go)"
    done
    kill $tick
}

# (an emulated disk shows up once libata has scanned its port: asynchronous)
i=0; while ! pvm_disk_name >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
disk

i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    ip addr add "$IP/24" dev eth0
fi
net
[ -n "$PT" ] && passthrough
[ -n "$LIFE" ] && life
pvm_off
