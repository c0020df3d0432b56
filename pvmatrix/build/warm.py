"""Warm output trees: kbuild output directories kept per (source tree, toolchain).

A build of a source tree that was built before reuses an output directory of
an earlier build, so kbuild's own dependency tracking (fixdep's per-option
dependencies, file mtimes) rebuilds only what a changed option or a changed
file touches. That is what makes a config variant, a bisection step or a
one-file change cheap; ccache cannot help when an option changes, since
every object depends on autoconf.h.

Each source tree may have up to PER_SOURCE trees (slots). A build takes the
free slot whose last build is cheapest to move from: the number of objects
that depend (per fixdep's include/config/SYMBOL, as kbuild writes them since
5.13; older trees weigh every option alike) on the options the new recipe
sets differently. When that is not zero and there is room, the slot is copied
first, so a config that others are near (e.g. a bisection's good and bad
ends) keeps its tree. When every slot is busy, a build gets a temporary dir.

A slot is used by one build at a time (flock, held by the building process).
A build that did not end cleanly (killed, engine gone, failed) leaves its slot
marked dirty (configuring alone does not: it writes .config only), and the
next user empties it first: a half-written object must never be taken as up
to date. The lock dies with its process, a container need not: a slot's new
holder first stops any container still writing to it (a killed pvmatrix's
orphan), and empties the slot if there was one.
PVMATRIX_WARM_TREES=0 turns warm trees off; at most that many slots are kept
in all (default 8), the least recently used removed first. Slots are counted,
not sized: a tinyconfig tree is ~130 MB, an allmodconfig one many GB.
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
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import settings
from ..configure import parse_config
from ..errors import HarnessFault
from ..paths import cache_dir

PER_SOURCE = 3
DIRTY, LAST = ".pvm-dirty", ".pvm-last.json"
# what a build leaves in its output dir that the next one must not see
LEFTOVERS = ("build.log", "_modules", ".pvm-fragment", ".pvm-base")
CONFIG_DEP = re.compile(rb"include/config/([A-Za-z0-9_]+)")
COLD = 10**9                     # the cost of a slot that remembers nothing
Writers = Callable[[Path], int]  # stops what still writes to a slot; how many did


def _no_writers(work: Path) -> int:
    return 0


def limit() -> int:
    """How many warm trees to keep: $PVMATRIX_WARM_TREES (see settings)."""
    return settings.current().warm_trees


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
    changed = {sym for sym, value in wanted.items() if config.get(sym, "n") != value}
    # what the last recipe set and this one leaves to the base: assume it moves
    changed |= set(last.get("recipe", {})) - set(wanted)
    return sum(weights.get(sym.removeprefix("CONFIG_"), 0) + 1 for sym in changed)


def building(work: Path) -> None:
    """WORK's objects are about to change: it is dirty until record()."""
    (work / LAST).unlink(missing_ok=True)
    (work / DIRTY).touch()


def record(work: Path, base: str, wanted: dict[str, str], config_text: str) -> None:
    """Remember what WORK now holds after a clean build: the config and, per
    option, how many objects depend on it (from kbuild's .cmd files)."""
    weights: Counter[str] = Counter()
    for cmd in work.rglob(".*.o.cmd"):
        with contextlib.suppress(OSError):
            weights.update(set(m.decode() for m in CONFIG_DEP.findall(cmd.read_bytes())))
    (work / LAST).write_text(json.dumps({"base": base, "recipe": wanted, "config": parse_config(
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


def _evict(root: Path, keep: int, stop_writers: Writers = _no_writers) -> None:
    """Remove the least recently used unlocked slots beyond KEEP."""
    slots = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    for d in slots[:max(0, len(slots) - keep)]:
        if (lock := _lock(root / f"{d.name}.lock")) is not None:
            stop_writers(d)
            shutil.rmtree(d, ignore_errors=True)
            lock.close()


def _pick(root: Path, slots: list[Path], stop_writers: Writers = _no_writers):
    """(lock, slot) of the first free slot of SLOTS (cheapest first), emptied
    when dirty or when STOP_WRITERS found something still writing to it (a dead
    holder's orphan container); (None, None) when every one is busy."""
    for d in slots:
        if (lock := _lock(root / f"{d.name}.lock")) is None:
            continue
        if d.is_dir():                    # not evicted meanwhile
            if stop_writers(d) or (d / DIRTY).exists():
                _clear(d)
            return lock, d
        lock.close()
    return None, None


def _new_slot(root: Path, prefix: str, origin: Path | None):
    """(lock, slot) of a new slot of PREFIX, a copy of ORIGIN if given; (None,
    None) when another build took the name first. A copy that fails midway is
    left dirty, never trusted."""
    for i in range(PER_SOURCE):
        slot = root / f"{prefix}-{i}"
        if slot.exists() or (lock := _lock(root / f"{slot.name}.lock")) is None:
            continue
        try:
            slot.mkdir()
        except FileExistsError:           # made and released since we looked
            lock.close()
            continue
        if origin is not None:
            (slot / DIRTY).touch()
            done = subprocess.run(["cp", "-a", f"{origin}/.", str(slot)], capture_output=True,
                                  text=True)
            if done.returncode != 0:
                lock.close()
                raise HarnessFault(f"cannot copy warm tree {origin} to {slot}: "
                                   f"{done.stderr.strip()[:200]}")
            (slot / DIRTY).unlink(missing_ok=True)
        return lock, slot
    return None, None


@contextlib.contextmanager
def output_tree(source_tree: Path, image: str, base: str, wanted: dict[str, str],
                stop_writers: Writers = _no_writers) -> Iterator[Path]:
    """An output directory for building SOURCE_TREE with IMAGE and a recipe of
    BASE + WANTED options: the cheapest free warm slot (copied first when it is
    not an exact match and there is room), else a temporary directory.
    STOP_WRITERS(slot) is called with a slot's lock held, before it is used."""
    keep = limit()
    if keep == 0:
        yield from _temporary()
        return
    root = cache_dir("warm")
    prefix = _prefix(source_tree, image)
    slots = sorted((d for d in root.glob(f"{prefix}-*") if d.is_dir()),
                   key=lambda d: cost(d, base, wanted))
    lock, work = _pick(root, slots, stop_writers)
    moving = cost(work, base, wanted) if work is not None else COLD
    if len(slots) < PER_SOURCE and (work is None or 0 < moving < COLD):
        new_lock, fresh = _new_slot(root, prefix, work)
        if fresh is not None:
            if lock:
                lock.close()
            lock, work = new_lock, fresh
    if work is None:                      # every slot busy, and no room for another
        yield from _temporary()
        return
    try:
        for name in LEFTOVERS:
            path = work / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        os.utime(work)                    # most recently used
        yield work
    finally:
        lock.close()
    _evict(root, keep, stop_writers)


def _temporary() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir("work")))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
