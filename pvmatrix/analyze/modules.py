"""Scan a modules tree (lib/modules/VERSION) for the PCI aliases of every module,
in a process pool, with a cache keyed by each file's content.

The cache is one SQLite file: `modinfo` maps a content digest to what the
module says; `seen` maps (path, size, mtime, inode) to the digest, so a repeated
scan of unchanged files reads no module at all (as git's index does)."""

from __future__ import annotations

import json
import os
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..paths import cache_dir
from .modinfo import SUFFIXES, ModInfo, read_modules

POOL_MIN_FILES = 64   # below this, a pool costs more than it saves
CHUNKS_PER_JOB = 4


@dataclass
class ModuleScan:
    """Every module of one tree, plus the built-in module list."""
    root: Path
    modules: list[ModInfo] = field(default_factory=list)
    builtin: set[str] = field(default_factory=set)   # names from modules.builtin
    from_cache: int = 0
    _alias_index: dict | None = field(default=None, repr=False, compare=False)   # see coverage

    @property
    def unreadable(self) -> list[ModInfo]:
        return [m for m in self.modules if m.error]

    def by_name(self) -> dict[str, ModInfo]:
        return {m.name: m for m in self.modules if not m.error}


def find_module_files(root: Path) -> list[tuple[str, os.stat_result]]:
    """(relative path, stat) of every module file under ROOT, sorted."""
    found: list[tuple[str, os.stat_result]] = []
    stack = [str(root)]
    base = len(str(root)) + 1
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.endswith(SUFFIXES):
                    found.append((entry.path[base:], entry.stat()))
    found.sort()
    return found


def scan_modules(root: Path, jobs: int = 2, use_cache: bool = True) -> ModuleScan:
    """Read the PCI aliases of every module under ROOT."""
    root = Path(root)
    scan = ModuleScan(root, builtin=read_builtin(root))
    files = find_module_files(root)
    db = _open_cache() if use_cache else None
    known = _lookup(db, root, files) if db else {}
    todo = [rel for rel, _ in files if rel not in known]
    fresh = {m.path: m for m in _read_all(str(root), todo, jobs)}
    if db:
        _store(db, root, files, fresh)
    scan.from_cache = len(known)
    scan.modules = [known.get(rel) or fresh[rel] for rel, _ in files]
    return scan


def scan_alias_file(path: Path) -> ModuleScan:
    """The modules a depmod-made modules.alias names, with their PCI aliases (no
    module is read: fast, and enough for coverage); modules.builtin beside it
    is read too."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    aliases: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "alias" and parts[1].startswith("pci:"):
            aliases.setdefault(parts[2], []).append(parts[1])
    modules = [ModInfo(f"{name} (modules.alias)", name, pci_aliases=found)
               for name, found in aliases.items()]
    return ModuleScan(path.parent, modules, builtin=read_builtin(path.parent))


def read_builtin(root: Path) -> set[str]:
    """Module names listed in modules.builtin (drivers compiled into the kernel)."""
    path = Path(root) / "modules.builtin"
    try:
        lines = path.read_text().split()
    except OSError:
        return set()
    return {line.rsplit("/", 1)[-1].removesuffix(".ko").replace("-", "_") for line in lines}


def _read_all(root: str, todo: list[str], jobs: int) -> list[ModInfo]:
    if len(todo) < POOL_MIN_FILES or jobs <= 1:
        return read_modules(root, todo)
    parts = jobs * CHUNKS_PER_JOB
    chunks = [todo[i::parts] for i in range(parts)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(read_modules, [root] * parts, chunks)
        return [m for chunk in results for m in chunk]


def _open_cache() -> sqlite3.Connection:
    db = sqlite3.connect(cache_dir("analyze") / "modinfo.sqlite", timeout=30)
    db.executescript(
        "CREATE TABLE IF NOT EXISTS modinfo (digest TEXT PRIMARY KEY, name TEXT, aliases TEXT, error TEXT);"
        "CREATE TABLE IF NOT EXISTS seen (path TEXT PRIMARY KEY, size INT, mtime INT, inode INT, digest TEXT);")
    return db


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def _lookup(db: sqlite3.Connection, root: Path, files: list[tuple[str, os.stat_result]]) -> dict[str, ModInfo]:
    prefix = f"{root.resolve()}/"
    seen = {path[len(prefix):]: (size, mtime, inode, digest) for path, size, mtime, inode, digest
            in db.execute("SELECT * FROM seen WHERE path >= ? AND path < ?", (prefix, prefix[:-1] + "0"))}
    digests = {rel: seen[rel][3] for rel, st in files if rel in seen and seen[rel][:3] == _stamp(st)}
    rows = {}
    wanted = list(set(digests.values()))
    for i in range(0, len(wanted), 900):   # SQLite's limit on bound parameters
        batch = wanted[i:i + 900]
        rows.update((d, (n, a, e)) for d, n, a, e in db.execute(
            f"SELECT * FROM modinfo WHERE digest IN ({','.join('?' * len(batch))})", batch))
    known = {}
    for rel, digest in digests.items():
        if digest in rows:
            name, aliases, error = rows[digest]
            known[rel] = ModInfo(rel, name, digest, json.loads(aliases), error)
    return known


def _store(db: sqlite3.Connection, root: Path, files: list[tuple[str, os.stat_result]],
           fresh: dict[str, ModInfo]) -> None:
    if not fresh:
        return
    prefix = f"{root.resolve()}/"
    stats = dict(files)
    with db:
        db.executemany("INSERT OR REPLACE INTO modinfo VALUES (?, ?, ?, ?)",
                       [(m.digest, m.name, json.dumps(m.pci_aliases), m.error)
                        for m in fresh.values() if m.digest])
        db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)",
                       [(prefix + m.path, *_stamp(stats[m.path]), m.digest)
                        for m in fresh.values() if m.digest])
