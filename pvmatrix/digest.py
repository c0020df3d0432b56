"""sha256 of files: the one helper every stage uses for file digests."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from .paths import PACKAGE, cache_dir


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at PATH."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_remembered(path: Path) -> str:
    """sha256_file, remembered by (path, size, mtime) so repeats are instant."""
    st = path.stat()
    memo = cache_dir("identity") / hashlib.sha256(
        f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    if memo.exists():
        return memo.read_text()
    digest = sha256_file(path)
    memo.write_text(digest)
    return digest


def sha256_id(path: Path) -> str:
    """"sha256:HEX" of a file (remembered): the content id of a package or a binary."""
    return "sha256:" + sha256_remembered(path)


def short(data: str | bytes) -> str:
    """The first 16 hex digits of DATA's sha256: a name or a key, not a content id."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


@lru_cache(maxsize=None)
def code_digest(*names: str) -> str:
    """A digest over the files of pvmatrix subpackages / data dirs (relative to the
    package): a verdict made by other code is not reused."""
    h = hashlib.sha256()
    for name in names:
        root = PACKAGE / name
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.name != "cli.py")                # the command line makes no verdict
        for f in files:
            h.update(str(f.relative_to(PACKAGE)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]
