"""The hardware axis for real (issue 16): every emulated real device of the
`qemu` profile, one boot per kernel (the real tier stays short).

- Debian's 6.1 generic kernel as PV dom0 under the default Xen: every device
  bound, every disk read (the two USB disks through their xHCI hosts
  included), every NIC's link up and its frame found in QEMU's dump of it; the
  analyzer agrees on every device.
- Debian's 6.1 cloud kernel (it cannot be dom0: no XEN_DOM0) on bare metal:
  no AHCI, megasas or e1000e driver, and those devices fail, the static and
  the booted evidence agreeing; what it does drive passes its probes.
"""

from __future__ import annotations

import pytest

from pvmatrix import catalog
from pvmatrix.analyze import analyze
from pvmatrix.analyze.facts import AnalysisFacts
from pvmatrix.boot import facts as bootfacts, harness
from pvmatrix.boot.kernel import load

GENERIC = "debian:linux-image-6.1.0-50-amd64@bookworm"
CLOUD = "debian:linux-image-6.1.0-50-cloud-amd64@bookworm"
CLOUD_LACKS = {"ich9-ahci", "megasas", "megasas-gen2", "e1000e"}


def _checks(spec: str, role: str):
    kernel = load(spec)
    profile = catalog.profile("qemu")
    static = AnalysisFacts.of(analyze(spec, hardware="qemu")).devices
    cell = harness.run_cells(kernel, [role], device_names=profile.qemu_devices,
                             profile=profile)[0]
    return cell, {c.device: c for c in bootfacts.checks(cell, static)}


def _explain(cell, checks) -> str:
    lines = [f"{cell.role}: {cell.verdict.status}: {cell.verdict.reason}",
             *(c.text for c in checks.values()), f"log: {cell.boot.serial}"]
    return "\n".join(lines)


@pytest.mark.slow
def test_debian_61_generic_dom0_drives_every_qemu_device():
    cell, checks = _checks(GENERIC, "dom0")
    why = _explain(cell, checks)
    assert cell.verdict.status == "pass", why
    assert set(checks) == set(catalog.profile("qemu").qemu_devices), why
    for name, c in checks.items():
        assert c.bound and not c.disagree, f"{name}\n{why}"
        assert c.booted, f"{name}\n{why}"      # mptsas1068 too: its disk has a wwn
        hw = cell.devices[name]
        if name.endswith("xhci"):           # the USB disk, read through its host controller
            assert hw["disk_read"] and hw["block"], f"{name}: {hw}"
        if catalog.get("device", name).kind == "nic":
            assert hw["link"] and hw["frame"], f"{name}: {hw}"
            assert (cell.boot.dir / f"nic-{name}.pcap").stat().st_size > 24


@pytest.mark.slow
def test_debian_61_cloud_lacks_ahci_megasas_e1000e_and_both_evidences_agree():
    cell, checks = _checks(CLOUD, "baremetal")
    why = _explain(cell, checks)
    assert cell.verdict.status == "pass", why
    for name in CLOUD_LACKS:
        c = checks[name]
        assert c.static == "missing" and c.bound is None and not c.booted, f"{name}\n{why}"
        assert not c.disagree, f"{name}\n{why}"
    assert not any(c.disagree for c in checks.values()), why
