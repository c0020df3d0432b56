"""Import of real servers' lspci dumps (tests/fixtures/analyze/machines, from
hw-probe's public linuxhw/LsPCI) and their coverage by the real Debian
kernels' modules.alias and config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pvmatrix.analyze.coverage import cover, machine
from pvmatrix.analyze.hwimport import import_profile, parse_lspci
from pvmatrix.analyze.kconfig import read_config
from pvmatrix.analyze.modules import scan_alias_file

FIX = Path(__file__).parent.parent / "fixtures" / "analyze" / "machines"
MACHINES = {"dell-poweredge-860": "6.1.0-50-amd64", "dell-poweredge-2950": "6.1.0-50-amd64",
            "dell-poweredge-r220": "5.10.0-32-amd64"}
HEADER = re.compile(r"^(\S+) .*\[([0-9a-f]{4})\]: .* \[([0-9a-f]{4}:[0-9a-f]{4})\]", re.M)


def _blocks(text: str) -> dict[str, str]:
    return {b.split(" ", 1)[0]: b for b in text.strip().split("\n\n")}


@pytest.mark.parametrize("name", MACHINES)
def test_every_id_as_the_capture_gives_it(name):
    text = (FIX / f"{name}.lspci-vvnn.txt").read_text()
    profile = import_profile(FIX / f"{name}.lspci-vvnn.txt")
    assert [d.slot for d in profile.devices] == [m[0] for m in HEADER.findall(text)]
    for dev, block in zip(profile.devices, _blocks(text).values()):
        slot, cls, ids = HEADER.match(block).groups()
        sub = re.search(r"Subsystem: .*\[([0-9a-f]{4}:[0-9a-f]{4})\]", block)
        assert dev.ids == ids + (f" {sub[1]}" if sub else ""), slot
        assert dev.pci_class_code == cls
        pi = re.search(r"\(prog-if ([0-9a-f]{2})", block.splitlines()[0])
        assert dev.prog_if == (int(pi[1], 16) if pi else 0), slot   # verbose: none printed = 00


@pytest.mark.parametrize("name", MACHINES)
def test_no_bound_device_is_missing(name):
    """A device the capture shows bound is never missing under a kernel that has
    one of its modules (modules.alias) or its built-in driver (config)."""
    release = MACHINES[name]
    scan = scan_alias_file(FIX / f"modules.alias-{release}")
    config = read_config(FIX / f"config-{release}")
    profile = import_profile(FIX / f"{name}.lspci-vvnn.txt")
    blocks = _blocks((FIX / f"{name}.lspci-vvnn.txt").read_text())
    have = {m.name for m in scan.modules}
    checked = 0
    for cov in cover(profile, config, scan):
        block = blocks[cov.device.slot]
        mods = re.search(r"Kernel modules: (.*)", block)
        in_kernel = (mods and have & {m.strip() for m in mods[1].split(",")}) or \
            (cov.device.bound == "pcieport" and config.state("PCIEPORTBUS") == "y")
        if cov.device.bound and in_kernel and not cov.apart:
            checked += 1
            assert cov.covered, (cov.device.slot, cov.device.bound, cov.evidence)
    assert checked >= 8


def test_machine_coverage_counts_apart_and_names_missing():
    profile = import_profile(FIX / "dell-poweredge-2950.lspci-vvnn.txt")
    scan = scan_alias_file(FIX / "modules.alias-6.1.0-50-amd64")
    result = machine(cover(profile, read_config(FIX / "config-6.1.0-50-amd64"), scan))
    assert {d.device.pci_class_code for d in result.apart} == {"0600", "0601"}
    assert len(result.apart) == 9
    assert not result.missing                         # root ports: pcieport, built in
    ports = [d for d in result.counted if d.device.bound == "pcieport"]
    assert ports and all(d.status == "built-in" and d.driver == "pcieport" for d in ports)
    uhci = [d for d in result.counted if d.device.bound == "uhci_hcd"]
    assert uhci and all(d.driver == "uhci_hcd" for d in uhci)
    assert result.summary == "31/31 devices covered (9 apart)"


def test_missing_drivers_are_named():
    """A kernel whose modules lack igb and megaraid_sas (config =m, no module:
    as a cloud flavour ships) misses the quad NIC's four ports and the RAID."""
    profile = import_profile(FIX / "dell-poweredge-2950.lspci-vvnn.txt")
    scan = scan_alias_file(FIX / "modules.alias-6.1.0-50-amd64")
    scan.modules = [m for m in scan.modules if m.name not in ("igb", "megaraid_sas")]
    result = machine(cover(profile, read_config(FIX / "config-6.1.0-50-amd64"), scan))
    assert sorted(d.device.slot for d in result.missing) == ["01:00.0", "0a:00.0", "0a:00.1",
                                                             "0b:00.0", "0b:00.1"]
    assert result.summary == "26/31 devices covered (9 apart)"


def test_verbose_dump_missing_prog_if_is_00_terse_is_unknown():
    text = (FIX / "dell-poweredge-860.excerpt-verbatim.txt").read_text()
    devices, _ = parse_lspci(text)
    assert [d.prog_if for d in devices] == [0, 0]
    assert devices[0].bound == "i3000_edac" and devices[0].ids == "8086:2778 1028:01e6"
    terse = "\n".join(line for line in text.splitlines() if not line.startswith("\t"))
    assert [d.prog_if for d in parse_lspci(terse)[0]] == [None, 0]


def test_bridge_subsystem_from_its_capability():
    text = (FIX / "dell-poweredge-r220.lspci-vvnn.txt").read_text()
    port = next(d for d in parse_lspci(text)[0] if d.slot == "00:1c.0")
    assert (port.subvendor, port.subdevice) == (0x1028, 0x05e5)
    assert port.modalias.startswith("pci:v00008086d00008C10sv00001028sd000005E5bc06sc04i00")


def test_nnvmm_with_names():
    """`lspci -nnvmm` writes names with the ids in brackets; no ProgIf means 00."""
    text = ("Slot:\t00:1f.2\nClass:\tSATA controller [0106]\nVendor:\tIntel Corporation [8086]\n"
            "Device:\t8 Series/C220 Series Chipset Family 6-port SATA Controller 1 [AHCI mode] [8c02]\n"
            "SVendor:\tDell [1028]\nSDevice:\t8 Series/C220 Series Chipset Family 6-port SATA "
            "Controller 1 [AHCI mode] [05e5]\nRev:\t05\nProgIf:\t01\nDriver:\tahci\n\n"
            "Slot:\t00:00.0\nClass:\tHost bridge [0600]\nVendor:\tIntel Corporation [8086]\n"
            "Device:\tXeon E3-1200 v3 Processor DRAM Controller [0c08]\nRev:\t06\n")
    devices, kind = parse_lspci(text)
    assert kind == "lspci -nvmm"
    assert [d.ids for d in devices] == ["8086:8c02 1028:05e5", "8086:0c08"]
    assert [d.prog_if for d in devices] == [1, 0]
    assert devices[0].bound == "ahci" and devices[0].pci_class_code == "0106"


def test_ids_lower_case_like_lspci():
    devices, _ = parse_lspci((FIX / "dell-poweredge-2950.lspci-vvnn.txt").read_text())
    raid = next(d for d in devices if d.slot == "01:00.0")
    assert raid.ids == "1000:0060 1028:1f0c"
