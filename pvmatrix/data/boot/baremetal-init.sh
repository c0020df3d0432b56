#!/bin/busybox sh
# pvmatrix bare-metal probe init (busybox): hardware probes, then power off.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
. /pvm/lib.sh
pvm_mounts
say stage=init role=baremetal kernel="$(uname -r)"
pvm_hardware
pvm_off
