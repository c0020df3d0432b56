#!/bin/sh
# Reruns cell debian-6.1-xen-min/dom0/xen-4.17/default of run 20261127-185413-cd15 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
exec pvmatrix rerun /work/main/results/20261127-185413-cd15 debian-6.1-xen-min/dom0/xen-4.17/default "$@"
