"""The Xen hypervisor a boot runs: Debian's package for a version, unpacked.

QEMU's multiboot loader wants the uncompressed ELF: given xen.gz it silently
falls through to the BIOS, so the .gz from the package is gunzipped once into
the cache. A path to a xen binary may be given instead of a version.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import PvmError
from ..paths import cache_dir
from .roles import xen_versions


@dataclass(frozen=True)
class Xen:
    version: str
    binary: Path       # uncompressed, multiboot-loadable
    utils: str         # Debian package of the matching toolstack
    suite: str         # Debian suite of the dom0 userspace


def _is_multiboot_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


def hypervisor(version: str = "4.17") -> Xen:
    """Xen VERSION (a key of roles.toml [xen]) or a path to a xen binary."""
    known = xen_versions()
    if version not in known:
        path = Path(version).expanduser()
        if path.is_file():
            return _given(path, known)
        raise PvmError(f"unknown Xen version {version!r} (known: {', '.join(known)}; "
                       "or give a path to a xen binary)")
    info = known[version]
    out = cache_dir("boot", "xen") / f"xen-{version}"
    if not out.exists():
        _fetch(info["package"], info["suite"], out)
    return Xen(version, out, info["utils"], info["suite"])


def _given(path: Path, known: dict) -> Xen:
    """A xen binary from elsewhere: its userspace is the newest known version's."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        out = cache_dir("boot", "xen") / f"given-{abs(hash(str(path.resolve())))}"
        out.write_bytes(gzip.decompress(data))
        path = out
    if not _is_multiboot_elf(path):
        raise PvmError(f"xen binary {path}: not an ELF (want xen or xen.gz)")
    version = max(known, key=lambda v: tuple(int(x) for x in v.split(".")))
    return Xen(version, path, known[version]["utils"], known[version]["suite"])


def _fetch(package: str, suite: str, out: Path) -> None:
    from ..sources import debian
    deb = debian.download(package, suite)
    with tempfile.TemporaryDirectory(prefix="xen-", dir=cache_dir("work")) as tmp:
        debian.extract(deb, Path(tmp))
        found = sorted(Path(tmp, "boot").glob("xen-*.gz"))
        if not found:
            raise PvmError(f"Debian package {package}: no boot/xen-*.gz in it")
        part = Path(tmp) / "xen"
        with gzip.open(found[-1], "rb") as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst)
        if not _is_multiboot_elf(part):
            raise PvmError(f"Debian package {package}: {found[-1].name} is not an ELF")
        os.replace(part, out)
