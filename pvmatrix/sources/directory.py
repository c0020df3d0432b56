"""dir:PATH: a local kernel tree, used in place."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..digest import sha256_file
from ..errors import UserError
from ..paths import cache_dir
from .tree import Source, kernel_version


def check(spec: str, rest: str) -> None:
    """REST is a directory holding a kernel tree."""
    path = Path(rest)
    if not path.is_dir():
        raise UserError(f"directory source {spec!r}: {path} is not a directory")
    kernel_version(path)


def resolve(spec: str, rest: str) -> Source:
    """A local tree, identified by the sha256 of its files' paths and contents.

    Per-file digests are remembered by (size, mtime) in one memo per tree, so
    a repeat only stats the files."""
    check(spec, rest)
    path = Path(rest)
    memo_path = cache_dir("identity") / (
        "dir-" + hashlib.sha256(str(path.resolve()).encode()).hexdigest() + ".json")
    memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    fresh, listing = {}, []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            full = Path(root, name)
            if full.is_symlink() or not full.is_file():
                continue
            rel, st = str(full.relative_to(path)), full.stat()
            seen = memo.get(rel)
            if seen and seen[:2] == [st.st_size, st.st_mtime_ns]:
                digest = seen[2]
            else:
                digest = sha256_file(full)
            fresh[rel] = [st.st_size, st.st_mtime_ns, digest]
            listing.append(f"{rel}\0{digest}")
    memo_path.write_text(json.dumps(fresh))
    digest = hashlib.sha256("\n".join(listing).encode()).hexdigest()
    return Source(spec, "dir", f"sha256:{digest}", path.resolve())
