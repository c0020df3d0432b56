#!/bin/sh
# Reruns cell debian-7.3-src/baremetal/default of run 20261127-230340-2747 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
cd "$(dirname "$0")/../.." && exec pvmatrix rerun 20261127-230340-2747 'debian-7.3-src/baremetal/default' "$@"
