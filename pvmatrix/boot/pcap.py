"""Reading the frames QEMU's filter-dump wrote (the classic libpcap format:
a 24-byte file header, then per frame a 16-byte record header and the bytes
captured), to tell whether the frame a probe sent left through a NIC."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",      # microseconds
         b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}      # nanoseconds
FILE_HEADER, RECORD_HEADER = 24, 16


@dataclass(frozen=True)
class Frame:
    no: int            # 1-based, in the file's order
    seconds: float     # the capture time stamp (microsecond part only)
    data: bytes        # the bytes captured (at most the file's snaplen)

    @property
    def source(self) -> str:
        """The Ethernet source address."""
        return ":".join(f"{b:02x}" for b in self.data[6:12])


def frames(path: Path) -> list[Frame]:
    """Every whole frame of the pcap file PATH ([] when it is missing or empty:
    QEMU writes the header only once the NIC's netdev exists); a frame cut short
    by the end of the file (QEMU killed mid-write) is left out."""
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    if len(blob) < FILE_HEADER:
        return []
    order = MAGIC.get(blob[:4])
    if order is None:
        raise ValueError(f"{path}: not a pcap file (magic {blob[:4].hex()})")
    out, pos = [], FILE_HEADER
    while pos + RECORD_HEADER <= len(blob):
        sec, usec, caplen, _ = struct.unpack_from(order + "IIII", blob, pos)
        pos += RECORD_HEADER
        if pos + caplen > len(blob):
            break
        out.append(Frame(len(out) + 1, sec + usec / 1e6, blob[pos:pos + caplen]))
        pos += caplen
    return out


def carrying(path: Path, token: str) -> Frame | None:
    """The first frame of PATH whose bytes hold TOKEN, or None."""
    want = token.encode()
    return next((f for f in frames(path) if want in f.data), None)
