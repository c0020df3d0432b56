"""Static analyzer units on real bytes: the Xen notes of Debian's 6.1 vmlinux,
a real Debian module, this machine's own lspci output and sysfs."""

import bz2
import gzip
import lzma
import struct
import subprocess

import pytest

from conftest import FIXTURES, pvmatrix
from pvmatrix.analyze import bzimage, coverage, hardware, hwimport, kconfig, modinfo, modules, notes, verdicts
from pvmatrix.errors import PvmError

HERE = FIXTURES / "analyze"
KO = HERE / "debian-6.1-pvpanic-pci.ko"
PVPANIC = hardware.PciDevice("QEMU pvpanic", 0x1B36, 0x0011, 0x08, 0x80, 0x1AF4, 0x1100, 0x00)


def test_xen_notes_of_debian_61():
    found = notes.parse_notes((HERE / "debian-6.1-generic.notes").read_bytes())
    assert found.values["ENTRY"] == 0xFFFFFFFF830771C0
    assert found.values["PHYS32_ENTRY"] == 0x1000850
    assert found.values["FEATURES"] == "!writable_page_tables|pae_pgdir_above_4gb"
    assert found.values["LOADER"] == "generic" and found.values["GUEST_OS"] == "linux"
    assert found.supported_feature(notes.XENFEAT_DOM0) is True
    assert "HYPERCALL_PAGE" not in found.values   # gone from 6.1.176 (stable backport)
    assert found.build_salt == "6.1.0-50-amd64"


def test_dom0_bit_counts_only_from_65():
    found = notes.parse_notes((HERE / "debian-6.1-generic.notes").read_bytes())
    found.values["SUPPORTED_FEATURES"] &= ~(1 << notes.XENFEAT_DOM0)
    config = kconfig.parse_config("CONFIG_XEN_PV=y\nCONFIG_XEN_DOM0=y\n", "test")
    assert verdicts.pv_dom0(found, config, (6, 1)).supported is True
    late = verdicts.pv_dom0(found, config, (6, 5))
    assert late.supported is False and "dom0 bit 11 clear" in late.evidence[0]
    assert verdicts.pv_dom0(found, None, (6, 1)).supported is None


def test_capabilities_need_pv_entry_and_config():
    found = notes.parse_notes((HERE / "debian-6.1-generic.notes").read_bytes())
    del found.values["ENTRY"]
    config = kconfig.parse_config("CONFIG_XEN_DOM0=y\nCONFIG_XENFS=m\n", "test")
    caps = {c.name: c for c in verdicts.capabilities(found, config, None, (6, 1))}
    assert caps["pv_domu"].supported is False and caps["pv_dom0"].supported is False
    assert caps["pvh_domu"].supported is True
    assert caps["xenfs"].form == "module" and caps["file_locking"].supported is False
    assert caps["dom0_toolstack"].supported is False


def test_modinfo_of_a_real_module():
    info = modinfo.parse_modinfo(KO.read_bytes())
    assert info["name"] == ["pvpanic_pci"]
    assert info["alias"] == ["pci:v00001B36d00000011sv*sd*bc*sc*i*"]
    with pytest.raises(ValueError, match="not an ELF"):
        modinfo.parse_modinfo(b"hello world" * 10)
    with pytest.raises(ValueError, match="truncated"):
        modinfo.parse_modinfo(KO.read_bytes()[:4096])


@pytest.fixture
def module_tree(tmp_path, private_cache):
    """A modules tree with one real module as .ko, .ko.xz and .ko.zst, and junk."""
    root = tmp_path / "lib" / "modules" / "6.1.0-test"
    (root / "kernel" / "a").mkdir(parents=True)
    (root / "kernel" / "b").mkdir()
    raw = KO.read_bytes()
    (root / "kernel" / "a" / "pvpanic-pci.ko").write_bytes(raw)
    (root / "kernel" / "b" / "pvpanic-xz.ko.xz").write_bytes(lzma.compress(raw, lzma.FORMAT_XZ))
    subprocess.run(["zstd", "-q", str(KO), "-o", str(root / "kernel" / "b" / "pvpanic-zst.ko.zst")], check=True)
    (root / "kernel" / "b" / "notelf.ko").write_bytes(b"#!/bin/sh\necho not a module\n")
    (root / "kernel" / "b" / "broken.ko.xz").write_bytes(b"\xfd7zXZ\x00garbage")
    (root / "modules.builtin").write_text("kernel/drivers/nvme/host/nvme.ko\n")
    return root


def test_scan_reads_every_compression_and_reports_bad_files(module_tree):
    scan = modules.scan_modules(module_tree, jobs=1)
    good = [m for m in scan.modules if not m.error]
    assert len(scan.modules) == 5 and len(good) == 3
    assert all(m.name == "pvpanic_pci" and m.pci_aliases == ["pci:v00001B36d00000011sv*sd*bc*sc*i*"]
               for m in good)
    bad = {m.path: m.error for m in scan.unreadable}
    assert "not an ELF" in bad["kernel/b/notelf.ko"]
    assert "kernel/b/broken.ko.xz" in bad
    assert scan.builtin == {"nvme"}


def test_scan_cache_is_keyed_by_content(module_tree):
    first = modules.scan_modules(module_tree, jobs=1)
    again = modules.scan_modules(module_tree, jobs=1)
    assert first.from_cache == 0 and again.from_cache == 5
    assert [m.pci_aliases for m in again.modules] == [m.pci_aliases for m in first.modules]
    # same path, new content: must be read again, not served from the cache
    (module_tree / "kernel" / "b" / "notelf.ko").write_bytes(KO.read_bytes())
    third = modules.scan_modules(module_tree, jobs=1)
    assert third.from_cache == 4
    assert [m.path for m in third.unreadable] == ["kernel/b/broken.ko.xz"]
    # the same content elsewhere is a cache hit by digest
    assert len({m.digest for m in third.modules if m.path.endswith(".ko")}) == 1


def test_scan_in_a_pool_matches_inline(module_tree, monkeypatch):
    monkeypatch.setattr(modules, "POOL_MIN_FILES", 1)
    pooled = modules.scan_modules(module_tree, jobs=2, use_cache=False)
    inline = modules.scan_modules(module_tree, jobs=1, use_cache=False)
    assert [(m.path, m.pci_aliases, m.error) for m in pooled.modules] == \
        [(m.path, m.pci_aliases, m.error) for m in inline.modules]


def test_alias_matching_as_depmod(module_tree):
    scan = modules.scan_modules(module_tree, jobs=1)
    hit = coverage.cover_device(PVPANIC, None, scan)
    assert hit.status == "module" and hit.driver == "pvpanic_pci"
    other = hardware.PciDevice("not pvpanic", 0x1B36, 0x0012, 0x08, 0x80)
    assert coverage.cover_device(other, None, scan).status == "missing"


def test_unknown_subsystem_matches_only_wildcards():
    dev = hardware.PciDevice("x", 0x8086, 0x10D3, 0x02, 0x00)
    assert dev.modalias == "pci:v00008086d000010D3svXXXXXXXXsdXXXXXXXXbc02sc00iXX"
    from fnmatch import fnmatchcase
    assert fnmatchcase(dev.modalias, "pci:v00008086d000010D3sv*sd*bc*sc*i*")
    assert not fnmatchcase(dev.modalias, "pci:v00008086d000010D3sv00001028sd*bc*sc*i*")


def test_builtin_driver_from_config():
    config = kconfig.parse_config("CONFIG_SATA_AHCI=y\nCONFIG_E1000E=m\n", "test")
    profile = hardware.load_profile("default")
    by_qemu = {c.device.qemu: c for c in coverage.cover(profile, config, None)}
    assert by_qemu["ich9-ahci"].status == "built-in" and by_qemu["ich9-ahci"].driver == "ahci"
    assert "CONFIG_SATA_AHCI=y" in by_qemu["ich9-ahci"].evidence[0]
    assert by_qemu["e1000e"].status == "module"   # =m, no tree to check
    none = kconfig.parse_config("CONFIG_XEN=y\n", "test")
    assert all(c.status == "missing" for c in coverage.cover(profile, none, None))


def test_shipped_profiles():
    qemu = {d.qemu for d in hardware.load_profile("qemu").devices}
    assert {"e1000", "e1000e", "rtl8139", "vmxnet3", "ich9-ahci", "nvme", "megasas", "megasas-gen2",
            "mptsas1068", "lsi53c895a", "pvscsi", "qemu-xhci"} <= qemu
    default = hardware.load_profile("default")
    assert [d.qemu for d in default.devices] == ["e1000e", "ich9-ahci"]
    server = hardware.load_profile("dell-poweredge-r320")
    assert len(server.devices) >= 4 and all(d.subvendor == 0x1028 for d in server.devices)
    with pytest.raises(PvmError, match="unknown hardware profile 'nope'"):
        hardware.load_profile("nope")


def test_profile_roundtrips_through_toml(tmp_path):
    profile = hardware.load_profile("qemu")
    path = tmp_path / "p.toml"
    path.write_text(profile.to_toml())
    assert hardware.load_profile(path).devices == profile.devices


def test_import_sysfs_gives_the_kernels_modalias():
    devices = hwimport.from_sysfs(HERE / "pci-host" / "sysfs")
    assert devices
    for dev in devices:
        real = (HERE / "pci-host" / "sysfs" / "devices" / dev.slot / "modalias").read_text().strip()
        assert dev.modalias == real


def test_import_lspci_forms_agree_with_sysfs():
    sysfs = {d.slot[5:]: d for d in hwimport.from_sysfs(HERE / "pci-host" / "sysfs")}
    vmm, kind = hwimport.parse_lspci((HERE / "pci-host" / "lspci-nvmm.txt").read_text())
    nn, kind2 = hwimport.parse_lspci((HERE / "pci-host" / "lspci-nn.txt").read_text())
    assert (kind, kind2) == ("lspci -nvmm", "lspci -nn")
    assert len(vmm) == len(nn) == len(sysfs)
    for a, b in zip(vmm, nn):
        ref = sysfs[a.slot]
        assert (a.vendor, a.device, a.pci_class, a.subclass, a.prog_if) == \
            (ref.vendor, ref.device, ref.pci_class, ref.subclass, ref.prog_if)
        assert (b.vendor, b.device, b.pci_class, b.subclass) == (ref.vendor, ref.device, ref.pci_class, ref.subclass)
        assert b.subvendor is None   # lspci -nn does not print it


def test_import_nnv_reads_subsystem_and_progif():
    text = ("00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA "
            "Controller [AHCI mode] [8086:2922] (rev 02) (prog-if 01 [AHCI 1.0])\n"
            "\tSubsystem: Red Hat, Inc. QEMU Virtual Machine [1af4:1100]\n"
            "\tFlags: bus master, fast devsel, latency 0, IRQ 16\n")
    [dev], _ = hwimport.parse_lspci(text)
    assert dev.modalias == "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"
    with pytest.raises(PvmError, match="-nn"):
        hwimport.parse_lspci("00:1f.2 SATA controller: Intel Corporation 82801IR\n", "x.txt")


def test_hw_import_cli(tmp_path):
    out = tmp_path / "host.toml"
    done = pvmatrix("hw", "import", str(HERE / "pci-host" / "lspci-nvmm.txt"), "--name", "host", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert hardware.load_profile(out).name == "host"
    bad = pvmatrix("hw", "import", str(KO))
    assert bad.returncode == 2 and str(KO) in bad.stderr


# --- bzImage: the compressions, on real bytes ------------------------------------------------

PAYLOAD = (HERE / "debian-6.1-generic.notes").read_bytes() * 8


@pytest.mark.parametrize("kind, pack", [
    ("gzip", lambda d: gzip.compress(d)),
    ("xz", lambda d: lzma.compress(d, lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)),
    ("lzma", lambda d: lzma.compress(d, lzma.FORMAT_ALONE)),
    ("bzip2", lambda d: bz2.compress(d)),
    ("lz4", lambda d: subprocess.run(["lz4", "-l", "-c", "-q"], input=d, capture_output=True, check=True).stdout),
    ("zstd", lambda d: subprocess.run(["zstd", "-c", "-q"], input=d, capture_output=True, check=True).stdout),
])
def test_every_kernel_compression(kind, pack):
    data = pack(PAYLOAD)
    assert bzimage.compression_of(data) == kind
    assert bzimage.decompress(kind, data + struct.pack("<I", len(PAYLOAD))) == PAYLOAD


def test_unknown_compression_names_the_file():
    with pytest.raises(PvmError, match="img: unknown compression"):
        bzimage.compression_of(b"\x00\x01\x02\x03\x04\x05", "img")


def test_not_a_bzimage(tmp_path):
    path = tmp_path / "notakernel"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(PvmError, match=f"{path}: not a bzImage"):
        bzimage.read_boot_image(path)
    from pvmatrix.analyze import analyze
    with pytest.raises(PvmError, match=f"{path}: not a kernel"):
        analyze(path)


def test_ikconfig_blob():
    text = "# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_XEN_PV=y\n"
    blob = b"junk" + kconfig.IKCFG_START + gzip.compress(text.encode()) + kconfig.IKCFG_END + b"more"
    found = kconfig.embedded_config(blob, "vmlinux")
    assert found.state("XEN_PV") == "y" and found.version == "6.1.0"
    assert kconfig.embedded_config(b"nothing here", "vmlinux") is None
