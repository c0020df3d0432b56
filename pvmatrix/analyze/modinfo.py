"""Read the .modinfo section of one kernel module (.ko, .ko.xz, .ko.gz; .ko.zst
through the zstd program) by parsing the ELF section headers directly:
pyelftools' full parse costs milliseconds per module, this costs microseconds."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from ..errors import UserError

SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


@dataclass
class ModInfo:
    """What one module file says about itself."""
    path: str                  # relative to the modules root
    name: str                  # module name, e.g. "e1000e"
    digest: str = ""           # sha1 of the file's bytes (the cache key)
    pci_aliases: list[str] = field(default_factory=list)   # "pci:v...d..." patterns
    error: str | None = None   # why the file could not be read, if it could not


def module_name(path: str) -> str:
    """The module name a file name implies (dashes read as underscores)."""
    base = os.path.basename(path)
    for suffix in SUFFIXES:
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return base.replace("-", "_")


def content_digest(raw: bytes) -> str:
    """The cache key of a file's content: sha1, as git names blobs (a key, not a
    security measure; the fastest of hashlib's digests, which the cold scan needs)."""
    return hashlib.sha1(raw).hexdigest()


def parse_modinfo(elf: bytes) -> dict[str, list[str]]:
    """key -> values of the .modinfo section of the module ELF image ELF."""
    if elf[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    if elf[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    order = "<" if elf[5] == 1 else ">"
    shoff, = struct.unpack_from(order + "Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", elf, 0x3A)
    if not shoff or shoff + shnum * shentsize > len(elf) or shstrndx >= shnum:
        raise ValueError("truncated ELF file (section headers out of range)")
    header = order + "IIQQQQ"   # name, type, flags, addr, offset, size

    def section(i: int) -> tuple[int, int, int]:
        name, _, _, _, off, size = struct.unpack_from(header, elf, shoff + i * shentsize)
        return name, off, size

    _, str_off, str_size = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        start = str_off + name
        if elf[start:start + 9] == b".modinfo\0":
            if off + size > len(elf):
                raise ValueError("truncated ELF file (.modinfo out of range)")
            info: dict[str, list[str]] = {}
            for entry in elf[off:off + size].split(b"\0"):
                key, sep, value = entry.partition(b"=")
                if sep:
                    info.setdefault(key.decode(errors="replace"), []).append(
                        value.decode(errors="replace"))
            return info
    raise ValueError("no .modinfo section (not a kernel module)")


def read_modules(root: str, paths: list[str]) -> list[ModInfo]:
    """Read the modules at PATHS (relative to ROOT); never raises for one bad file."""
    zst = [p for p in paths if p.endswith(".zst")]
    unpacked = _unzstd(root, zst) if zst else {}
    return [_read_one(root, p, unpacked) for p in paths]


def _read_one(root: str, rel: str, unpacked: dict[str, bytes | str]) -> ModInfo:
    info = ModInfo(rel, module_name(rel))
    try:
        with open(os.path.join(root, rel), "rb") as fh:
            raw = fh.read()
        info.digest = content_digest(raw)
        if rel.endswith(".xz"):
            elf = lzma.decompress(raw)
        elif rel.endswith(".gz"):
            elf = gzip.decompress(raw)
        elif rel.endswith(".zst"):
            elf = unpacked.get(rel, "not decompressed")
            if isinstance(elf, str):
                raise ValueError(elf)
        else:
            elf = raw
        modinfo = parse_modinfo(elf)
    except OSError as exc:
        info.error = f"cannot read ({exc.strerror})"
        return info
    except (lzma.LZMAError, EOFError, gzip.BadGzipFile) as exc:
        info.error = f"corrupt compressed module ({exc})"
        return info
    except (ValueError, struct.error) as exc:
        info.error = str(exc)
        return info
    info.name = (modinfo.get("name") or [info.name])[0]
    info.pci_aliases = [a for a in modinfo.get("alias", []) if a.startswith("pci:")]
    return info


def read_module_elf(path: Path) -> bytes:
    """The ELF image of the module file at PATH, decompressed."""
    root, rel = os.path.split(str(path))
    try:
        raw = Path(path).read_bytes()
        if rel.endswith(".zst"):
            elf = _unzstd(root, [rel])[rel]
            if isinstance(elf, str):
                raise ValueError(elf)
            return elf
        return lzma.decompress(raw) if rel.endswith(".xz") else \
            gzip.decompress(raw) if rel.endswith(".gz") else raw
    except (OSError, ValueError, lzma.LZMAError, EOFError) as exc:
        raise UserError(f"{path}: unreadable module ({exc})") from None


def _unzstd(root: str, paths: list[str]) -> dict[str, bytes | str]:
    """Decompress .ko.zst files with one run of the zstd program."""
    if not shutil.which("zstd"):
        return {p: "a .ko.zst module needs the 'zstd' program, which is not installed" for p in paths}
    out: dict[str, bytes | str] = {}
    with tempfile.TemporaryDirectory(prefix="pvmatrix-zst-") as tmp:
        subprocess.run(["zstd", "-dqf", "--output-dir-mirror", tmp,
                        *[os.path.join(root, p) for p in paths]], capture_output=True)
        for p in paths:
            target = Path(tmp + os.path.join(os.path.abspath(root), p)[:-4])
            try:
                out[p] = target.read_bytes()
            except OSError:
                out[p] = "corrupt zstd data"
    return out
