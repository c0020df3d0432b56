"""Every Xen release of the catalog but the default (which test_boot.py boots),
booted for real: dom0 with its probes, a PV and a PVH domU, with the dom0
userspace from the release's own suite. Adding a release to data/xen.toml adds
its test here."""

from __future__ import annotations

import pytest

from pvmatrix import catalog
from pvmatrix.boot import harness


RELEASES = [x for x in catalog.names("xen") if x != catalog.default("xen").name]



@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_dom0_pv_and_pvh_boot_on_each_xen_release(xen_kernel, release):
    cells = {c.role: c for c in harness.run_cells(xen_kernel, ["dom0", "domU-pv", "domU-pvh"], release)}
    for role, cell in cells.items():
        assert cell.verdict.status == "pass", (role, cell.verdict.reason, str(cell.boot.serial))
        assert cell.xen == release
    dom0 = cells["dom0"]
    assert dom0.devices["e1000e"]["driver"] == "e1000e" and dom0.devices["e1000e"]["netif"]
    banner = dom0.boot.serial.read_text(errors="replace").splitlines()[0]
    assert banner.startswith(f"(XEN) Xen version {release}."), banner
    want = catalog.get("xen", release)
    used = dom0.boot.provenance["dom0_userspace"]
    assert (used["suite"], used["utils"]) == (want.suite, want.utils)
    assert dom0.boot.provenance["xen"]["package"].startswith(want.package + "_")
