"""Extract the vmlinux ELF from an x86 bzImage (boot protocol header, any of
the kernel's compressions)."""

from __future__ import annotations

import bz2
import lzma
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import HarnessFault, NotSupported, TruncatedFile, UserError

# magic bytes at the start of the payload -> compression name
MAGICS: list[tuple[bytes, str]] = [
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x02\x21\x4c\x18", "lz4"),   # lz4 legacy frame, as `lz4 -l` writes it
    (b"BZh", "bzip2"),
    (b"\x89LZO", "lzo"),
    (b"\x5d\x00\x00", "lzma"),
]
TOOLS = {"zstd": ["zstd", "-dcq"], "lz4": ["lz4", "-dcq"], "lzo": ["lzop", "-dc"]}


@dataclass
class BootImage:
    """What the boot protocol header of a bzImage says."""
    path: Path
    protocol: str          # e.g. "2.15"
    version_string: str    # the kernel_version string, e.g. "6.1.0-50-amd64 (...) #1 SMP ..."
    compression: str
    payload: bytes         # compressed payload, without the appended size

    @property
    def release(self) -> str:
        """The kernel release (first word of the version string), e.g. 6.1.0-50-amd64."""
        return self.version_string.split(" ", 1)[0]


def read_boot_image(path: Path) -> BootImage:
    """Parse the boot protocol header of the bzImage at PATH."""
    data = _read(path)
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        raise UserError(f"{path}: not a bzImage (no 'HdrS' boot protocol header at 0x202)")
    setup_sects = data[0x1F1] or 4
    proto = struct.unpack_from("<H", data, 0x206)[0]
    if proto < 0x208:
        raise NotSupported(f"{path}: boot protocol {proto >> 8}.{proto & 0xff} has no payload fields (< 2.08)")
    payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    end = start + payload_length
    if end > len(data) or payload_length < 8:
        raise TruncatedFile(f"{path}: truncated bzImage (payload ends at {end}, file has {len(data)} bytes)")
    payload = data[start:end - 4]   # the build appends the uncompressed size (4 bytes)
    return BootImage(path, f"{proto >> 8}.{proto & 0xff}", _version_string(data),
                     compression_of(payload, path), payload)


def extract_vmlinux(path: Path) -> bytes:
    """The decompressed vmlinux ELF inside the bzImage at PATH."""
    image = read_boot_image(path)
    elf = decompress(image.compression, image.payload, path)
    if elf[:4] != b"\x7fELF":
        raise UserError(f"{path}: the {image.compression} payload does not decompress to an ELF file")
    return elf


def compression_of(payload: bytes, path: Path | str = "payload") -> str:
    """The compression of PAYLOAD, named by its magic bytes."""
    for magic, name in MAGICS:
        if payload.startswith(magic):
            return name
    raise UserError(f"{path}: unknown compression (payload starts with {payload[:6].hex()})")


def decompress(kind: str, data: bytes, path: Path | str = "payload") -> bytes:
    """Decompress DATA (one stream; trailing bytes are ignored) with KIND."""
    try:
        if kind == "gzip":
            return zlib.decompressobj(wbits=31).decompress(data)
        if kind == "xz":
            return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data)
        if kind == "lzma":
            return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data)
        if kind == "bzip2":
            return bz2.BZ2Decompressor().decompress(data)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
        raise UserError(f"{path}: corrupt {kind} data ({exc})") from None
    if kind in TOOLS:
        return _with_tool(kind, data, path)
    raise NotSupported(f"{path}: unknown compression {kind!r}")


def _with_tool(kind: str, data: bytes, path: Path | str) -> bytes:
    argv = TOOLS[kind]
    if not shutil.which(argv[0]):
        raise HarnessFault(f"{path}: {kind} data needs the '{argv[0]}' program, which is not installed")
    done = subprocess.run(argv, input=data, capture_output=True)
    if not done.stdout:   # lz4/zstd may complain about trailing bytes after a good stream
        raise UserError(f"{path}: corrupt {kind} data ({done.stderr.decode(errors='replace').strip()})")
    return done.stdout


def _version_string(data: bytes) -> str:
    ptr = struct.unpack_from("<H", data, 0x20E)[0]
    if not ptr:
        return ""
    at = ptr + 0x200
    return data[at:at + 256].split(b"\0", 1)[0].decode("ascii", errors="replace")


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
