"""Ground truth that needs kernels of its own: the small 6.1 Xen kernel with
one option turned off by a fragment (each a real build, ~5 min cold on 2
cores, cached afterwards)."""

from __future__ import annotations

import pytest

from pvmatrix import build
from pvmatrix.boot import harness
from pvmatrix.boot.kernel import from_build

from conftest import DEBIAN_61

FRAGMENTS = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]


def _kernel_without(tmp_path_factory, option: str):
    frag = tmp_path_factory.mktemp("frag") / f"no-{option.lower()}.config"
    frag.write_text(f"# CONFIG_{option} is not set\n")
    built = build.build(DEBIAN_61, "tinyconfig", FRAGMENTS + [str(frag)])
    assert f"CONFIG_{option}=y" not in built.kernel.config.read_text()
    return from_build(built)


def _explain(cell) -> str:
    ev = "\n".join(f"  L{e.line}: {e.text}" for e in cell.verdict.evidence)
    return f"{cell.role}: {cell.verdict.status}: {cell.verdict.reason}\n{ev}\n  log: {cell.boot.serial}"


@pytest.mark.slow
def test_without_xen_pvh_domu_pvh_fails_with_evidence(tmp_path_factory):
    kernel = _kernel_without(tmp_path_factory, "XEN_PVH")
    cells = {c.role: c for c in harness.run_cells(kernel, ["dom0", "domU-pv", "domU-pvh"])}
    assert cells["dom0"].verdict.status == "pass", _explain(cells["dom0"])
    assert cells["domU-pv"].verdict.status == "pass", _explain(cells["domU-pv"])
    pvh = cells["domU-pvh"].verdict
    assert pvh.detail == "failed", _explain(cells["domU-pvh"])
    assert pvh.evidence and all(e.line > 0 for e in pvh.evidence)
    assert any("create" in e.text or "error" in e.text.lower() for e in pvh.evidence)


@pytest.mark.slow
def test_without_file_locking_toolstack_fails_and_domus_not_run(tmp_path_factory):
    kernel = _kernel_without(tmp_path_factory, "FILE_LOCKING")
    cells = {c.role: c for c in harness.run_cells(kernel, ["dom0", "domU-pv", "domU-pvh"])}
    dom0 = cells["dom0"].verdict
    assert dom0.detail == "failed", _explain(cells["dom0"])
    assert "toolstack" in dom0.reason and "lock" in dom0.reason.lower(), dom0.reason
    assert any("lock" in e.text.lower() for e in dom0.evidence)
    for role in ("domU-pv", "domU-pvh"):
        v = cells[role].verdict
        assert (v.status, v.reason) == ("blocked", "dom0 toolstack"), _explain(cells[role])


CLOUD = "debian:linux-image-6.1.0-50-cloud-amd64@bookworm"


@pytest.mark.slow
def test_debian_cloud_kernel_no_dom0_but_pv_domu(tmp_path_factory):
    """Debian's 6.1 cloud flavour: XEN_PV and XEN_PVH, no XEN_DOM0."""
    from pvmatrix.boot.kernel import load
    cloud = load(CLOUD)
    as_dom0 = harness.run_cells(cloud, ["dom0"])[0]
    # without XEN_DOM0 it halts before its init (59 s in): judged at the halt
    assert as_dom0.verdict.detail == "halted", _explain(as_dom0)     # at its halt, not the deadline
    assert as_dom0.verdict.evidence
    host = from_build(build.build(DEBIAN_61, "tinyconfig", FRAGMENTS))
    cells = {c.role: c for c in harness.run_cells(host, ["dom0", "domU-pv"], guest_kernel=cloud)}
    assert cells["dom0"].verdict.status == "pass", _explain(cells["dom0"])
    assert cells["domU-pv"].verdict.status == "pass", _explain(cells["domU-pv"])
    assert cells["domU-pv"].kernel == cloud.label
