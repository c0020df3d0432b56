"""Working directories of boots, under $PVMATRIX_CACHE/boot/runs: one per boot
(serial log, disk images, initramfs parts, dom0 image, qemu.sh), ~36 MB for a
Xen boot. The serial log and verdicts are copied into the results store, so
only the reproducer (qemu.sh) needs the directory later: the oldest ones go
once all of them together pass PVMATRIX_BOOT_KEEP_MB (default 4096). A
directory younger than MIN_AGE_S is never deleted (a boot may run in it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from .. import settings
from ..paths import cache_dir

MIN_AGE_S = 3600


def keep_mb() -> int:
    """The budget of the boot directories: $PVMATRIX_BOOT_KEEP_MB (see settings)."""
    return settings.current().boot_keep_mb


def new(label: str) -> Path:
    """A new, empty directory for one boot (LABEL: baremetal, xen); older ones
    past the budget are deleted first."""
    root = cache_dir("boot", "runs")
    prune(root, keep_mb() * 2**20)
    d = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(3)}"
    d.mkdir(parents=True)
    return d


def _size(d: Path) -> int:
    """What D holds on disk (a sparse disk image counts its written blocks)."""
    total = 0
    for dirpath, _, files in os.walk(d):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def prune(root: Path, keep_bytes: int, now: float | None = None, by_use: bool = False) -> list[Path]:
    """Delete the oldest directories of ROOT (names begin with their time; BY_USE:
    the least recently used, by mtime) while all of them together exceed
    KEEP_BYTES; returns what was deleted."""
    now = time.time() if now is None else now
    dirs = sorted((d for d in root.iterdir() if d.is_dir()),
                  key=(lambda d: d.stat().st_mtime) if by_use else (lambda d: d.name))
    sizes = {d: _size(d) for d in dirs}
    total, gone = sum(sizes.values()), []
    for d in dirs:
        if total <= keep_bytes:
            break
        try:
            if now - d.stat().st_mtime < MIN_AGE_S:
                break                      # the rest are younger still
        except FileNotFoundError:          # another process pruned it
            total -= sizes[d]
            continue
        shutil.rmtree(d, ignore_errors=True)
        total -= sizes[d]
        gone.append(d)
    return gone
