"""An HVM guest's boot disk (boot/bootdisk.py), built from real files: a real
kernel (a source-built bzImage from pvmatrix's cache when there is one, else the
host's busybox binary, as the builder only places the file) and a real probe
initrd, then read back with mtools; and how the harness ships it to dom0."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from pvmatrix.boot import bootdisk, harness, initramfs, roles
from pvmatrix.errors import HarnessFault
from pvmatrix.kernel import Kernel, busybox

CACHE = Path(os.environ.get("PVMATRIX_CACHE") or Path.home() / ".cache" / "pvmatrix")
CMDLINE = "console=ttyS0,115200 loglevel=5 pvm.name=hvm pvm.ip=10.99.1.2 pvm.peer=10.99.1.1"


def _real_kernel() -> Path:
    for image in sorted(CACHE.glob("artifacts/*/bzImage")):
        if image.stat().st_size < 8 << 20:
            return image
    return busybox()


def _mtools(*argv: str) -> bytes:
    done = subprocess.run(argv, capture_output=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("bootdisk")
    kernel = _real_kernel()
    initrd = initramfs.probe(d / "initrd.gz", "guest-init.sh", None)
    return bootdisk.build(d / "boot.img", kernel, initrd, CMDLINE), kernel, initrd


def test_the_partition_holds_the_files_in_whole_mib():
    assert bootdisk.fs_sectors(0) == 2048                  # the slack alone: 1 MiB
    assert bootdisk.fs_sectors(1) == 4096
    assert bootdisk.fs_sectors((1 << 20) * 9 - bootdisk.SLACK) == 9 * 2048


def test_the_mbr_boots_the_one_active_partition_by_lba():
    code = b"\xfa" * 100
    sector = bootdisk.mbr(code, 2048, 22528, 0x0E)
    assert len(sector) == 512 and sector[:100] == code and sector[510:] == b"\x55\xaa"
    boot, ptype, start, count = struct.unpack_from("<B3xB3xII", sector, 446)
    assert (boot, ptype, start, count) == (0x80, 0x0E, 2048, 22528)
    assert sector[462:510] == bytes(48)                     # no other partition
    with pytest.raises(HarnessFault, match="more than an MBR's 440"):
        bootdisk.mbr(bytes(441), 2048, 1, 1)


def test_the_config_boots_the_kernel_at_once_with_its_command_line():
    cfg = bootdisk.syslinux_cfg(CMDLINE)
    assert "PROMPT 0\n" in cfg and "TIMEOUT 0\n" in cfg
    assert "  LINUX /vmlinuz\n  INITRD /initrd.gz\n" in cfg and f"  APPEND {CMDLINE}\n" in cfg


def test_a_boot_sector_that_is_no_fat_is_the_harness_fault():
    with pytest.raises(HarnessFault, match="no FAT12/16/32 boot sector"):
        bootdisk.fat_type(bytes(512))


def test_the_disk_boots_syslinux_from_its_active_partition(built):
    img, kernel, initrd = built
    data = img.read_bytes()
    start = bootdisk.PART_START * 512
    _, ptype, first, count = struct.unpack_from("<B3xB3xII", data, 446)
    assert first == bootdisk.PART_START and len(data) == start + count * 512
    assert data[:440] == bootdisk.SYSLINUX_MBR.read_bytes()[:440] and data[510:512] == b"\x55\xaa"
    vbr = data[start:start + 512]
    assert ptype == bootdisk.fat_type(vbr) and vbr[510:] == b"\x55\xaa"
    assert struct.unpack_from("<I", vbr, 0x1C)[0] == bootdisk.PART_START   # hidden sectors
    assert data[512:start] == bytes(start - 512)            # dom0's marker goes in sector 1
    fs = f"{img}@@{start}"
    listing = _mtools("mdir", "-a", "-b", "-i", fs, "::").decode()
    assert "::/LDLINUX.SYS" in listing.upper() and "::/LDLINUX.C32" in listing.upper()
    assert _mtools("mtype", "-i", fs, "::syslinux.cfg").decode() == bootdisk.syslinux_cfg(CMDLINE)
    assert _mtools("mcopy", "-i", fs, "::vmlinuz", "-") == kernel.read_bytes()
    assert _mtools("mcopy", "-i", fs, "::initrd.gz", "-") == initrd.read_bytes()


def test_each_hvm_guest_has_its_whole_command_line_and_the_others_none():
    guests = [roles.get("domU-pv"), roles.get("domU-hvm")]
    got = harness.hvm_cmdlines(guests, "abcd", {})
    hvm = roles.get("domU-hvm")
    assert got == {"hvm": f"{hvm.cmdline} pvm.name=hvm pvm.ip=10.99.2.2 pvm.peer=10.99.2.1"}


def test_dom0_gets_each_hvm_guests_boot_disk_by_its_name(tmp_path):
    k = Kernel("real", image=_real_kernel())
    loads = [(k, [roles.get("domU-pv")]), (k, [roles.get("domU-hvm")])]
    slots = harness.named(loads)
    guests = [g for _, g in slots]
    files = harness._guest_files(tmp_path, loads, slots, {},
                                 harness.hvm_cmdlines(guests, "abcd", {}))
    assert [f.boot_disks for f in files][0] == ()
    [(name, disk)] = files[1].boot_disks
    assert name == "hvm_2" and disk == tmp_path / "boot-hvm_2.img"
    overlay = initramfs.dom0_overlay(tmp_path / "o.cpio", k, files, {}, [])
    names = subprocess.run(["cpio", "-it"], stdin=overlay.open("rb"), capture_output=True,
                           text=True).stdout.split()
    assert "pvm/guest/2/boot-hvm_2.img" in names and not any(n.endswith("bzImage") for n in names)
    cfg = _mtools("mtype", "-i", f"{disk}@@{bootdisk.PART_START * 512}", "::syslinux.cfg").decode()
    assert "pvm.name=hvm_2 pvm.ip=10.99.2.2 pvm.peer=10.99.2.1" in cfg
