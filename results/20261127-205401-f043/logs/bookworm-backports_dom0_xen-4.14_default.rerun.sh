#!/bin/sh
# Reruns cell bookworm-backports/dom0/xen-4.14/default of run 20261127-205401-f043 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
exec pvmatrix rerun /work/main/results/20261127-205401-f043 bookworm-backports/dom0/xen-4.14/default "$@"
