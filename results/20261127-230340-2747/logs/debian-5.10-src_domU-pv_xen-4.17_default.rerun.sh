#!/bin/sh
# Reruns cell debian-5.10-src/domU-pv/xen-4.17/default of run 20261127-230340-2747 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
cd "$(dirname "$0")/../.." && exec pvmatrix rerun 20261127-230340-2747 'debian-5.10-src/domU-pv/xen-4.17/default' "$@"
