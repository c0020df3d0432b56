"""Real PCI passthrough to a PV guest (issue 16 item 5) under Xen 4.17 in QEMU
(TCG here): Debian's generic 6.1 kernel as dom0 hosting itself as a PV guest
(domU-pv-passthrough), in one Xen boot: dom0 loads xen-pciback, `xl
pci-assignable-add` takes the role's second e1000 (00:0f.0, in this boot only),
the guest's pci=[...] names it, and the guest binds e1000 through pcifront.

Measured: with QEMU's emulated VT-d (the role's `intel` IOMMU: q35 +
intel-iommu, Xen's iommu=1) the cell passes: the driver bound, its link up,
its frame seen leaving that NIC in QEMU's dump. Without an IOMMU (QEMU's pc
machine, as every other boot) it is `not run` with the toolstack's own line
(libxl's "failed to quarantine"); never a fail blamed on the kernel.
"""

from __future__ import annotations

import dataclasses

import pytest

from pvmatrix import catalog
from pvmatrix.analyze import analyze
from pvmatrix.boot import harness
from pvmatrix.boot.kernel import load

GENERIC = "debian:linux-image-amd64@bookworm"
ROLE = "domU-pv-passthrough"


def _explain(cell) -> str:
    ev = "\n".join(f"  L{e.line}: {e.text} [{e.note}]" for e in cell.verdict.evidence)
    return f"{cell.role}: {cell.verdict.status}: {cell.verdict.reason}\n{ev}\n  log: {cell.boot.serial}"


def _boot_and_check(kernel, expected: str) -> None:
    cells = {c.role: c for c in harness.run_cells(kernel, [ROLE], "4.17")}
    cell = cells[ROLE]
    v = cell.verdict
    print(f"\nMEASURED {ROLE} (Xen 4.17, {catalog.get('role', ROLE).passthrough.iommu}): "
          f"{v.status}: {v.reason}\n{_explain(cell)}")
    assert v.status == expected, _explain(cell)
    if v.status == "pass":
        assert "passed-through e1000: e1000 bound" in v.reason, _explain(cell)
        assert "link up, frame seen" in v.reason, _explain(cell)
    else:
        assert v.detail == "platform", _explain(cell)
        assert v.reason.startswith("PCI passthrough cannot work here: libxl: error: "), _explain(cell)
    assert any(e.note == "passthrough" for e in v.evidence), _explain(cell)


@pytest.fixture(scope="module")
def generic():
    kernel = load(GENERIC)
    caps = {c.name: c for c in analyze(kernel.image.parent).capabilities}
    assert caps["pv_domu_pcifront"].supported, caps["pv_domu_pcifront"].evidence
    assert caps["pciback"].supported, caps["pciback"].evidence
    return kernel


def test_debian_generic_passes_a_nic_through_to_itself_behind_qemus_vtd(generic):
    assert catalog.get("role", ROLE).passthrough.iommu == "intel"
    _boot_and_check(generic, "pass")


def test_without_an_iommu_it_is_not_run_with_libxls_line(generic, monkeypatch):
    role = catalog.get("role", ROLE)
    pt = dataclasses.replace(role.passthrough, iommu="none")
    monkeypatch.setitem(catalog._records("role"), ROLE, dataclasses.replace(role, passthrough=pt))
    _boot_and_check(generic, "not run")
