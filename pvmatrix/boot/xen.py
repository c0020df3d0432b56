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

from ..errors import HarnessFault, UserError
from .. import catalog
from ..paths import cache_dir
from ..sources import debian


@dataclass(frozen=True)
class Xen:
    version: str
    binary: Path       # uncompressed, multiboot-loadable
    utils: str         # Debian package of the matching toolstack
    suite: str         # Debian suite of the dom0 userspace


def _is_multiboot_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


def check(version: str | None) -> str:
    """VERSION as a boot takes it: a release of data/xen.toml (None: its default)
    or the path of a xen binary; else UnknownName, listing the releases."""
    version = version or catalog.default("xen").name
    if version in catalog.names("xen") or Path(version).expanduser().is_file():
        return version
    catalog.get("xen", version, hint="or give a path to a xen binary")
    return version


def hypervisor(version: str | None = None) -> Xen:
    """Xen VERSION (a release of data/xen.toml; default: its default) or a path
    to a xen binary."""
    known = catalog.all("xen")
    version = check(version)
    if version not in known:
        return _given(Path(version).expanduser(), known)
    rel = known[version]
    out = cache_dir("boot", "xen") / f"xen-{version}"
    if not out.exists():
        _fetch(rel.package, rel.suite, out)
    return Xen(version, out, rel.utils, rel.suite)


def _given(path: Path, known: dict[str, catalog.XenRelease]) -> Xen:
    """A xen binary from elsewhere: its userspace is the newest known release's."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        out = cache_dir("boot", "xen") / f"given-{abs(hash(str(path.resolve())))}"
        out.write_bytes(gzip.decompress(data))
        path = out
    if not _is_multiboot_elf(path):
        raise UserError(f"xen binary {path}: not an ELF (want xen or xen.gz)")
    newest = max(known.values(), key=lambda r: r.order)
    return Xen(newest.name, path, newest.utils, newest.suite)


def _fetch(package: str, suite: str, out: Path) -> None:
    found = sorted(debian.unpacked(debian.download(package, suite)).glob("boot/xen-*.gz"))
    if not found:
        raise HarnessFault(f"Debian package {package}: no boot/xen-*.gz in it")
    with tempfile.TemporaryDirectory(prefix="xen-", dir=cache_dir("work")) as tmp:
        part = Path(tmp) / "xen"
        with gzip.open(found[-1], "rb") as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst)
        if not _is_multiboot_elf(part):
            raise HarnessFault(f"Debian package {package}: {found[-1].name} is not an ELF")
        os.replace(part, out)
