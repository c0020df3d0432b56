"""Real HVM guest and PVH dom0 boots (issue 15) under Xen 4.17 in QEMU (TCG here).

- Debian's generic 6.1 kernel as an HVM guest (domU-hvm) of the small built
  kernel's dom0: xl starts qemu-system-xen (the dom0 image's variant with the
  device model), SeaBIOS boots the guest's AHCI disk, which the harness made
  bootable (boot/bootdisk.py: SYSLINUX, the kernel, initrd and command line),
  and the kernel's PVHVM binds xen-blkfront / xen-netfront (the NIC unplugged).
- The small built kernel (tests/real/test_boot.py's xen_kernel recipe) as a PVH
  dom0 (dom0-pvh: dom0=pvh dom0-iommu=none) with its PV and PVH guests; if that
  cannot work under nested TCG here, the measured reason goes into xen.toml's
  `not_run` (the matrix cell is then `not run`, never booted) and this test
  asserts the matrix says so."""

from __future__ import annotations

import pytest

from pvmatrix import catalog
from pvmatrix.analyze import analyze
from pvmatrix.boot import harness
from pvmatrix.boot.kernel import load

from conftest import pvmatrix
from matrix_helpers import CACHED_KERNEL
from pvmatrix.results import store

GENERIC = "debian:linux-image-amd64@bookworm"


def _explain(cell) -> str:
    ev = "\n".join(f"  L{e.line}: {e.text} [{e.note}]" for e in cell.verdict.evidence)
    return f"{cell.role}: {cell.verdict.status}: {cell.verdict.reason}\n{ev}\n  log: {cell.boot.serial}"



def _measured(role: str) -> str | None:
    """The reason recorded in xen.toml for Xen 4.17 not running ROLE here, if any."""
    return catalog.not_run(catalog.get("xen", "4.17"), role)


NOT_HERE = [r for r in ("domU-hvm", "dom0-pvh") if _measured(r) is not None]


@pytest.mark.skipif(not NOT_HERE, reason="every mode runs here: see below")
def test_modes_measured_not_to_run_here_are_not_run_cells_with_their_reason(tmp_path):
    """A real matrix run of the small kernel in each mode measured not to run
    here: each cell is `not run` with the measured reason, and no boot is made."""
    spec = tmp_path / "modes.toml"
    spec.write_text('[matrix]\nname = "modes"\nxen = ["4.17"]\nhardware = ["default"]\n'
                    f'roles = {NOT_HERE!r}\n'.replace("'", '"') + CACHED_KERNEL)
    done = pvmatrix("run", str(spec), "--results", str(tmp_path / "results"))
    assert done.returncode == 0, done.stdout + done.stderr
    run = store.all_runs(tmp_path / "results")[-1]
    got = {r["cell"]["role"]: r for r in run.records() if r["cell"].get("role")}
    for role in NOT_HERE:
        v = got[role]["verdict"]
        assert (v["status"], v["detail"]) == ("not run", "xen release"), v
        assert v["reason"] == f"Xen 4.17: {_measured(role)}"
        assert got[role]["boot"] is None


@pytest.mark.skipif(_measured("domU-hvm") is not None, reason="measured not to run here")
def test_debian_generic_as_hvm_guest_binds_the_pv_front_ends():
    """Its own dom0 too: the device model (QEMU) needs a dom0 kernel with what a
    distribution kernel has (POSIX timers, eventfd...), which the small one lacks."""
    generic = load(GENERIC)
    caps = {c.name: c for c in analyze(generic.image.parent).capabilities}
    assert caps["pvhvm"].supported, caps["pvhvm"].evidence
    cells = {c.role: c for c in harness.run_cells(generic, ["dom0", "domU-hvm"])}
    assert cells["dom0"].verdict.status == "pass", _explain(cells["dom0"])
    hvm = cells["domU-hvm"]
    assert hvm.verdict.status == "pass", _explain(hvm)
    assert hvm.verdict.reason.startswith("every expected marker seen: PV front-ends (xvda vbd, "
                                         "eth0 vif)"), _explain(hvm)


@pytest.mark.skipif(_measured("domU-hvm") is not None, reason="measured not to run here")
def test_a_kernel_without_pvhvm_passes_as_hvm_guest_on_emulated_devices():
    """A small 6.1 with no Xen support at all (tinyconfig + boot, AHCI, e1000):
    the static capability says no PVHVM, and as an HVM guest it reads its disk
    through ahci and pings through e1000, and the cell says so."""
    from pvmatrix import build
    from pvmatrix.boot.kernel import from_build
    from conftest import DEBIAN_61
    plain = from_build(build.build(DEBIAN_61, "tinyconfig", ["boot", "hw/ahci", "hw/e1000"]))
    caps = {c.name: c for c in analyze(plain.image.parent).capabilities}
    assert not caps["pvhvm"].supported, caps["pvhvm"].evidence
    cells = {c.role: c for c in harness.run_cells(load(GENERIC), ["dom0", "domU-hvm"],
                                                  guest_kernel=plain)}
    hvm = cells["domU-hvm"]
    assert hvm.verdict.status == "pass", _explain(hvm)
    assert hvm.verdict.reason == ("every expected marker seen: emulated devices "
                                  "(sda ahci, eth0 e1000)"), _explain(hvm)


@pytest.mark.skipif(_measured("dom0-pvh") is not None, reason="measured not to run here")
def test_small_kernel_as_pvh_dom0_hosts_a_pv_and_a_pvh_guest(xen_kernel):
    caps = {c.name: c for c in analyze(xen_kernel.image.parent).capabilities}
    assert caps["pvh_dom0"].supported, caps["pvh_dom0"].evidence
    cells = {c.role: c for c in harness.run_cells(xen_kernel, ["dom0-pvh"])}
    cell = cells["dom0-pvh"]
    assert cell.verdict.status == "pass", _explain(cell)
    assert cell.verdict.reason.endswith("its guests domU-pv, domU-pvh passed"), _explain(cell)
    modes = [e.text for e in cell.verdict.evidence if e.note == "mode"]
    assert modes and "dom0=pvh dom0-iommu=none" in modes[0]
