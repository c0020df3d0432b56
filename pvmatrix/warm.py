"""Warm output trees: kbuild output directories kept per (source tree, toolchain).

A build of a source tree that was built before reuses an output directory of
an earlier build, so kbuild's own dependency tracking (fixdep's per-option
dependencies, file mtimes) rebuilds only what a changed option or a changed
file touches. That is what makes a config variant, a bisection step or a
one-file change cheap; ccache cannot help when an option changes, since
every object depends on autoconf.h.

Each source tree may have up to PER_SOURCE trees (slots). A build takes the
free slot whose last config is cheapest to move from: the cost of a slot is
the number of objects that depend (per fixdep) on the options the new recipe
sets differently. When that cost is not zero and there is room, the slot is
copied first, so a config that others are near (e.g. a bisection's good and
bad ends) keeps its tree.

A slot is used by one build at a time (flock). A build that did not end
cleanly (killed, engine gone, failed) leaves its slot marked dirty (configuring
alone does not: it writes .config only), and the next user empties it first: a half-written object must never be taken as up
to date. PVMATRIX_WARM_TREES=0 turns warm trees off; at most that many slots
are kept in all (default 8), the least recently used removed first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .configure import parse_config
from .paths import cache_dir

PER_SOURCE = 3
DIRTY, LAST = ".pvm-dirty", ".pvm-last.json"
# what a build leaves in its output dir that the next one must not see
LEFTOVERS = ("build.log", "_modules", ".pvm-fragment", ".pvm-base")
CONFIG_DEP = re.compile(rb"include/config/([A-Za-z0-9_]+)")
COLD = 10**9                     # the cost of a slot that remembers nothing


def limit() -> int:
    try:
        return max(0, int(os.environ.get("PVMATRIX_WARM_TREES", "8")))
    except ValueError:
        return 8


def _prefix(tree: Path, image: str) -> str:
    return hashlib.sha256(f"{tree.resolve()}\0{image}".encode()).hexdigest()[:20]


def _clear(work: Path) -> None:
    for child in work.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def cost(work: Path, base: str, wanted: dict[str, str]) -> int:
    """How many objects of WORK's last build depend on options WANTED sets
    differently (COLD when WORK remembers no build, or its base differs)."""
    try:
        last = json.loads((work / LAST).read_text())
    except (OSError, ValueError):
        return COLD
    if base != "file" and last["base"] != base:     # a config file base lists every option
        return COLD
    config, weights = last["config"], last["weights"]
    return sum(weights.get(sym.removeprefix("CONFIG_"), 0) + 1
               for sym, value in wanted.items() if config.get(sym, "n") != value)


def building(work: Path) -> None:
    """WORK's objects are about to change: it is dirty until record()."""
    (work / LAST).unlink(missing_ok=True)
    (work / DIRTY).touch()


def record(work: Path, base: str, config_text: str) -> None:
    """Remember what WORK now holds after a clean build: the config and, per
    option, how many objects depend on it (from kbuild's .cmd files)."""
    weights: Counter[str] = Counter()
    for cmd in work.rglob(".*.o.cmd"):
        with contextlib.suppress(OSError):
            weights.update(set(m.decode() for m in CONFIG_DEP.findall(cmd.read_bytes())))
    (work / LAST).write_text(json.dumps({"base": base, "config": parse_config(
        "\n".join(l for l in config_text.splitlines()
                  if l.startswith("CONFIG_") or l.endswith(" is not set")), ".config"),
        "weights": weights}))
    (work / DIRTY).unlink(missing_ok=True)


def _lock(path: Path):
    fh = open(path, "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def _evict(root: Path, keep: int) -> None:
    """Remove the least recently used unlocked slots beyond KEEP."""
    slots = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    for d in slots[:max(0, len(slots) - keep)]:
        if (lock := _lock(root / f"{d.name}.lock")) is not None:
            shutil.rmtree(d, ignore_errors=True)
            lock.close()


@contextlib.contextmanager
def tree(source_tree: Path, image: str, base: str, wanted: dict[str, str]) -> Iterator[Path]:
    """An output directory for building SOURCE_TREE with IMAGE and a recipe of
    BASE + WANTED options: the cheapest free warm slot, else a temporary dir."""
    keep = limit()
    if keep == 0:
        yield from _temporary()
        return
    root = cache_dir("warm")
    prefix = _prefix(source_tree, image)
    slots = sorted((d for d in root.glob(f"{prefix}-*") if d.is_dir()),
                   key=lambda d: cost(d, base, wanted))
    lock, work = None, None
    for d in slots:
        if (lock := _lock(root / f"{d.name}.lock")) is not None:
            if d.is_dir():                # not evicted meanwhile
                work = d
                break
            lock.close()
            lock = None
    if work is not None and (work / DIRTY).exists():
        _clear(work)
    moving = cost(work, base, wanted) if work is not None else COLD
    if work is None or (0 < moving < COLD and len(slots) < PER_SOURCE):
        fresh = next(root / f"{prefix}-{i}" for i in range(len(slots) + 1)
                     if not (root / f"{prefix}-{i}").exists())
        new_lock = _lock(root / f"{fresh.name}.lock")
        if new_lock is None:              # another build just took that name
            if lock:
                lock.close()
            yield from _temporary()
            return
        fresh.mkdir()
        if work is not None:
            subprocess.run(["cp", "-a", f"{work}/.", str(fresh)], check=True)
        if lock:
            lock.close()
        lock, work = new_lock, fresh
    try:
        for name in LEFTOVERS:
            path = work / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        os.utime(work)                    # most recently used
        yield work
    finally:
        lock.close()
    _evict(root, keep)


def _temporary() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir("work")))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
