"""One Xen boot hosts the guests of two guest kernels (issue 17 item 2): the
small 6.1 Xen kernel as dom0, Debian's 6.1 cloud kernel and the small kernel
itself as guest kernels 1 and 2. Both kernels' cells get their verdicts from
one QEMU boot, each guest under a name of its own (pv_1, pv_2)."""

from __future__ import annotations

import re

import pytest

from pvmatrix.boot import harness, hosted, qemu
from pvmatrix.boot.kernel import load

CLOUD = "debian:linux-image-6.1.0-50-cloud-amd64@bookworm"
ROLES = ["domU-pv", "domU-pvh"]


def _explain(cell) -> str:
    ev = "\n".join(f"  L{e.line}: {e.text}" for e in cell.verdict.evidence)
    return f"{cell.role} of {cell.kernel}: {cell.verdict.status}: {cell.verdict.reason}\n{ev}" \
           f"\n  log: {cell.boot.serial}"


@pytest.mark.slow
def test_two_guest_kernels_share_one_xen_boot(xen_kernel, monkeypatch):
    boots = []
    real_run = qemu.run
    monkeypatch.setattr(qemu, "run", lambda *a, **kw: boots.append(a[0]) or real_run(*a, **kw))
    cloud = load(CLOUD)
    got = hosted.run_hosted(xen_kernel, [harness.Guest(cloud, ROLES),
                                          harness.Guest(xen_kernel, ROLES)])
    assert len(boots) == 1                                 # one QEMU boot for both kernels
    assert [[c.role for c in cells] for cells in got] == [ROLES, ROLES]
    assert [{c.guest for c in cells} for cells in got] == [{1}, {2}]
    assert [cells[0].kernel for cells in got] == [cloud.label, xen_kernel.label]
    for cells in got:
        for c in cells:
            assert c.verdict.status == "pass", _explain(c)
    serial = got[0][0].boot.serial.read_text(errors="replace")
    assert got[1][0].boot.serial == got[0][0].boot.serial
    for name in ("pv_1", "pvh_1", "pv_2", "pvh_2"):        # each guest's console, by its name
        assert f"PVMG {name}| PVM stage=done" in serial, name
    # each guest ran its own kernel: uname -r as guest-init.sh says it
    said = dict(re.findall(r"name=(pv_[12]) kernel=(\S+)", serial))
    assert "cloud" in said["pv_1"] and "cloud" not in said["pv_2"], said


GENERIC = "debian:linux-image-6.1.0-50-amd64@bookworm"


@pytest.mark.slow
def test_a_parked_dom0_is_restored_for_each_batch(private_cache, monkeypatch):
    """Debian's 6.1 as dom0 parks once; each later batch of guests restores it
    (no Xen or dom0 boot of its own) and its guests' verdicts come from the
    parked boot's lines followed by the restored one's."""
    boots = []
    real_run = qemu.run
    monkeypatch.setattr(qemu, "run", lambda *a, **kw: boots.append(a[0]) or real_run(*a, **kw))
    host, cloud = load(GENERIC), load(CLOUD)
    first = hosted.run_hosted(host, [harness.Guest(cloud, ["domU-pv"])], "4.17")
    assert len(boots) == 2 and "-incoming" in boots[1]     # parked, then restored
    again = hosted.run_hosted(host, [harness.Guest(host, ["domU-pv"])], "4.17")
    assert len(boots) == 3 and "-incoming" in boots[2]     # restored only
    for (c,) in (first[0], again[0]):
        assert c.verdict.status == "pass", _explain(c)
        assert c.boot.provenance["snapshot"]["key"] == first[0][0].boot.provenance["snapshot"]["key"]
        log = c.boot.serial.read_text(errors="replace")
        assert log.index("PVM stage=parked") < log.index("restored from snapshot") \
            < log.index("PVM stage=batch")
        assert "PVMDISK-pv-" in log
    said = [re.search(r"name=pv kernel=(\S+)", c.boot.serial.read_text()).group(1)
            for (c,) in (first[0], again[0])]
    assert "cloud" in said[0] and "cloud" not in said[1], said
    # a snapshot cut short is refused (QEMU would wait on it), deleted, and the
    # batch boots whole
    state = next(private_cache.glob("boot/snapshots/*/state.zst"))
    state.write_bytes(state.read_bytes()[:4096])
    (c,), = hosted.run_hosted(host, [harness.Guest(cloud, ["domU-pv"])], "4.17")
    assert len(boots) == 4 and "-incoming" not in boots[3]
    assert c.verdict.status == "pass" and "snapshot" not in c.boot.provenance, _explain(c)
    assert not state.parent.exists()
