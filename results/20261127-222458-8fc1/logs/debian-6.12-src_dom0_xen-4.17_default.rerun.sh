#!/bin/sh
# Reruns cell debian-6.12-src/dom0/xen-4.17/default of run 20261127-222458-8fc1 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
exec pvmatrix rerun /work/main/results/20261127-222458-8fc1 debian-6.12-src/dom0/xen-4.17/default "$@"
