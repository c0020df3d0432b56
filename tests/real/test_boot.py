"""Real boots of a real kernel: the builder's small 6.1 Xen kernel, bare metal
and under Xen 4.17 (PV dom0 with an emulated e1000e, PV and PVH domU), all in
QEMU (TCG here). One Xen boot is shared by the dom0 and domU tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pvmatrix.boot import harness, qemu
from pvmatrix.errors import PvmError

from conftest import REPO, interruptible




@pytest.fixture(scope="session")
def xen_cells(xen_kernel):
    cells = harness.run_cells(xen_kernel, ["dom0", "domU-pv", "domU-pvh"])
    return {c.role: c for c in cells}


def _explain(cell) -> str:
    ev = "\n".join(f"  L{e.line}: {e.text}" for e in cell.verdict.evidence)
    return f"{cell.role}: {cell.verdict.status}: {cell.verdict.reason}\n{ev}\n  log: {cell.boot.serial}"


def test_baremetal_ok_with_e1000e_bound(xen_kernel):
    cell = harness.run_cells(xen_kernel, ["baremetal"])[0]
    assert cell.verdict.status == "pass", _explain(cell)
    assert cell.devices["e1000e"]["driver"] == "e1000e"
    assert cell.devices["e1000e"]["netif"], "e1000e bound but no network interface"
    # this kernel has no AHCI driver: the probe must say so, not guess
    assert cell.devices["ich9-ahci"]["driver"] is None
    assert cell.boot.peak_rss_mb > 0 and cell.boot.wall_s < 60


def test_dom0_ok_with_e1000e_bound(xen_cells):
    cell = xen_cells["dom0"]
    assert cell.verdict.status == "pass", _explain(cell)
    assert cell.devices["e1000e"]["driver"] == "e1000e"
    texts = [e.text for e in cell.verdict.evidence]
    assert any("check=xl-list ok=1" in t for t in texts)
    assert cell.seconds is not None and cell.boot.peak_rss_mb > 0


def test_domu_pv_ok(xen_cells):
    cell = xen_cells["domU-pv"]
    assert cell.verdict.status == "pass", _explain(cell)
    texts = " ".join(e.text for e in cell.verdict.evidence)
    assert "probe=disk" in texts and "PVMDISK-pv-" in texts and "probe=net" in texts


def test_domu_pvh_ok(xen_cells):
    cell = xen_cells["domU-pvh"]
    assert cell.verdict.status == "pass", _explain(cell)


def test_one_shared_xen_boot(xen_cells):
    dirs = {c.boot.dir for c in xen_cells.values()}
    assert len(dirs) == 1
    assert not any(Path(d, "initrd.cpio").exists() for d in dirs), "big initrd left behind"


def test_refuses_boot_that_does_not_fit(xen_kernel, monkeypatch):
    monkeypatch.setattr(qemu, "mem_available_mb", lambda: 300)
    with pytest.raises(PvmError, match="only 300 MB are available"):
        harness.run_cells(xen_kernel, ["baremetal"])


def _qemu_children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,comm"], capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    return [int(p) for p, pp, comm in rows if comm.startswith("qemu-system") and int(pp) == pid]


def test_ctrl_c_kills_qemu(xen_kernel):
    proc = subprocess.Popen([sys.executable, "-m", "pvmatrix.cli", "boot", str(xen_kernel.image.parent),
                             "--role", "baremetal"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    child = []
    for _ in range(600):              # a cold cache builds the probe initramfs first
        child = _qemu_children(proc.pid)
        if child:
            break
        time.sleep(0.1)
    assert child, "QEMU never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    time.sleep(0.5)
    assert not os.path.exists(f"/proc/{child[0]}"), "QEMU outlived the harness"


def test_deadline_kills_qemu_and_says_timeout(xen_kernel):
    cell = harness.run_cells(xen_kernel, ["baremetal"], deadline_s=1.0)[0]
    assert cell.verdict.detail == "timeout", _explain(cell)
    assert cell.boot.timed_out and cell.boot.wall_s < 10


def test_debian_generic_baremetal_binds_e1000e_and_reads_ahci_disk():
    """Debian's 6.1 generic kernel: e1000e and ahci are modules among ~4000; the
    analyzer picks them by alias, coldplug loads them, the disk is read."""
    from pvmatrix.boot.kernel import load
    cell = harness.run_cells(load("debian:linux-image-6.1.0-50-amd64@bookworm"), ["baremetal"])[0]
    assert cell.verdict.status == "pass", _explain(cell)
    assert cell.devices["e1000e"]["driver"] == "e1000e"
    assert cell.devices["ich9-ahci"]["driver"] == "ahci"
    assert cell.devices["ich9-ahci"]["disk_read"], cell.devices["ich9-ahci"]
