#!/bin/sh
# Reruns cell bullseye/dom0/xen-4.17/default of run 20261127-211042-e4e2 from the cached inputs it used
# (a real boot, the outcome cache bypassed); exit 0 when it passes.
cd "$(dirname "$0")/../.." && exec pvmatrix rerun 20261127-211042-e4e2 'bullseye/dom0/xen-4.17/default' "$@"
