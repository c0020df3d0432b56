"""tarball:PATH: a kernel tarball, identified by its sha256 and unpacked once."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from ..digest import sha256_remembered
from ..errors import UserError, disk
from ..paths import cache_dir, partial_dir
from .tree import Source, kernel_version


def check(spec: str, rest: str) -> None:
    """REST is the path of a file (unpacked only when resolved)."""
    if not Path(rest).is_file():
        raise UserError(f"tarball source {spec!r}: {rest} does not exist")


def resolve(spec: str, rest: str) -> Source:
    """REST is the tarball's path."""
    check(spec, rest)
    path = Path(rest)
    try:
        digest = sha256_remembered(path)
    except OSError as exc:
        raise UserError(f"tarball source {spec!r}: cannot read {path}: {exc.strerror}") from None
    tree = cache_dir("trees") / f"sha256-{digest}"
    if not tree.exists():
        _unpack(spec, path, tree)
    kernel_version(tree)
    return Source(spec, "tarball", f"sha256:{digest}", tree)


def _unpack(spec: str, path: Path, tree: Path) -> None:
    """The kernel tree of the tarball at PATH, renamed into place as TREE whole."""
    tmp = partial_dir(tree.parent, "unpack")
    try:
        with disk(tree.parent), tarfile.open(path) as tar:
            tar.extractall(tmp, filter="tar")
        kroot = _kernel_root(tmp)
        os.rename(kroot, tree) if kroot != tmp else os.rename(tmp, tree)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise UserError(f"tarball source {spec!r}: cannot unpack {path}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _kernel_root(top: Path) -> Path:
    """The directory holding the kernel's Makefile: TOP or its only subdirectory."""
    if (top / "Makefile").exists():
        return top
    subdirs = [p for p in top.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / "Makefile").exists():
        return subdirs[0]
    raise UserError(f"{top}: no kernel Makefile at the top or in its only directory")
