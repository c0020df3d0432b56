#!/bin/sh
# Reruns cell debian-6.1-generic/domU-pvh/xen-4.17/default of run 20261128-002350-ddf6 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
cd "$(dirname "$0")/../.." && exec pvmatrix rerun 20261128-002350-ddf6 'debian-6.1-generic/domU-pvh/xen-4.17/default' "$@"
