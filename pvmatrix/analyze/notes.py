"""The "Xen" ELF notes of a vmlinux (xen/include/public/elfnote.h): where the
PV and PVH entry points are, which features the kernel supports."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import TruncatedFile, UserError

# note type -> (name, kind): kind says how the descriptor reads
XEN_NOTES: dict[int, tuple[str, str]] = {
    0: ("INFO", "str"), 1: ("ENTRY", "addr"), 2: ("HYPERCALL_PAGE", "addr"),
    3: ("VIRT_BASE", "addr"), 4: ("PADDR_OFFSET", "addr"), 5: ("XEN_VERSION", "str"),
    6: ("GUEST_OS", "str"), 7: ("GUEST_VERSION", "str"), 8: ("LOADER", "str"),
    9: ("PAE_MODE", "str"), 10: ("FEATURES", "str"), 11: ("BSD_SYMTAB", "str"),
    12: ("HV_START_LOW", "addr"), 13: ("L1_MFN_VALID", "hex"), 14: ("SUSPEND_CANCEL", "addr"),
    15: ("INIT_P2M", "addr"), 16: ("MOD_START_PFN", "addr"), 17: ("SUPPORTED_FEATURES", "bits"),
    18: ("PHYS32_ENTRY", "addr"), 19: ("PHYS32_RELOC", "hex"),
}
XENFEAT_DOM0 = 11
LINUX_BUILD_SALT = 0x100   # "Linux" note; distributions set it to the kernel release


@dataclass
class XenNotes:
    """The Xen notes of one kernel, by name (ENTRY, PHYS32_ENTRY, ...)."""
    values: dict[str, int | str] = field(default_factory=dict)
    build_salt: str = ""

    def has(self, name: str) -> bool:
        return name in self.values

    def supported_feature(self, bit: int) -> bool | None:
        """Whether bit BIT of SUPPORTED_FEATURES is set (None without the note)."""
        bits = self.values.get("SUPPORTED_FEATURES")
        return None if bits is None else bool(int(bits) >> bit & 1)

    def describe(self, name: str) -> str:
        """'NAME=value' as evidence text."""
        value = self.values[name]
        return f"Xen note {name}={value:#x}" if isinstance(value, int) else f"Xen note {name}={value!r}"


def read_xen_notes(elf: bytes, source: str = "vmlinux") -> XenNotes:
    """Read the Xen notes from the ELF image ELF (bytes of a vmlinux)."""
    try:
        parsed = ELFFile(io.BytesIO(elf))
        _check_whole(parsed, len(elf), source)
        regions = [(s["p_offset"], s["p_filesz"]) for s in parsed.iter_segments()
                   if s["p_type"] == "PT_NOTE"]
        if not regions:
            regions = [(s["sh_offset"], s["sh_size"]) for s in parsed.iter_sections()
                       if s["sh_type"] == "SHT_NOTE"]
        little = parsed.little_endian
    except (ELFError, struct.error, ValueError) as exc:
        raise UserError(f"{source}: not a readable ELF file ({exc})") from None
    notes = XenNotes()
    for offset, size in regions:
        parse_notes(elf[offset:offset + size], little, notes)
    return notes


def _check_whole(parsed: ELFFile, size: int, source: str) -> None:
    """A truncated ELF (its headers, segments or sections reach past its SIZE bytes)
    is an error, not a kernel without notes (a false static "no")."""
    h = parsed.header
    spans = [("program headers", h["e_phoff"], h["e_phnum"] * h["e_phentsize"]),
             ("section headers", h["e_shoff"], h["e_shnum"] * h["e_shentsize"])]
    if spans[0][1] + spans[0][2] <= size:
        spans += [(f"segment {i}", s["p_offset"], s["p_filesz"])
                  for i, s in enumerate(parsed.iter_segments())]
    if spans[1][1] + spans[1][2] <= size:
        spans += [(f"section {s.name or i}", s["sh_offset"], s["sh_size"])
                  for i, s in enumerate(parsed.iter_sections()) if s["sh_type"] != "SHT_NOBITS"]
    for what, offset, length in spans:
        if offset + length > size:
            raise TruncatedFile(f"{source}: truncated ELF file ({what} ends at byte {offset + length}, "
                            f"the file has {size})")


def parse_notes(data: bytes, little: bool = True, into: XenNotes | None = None) -> XenNotes:
    """The Xen notes among the note records DATA (a PT_NOTE segment's bytes)."""
    notes = into if into is not None else XenNotes()
    for name, ntype, desc in iter_notes(data, little):
        if name == "Xen" and ntype in XEN_NOTES:
            key, kind = XEN_NOTES[ntype]
            notes.values[key] = _decode(desc, kind, little)
        elif name == "Linux" and ntype == LINUX_BUILD_SALT:
            notes.build_salt = desc.split(b"\0", 1)[0].decode(errors="replace")
    return notes


def iter_notes(data: bytes, little: bool = True):
    """(name, type, descriptor) of each note record in DATA (4-byte aligned)."""
    fmt = "<III" if little else ">III"
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(fmt, data, pos)
        pos += 12
        name = data[pos:pos + namesz].split(b"\0", 1)[0].decode(errors="replace")
        pos += (namesz + 3) & ~3
        desc = data[pos:pos + descsz]
        pos += (descsz + 3) & ~3
        yield name, ntype, desc


def _decode(desc: bytes, kind: str, little: bool) -> int | str:
    order = "little" if little else "big"
    if kind == "str":   # FEATURES is not NUL-terminated
        return desc.split(b"\0", 1)[0].decode(errors="replace")
    if kind in ("addr", "bits") and len(desc) in (1, 2, 4, 8):
        return int.from_bytes(desc, order)
    return desc.hex()
