#!/bin/sh
# Reruns cell bullseye/domU-pv/xen-4.17/default of run 20261127-205401-f043 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
exec pvmatrix rerun /work/main/results/20261127-205401-f043 bullseye/domU-pv/xen-4.17/default "$@"
