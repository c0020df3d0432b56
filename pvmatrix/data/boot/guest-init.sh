#!/bin/busybox sh
# pvmatrix domU probe init (busybox): PV console, blkfront disk, netfront ping.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
. /pvm/lib.sh
pvm_mounts
for w in $(cat /proc/cmdline); do
    case "$w" in pvm.name=*) NAME=${w#*=} ;; pvm.ip=*) IP=${w#*=} ;; pvm.peer=*) PEER=${w#*=} ;; esac
done
say stage=init role=guest name="$NAME" kernel="$(uname -r)"
read -r con </sys/class/tty/console/active
con=$(echo ${con:-none} | tr ' ' ',')
case "$con" in *hvc*) say probe=console dev="$con" ok=1 ;; *) say probe=console dev="$con" ok=0 ;; esac
# the role's modules (roles.toml), listed by the harness
[ -d /lib/modules ] && [ -s /pvm/modules ] && modprobe -q -a $(cat /pvm/modules) 2>/dev/null

i=0; while [ ! -e /sys/block/xvda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
data=$(dd if=/dev/xvda bs=512 skip=1 count=1 2>/dev/null | tr -dc 'A-Za-z0-9_.-' | cut -c1-48)
case "$data" in PVMDISK-*) ok=1 ;; *) ok=0 ;; esac
say probe=disk dev=xvda ok=$ok data="${data:-none}"

i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
ok=0
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    ip addr add "$IP/24" dev eth0
    i=0
    while [ $i -lt 20 ]; do
        if ping -c 1 -W 1 "$PEER" >/dev/null 2>&1; then ok=1; break; fi
        i=$((i + 1))
    done
fi
say probe=net dev=eth0 ok=$ok peer="$PEER" tries=$i
pvm_off
