#!/bin/sh
# Reruns cell debian-6.1-src/domU-pv-migrate/xen-4.14/qemu of run 20261128-121613-c11d from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
cd "$(dirname "$0")/../.." && exec pvmatrix rerun 20261128-121613-c11d 'debian-6.1-src/domU-pv-migrate/xen-4.14/qemu' "$@"
