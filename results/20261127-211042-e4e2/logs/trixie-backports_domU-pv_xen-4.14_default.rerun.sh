#!/bin/sh
# Reruns cell trixie-backports/domU-pv/xen-4.14/default of run 20261127-211042-e4e2 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
cd "$(dirname "$0")/../.." && exec pvmatrix rerun 20261127-211042-e4e2 'trixie-backports/domU-pv/xen-4.14/default' "$@"
