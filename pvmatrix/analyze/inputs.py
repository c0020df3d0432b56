"""Find a kernel's files: a builder artifacts dir, a Debian linux-image .deb,
any directory with vmlinuz/bzImage + config + modules tree, or a bare image."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..sources import debian
from ..errors import PvmError
from ..paths import cache_dir


@dataclass
class KernelFiles:
    """Where one kernel's parts are; any of them may be missing."""
    input: str
    image: Path | None = None     # bzImage / vmlinuz
    vmlinux: Path | None = None   # uncompressed ELF, when the build kept it
    config: Path | None = None
    modules: Path | None = None   # lib/modules/RELEASE


def locate(kernel: str | Path) -> KernelFiles:
    """The files of KERNEL (a path to a directory, a .deb, a bzImage or a vmlinux)."""
    path = Path(kernel).expanduser()
    if not path.exists():
        raise PvmError(f"{kernel}: no such file or directory")
    if path.is_file() and path.suffix == ".deb":
        return _in_dir(unpack_deb(path), str(kernel))
    if path.is_dir():
        return _in_dir(path, str(kernel))
    head = path.open("rb").read(0x210)
    if head[:4] == b"\x7fELF":
        return KernelFiles(str(kernel), vmlinux=path)
    if head[0x202:0x206] == b"HdrS":
        return KernelFiles(str(kernel), image=path)
    raise PvmError(f"{kernel}: not a kernel (neither a bzImage, an ELF vmlinux, a .deb nor a directory)")


def unpack_deb(deb: Path) -> Path:
    """Unpack DEB once into the cache, keyed by the package's content."""
    digest = hashlib.sha256()
    with deb.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    dest = cache_dir("analyze", "debs") / digest.hexdigest()[:24]
    if not dest.exists():
        partial = dest.with_name(dest.name + f".partial{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        debian.extract(deb, partial)
        os.replace(partial, dest)
    return dest


def _in_dir(root: Path, given: str) -> KernelFiles:
    files = KernelFiles(given)
    files.image = _first(root, ["bzImage", "vmlinuz", "arch/x86/boot/bzImage"],
                         ["vmlinuz-*", "boot/vmlinuz-*", "boot/vmlinuz", "boot/bzImage"])
    files.vmlinux = _first(root, ["vmlinux"], [])
    files.config = _first(root, ["config", ".config"], ["config-*", "boot/config-*"])
    files.modules = _modules_dir(root)
    if not (files.image or files.vmlinux):
        raise PvmError(f"{given}: no kernel image in it (looked for bzImage, vmlinuz*, boot/vmlinuz-*, vmlinux)")
    return files


def _first(root: Path, names: list[str], patterns: list[str]) -> Path | None:
    for name in names:
        if (root / name).is_file():
            return root / name
    for pattern in patterns:
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        if found:
            return found[-1]
    return None


def _modules_dir(root: Path) -> Path | None:
    for base in (root / "modules" / "lib" / "modules", root / "lib" / "modules",
                 root / "usr" / "lib" / "modules"):
        if base.is_dir():
            releases = sorted(p for p in base.iterdir() if p.is_dir())
            if releases:
                return releases[-1]
    if (root / "modules" / "modules.order").exists():
        return root / "modules"
    return None
