#!/bin/sh
# Reruns cell trixie-generic/domU-pvh-save/xen-4.14/qemu of run 20261128-093241-5304 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
cd "$(dirname "$0")/../.." && exec pvmatrix rerun 20261128-093241-5304 'trixie-generic/domU-pvh-save/xen-4.14/qemu' "$@"
