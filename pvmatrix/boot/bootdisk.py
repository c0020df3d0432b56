"""An HVM guest's boot disk: a raw image SeaBIOS boots like a PC's disk (syslinux's
MBR, a FAT partition with SYSLINUX, the kernel, its initrd and its command line),
made here without root (mtools and syslinux's mtools installer).

Why not QEMU's direct kernel boot (xl kernel=/ramdisk=): qemu-xen's fw_cfg has no
DMA, so SeaBIOS's linuxboot ROM reads the kernel with `rep insb` on fw_cfg's data
port, which qemu-xen in dom0 serves one byte per item. Under nested TCG 10.4 MB
(Debian 6.1's bzImage and the probe initrd) had not loaded in 600 s (under 17 KB/s).
On the guest's AHCI disk (xl hdtype="ahci") SeaBIOS reads 127 sectors per command,
which QEMU copies into guest memory by DMA in one go.

Sector 1 (in the gap before the partition) stays zero: dom0 writes the guest's
PVMDISK marker there, as on every guest's disk (data/boot/dom0-init.sh).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

from .. import settings
from ..errors import HarnessFault

SECTOR = 512
PART_START = 2048                 # 1 MiB, the usual first partition; sectors 1.. are free
SLACK = 1 << 20                   # FAT, directory, ldlinux.sys/.c32 (180 KB) and spare
MBR_CODE = 440                    # boot code; then disk id, partition table, signature
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
TOOLS = ("mformat", "mcopy", "syslinux")
# partition type by the FAT mformat chose (its size decides): the MBR code boots
# the active partition whatever its type, Linux reads the type
FAT_TYPES = {b"FAT12   ": 0x01, b"FAT16   ": 0x0E, b"FAT32   ": 0x0C}
KERNEL, INITRD = "vmlinuz", "initrd.gz"


def fs_sectors(payload: int) -> int:
    """Sectors of the FAT partition holding PAYLOAD bytes of files, whole MiBs."""
    mib = -(-(payload + SLACK) // (1 << 20))
    return mib * (1 << 20) // SECTOR


def partition_entry(start: int, sectors: int, ptype: int) -> bytes:
    """One MBR partition table entry: active, LBA START and SECTORS; CHS fields
    say "use LBA" (0xFEFFFF), as tools write them for disks past CHS."""
    chs = b"\xfe\xff\xff"
    return struct.pack("<B3sB3sII", 0x80, chs, ptype, chs, start, sectors)


def mbr(code: bytes, start: int, sectors: int, ptype: int) -> bytes:
    """Sector 0: CODE (syslinux's mbr.bin, it boots the active partition), the
    partition table with one entry, the 0x55AA signature."""
    if len(code) > MBR_CODE:
        raise HarnessFault(f"{SYSLINUX_MBR}: {len(code)} bytes, more than an MBR's {MBR_CODE}")
    table = partition_entry(start, sectors, ptype) + bytes(48)
    return code.ljust(MBR_CODE, b"\0") + bytes(6) + table + b"\x55\xaa"


def fat_type(boot_sector: bytes) -> int:
    """The partition type for the FAT whose boot sector this is."""
    for at in (0x36, 0x52):              # FAT12/16's field, then FAT32's
        if (name := boot_sector[at:at + 8]) in FAT_TYPES:
            return FAT_TYPES[name]
    raise HarnessFault(f"mformat wrote no FAT12/16/32 boot sector ({boot_sector[0x36:0x3e]!r})")


def syslinux_cfg(cmdline: str) -> str:
    """SYSLINUX's configuration: boot the kernel with its initrd and CMDLINE at once."""
    return (f"DEFAULT pvm\nPROMPT 0\nTIMEOUT 0\nLABEL pvm\n  LINUX /{KERNEL}\n"
            f"  INITRD /{INITRD}\n  APPEND {cmdline}\n")


def _run(argv: list[str], what: Path) -> None:
    env = settings.current().child_env(MTOOLS_SKIP_CHECK="1")   # no geometry checks
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        err = (done.stderr or done.stdout).strip().splitlines()
        raise HarnessFault(f"{what}: {argv[0]} failed: {err[-1] if err else done.returncode}")


def check_tools() -> None:
    """HarnessFault naming what is missing (.ci/setup installs them)."""
    missing = [t for t in TOOLS if not shutil.which(t)] + (
        [str(SYSLINUX_MBR)] if not SYSLINUX_MBR.is_file() else [])
    if missing:
        raise HarnessFault(f"an HVM guest's boot disk needs {', '.join(missing)} "
                           "(apt-get install syslinux syslinux-common mtools)")


def build(out: Path, kernel: Path, initrd: Path, cmdline: str) -> Path:
    """OUT: a disk booting KERNEL with INITRD and CMDLINE through SeaBIOS."""
    check_tools()
    sectors = fs_sectors(kernel.stat().st_size + initrd.stat().st_size + len(cmdline))
    off = PART_START * SECTOR
    with open(out, "wb") as fh:
        fh.truncate(off + sectors * SECTOR)
    fs = f"{out}@@{off}"
    _run(["mformat", "-i", fs, "-T", str(sectors), "-h", "64", "-s", "32",
          "-H", str(PART_START), "-v", "PVMBOOT", "::"], out)
    _run(["syslinux", "--offset", str(off), "--install", str(out)], out)
    cfg = out.with_name(out.name + ".cfg")
    cfg.write_text(syslinux_cfg(cmdline))
    try:
        for src, name in ((kernel, KERNEL), (initrd, INITRD), (cfg, "syslinux.cfg")):
            _run(["mcopy", "-i", fs, str(src), f"::{name}"], out)
    finally:
        cfg.unlink(missing_ok=True)
    with open(out, "r+b") as fh:
        fh.seek(off)
        ptype = fat_type(fh.read(SECTOR))
        fh.seek(0)
        fh.write(mbr(SYSLINUX_MBR.read_bytes(), PART_START, sectors, ptype))
    return out
