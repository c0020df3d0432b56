"""Real guest lifecycles (issue 15) under Xen 4.17 in QEMU (TCG here): the
default spec's small 6.1 kernel saved/restored and live-migrated on the same
host, as PV and as PVH guests, in one Xen boot, one guest per mode running
both steps as a chain; and the same kernel without guest suspend support
failing save and migrate with the toolstack's message while its plain PV domU
(the same guest's boot) still passes.

XEN_SAVE_RESTORE has no prompt on x86 (default y, selects HIBERNATE_CALLBACKS):
a fragment alone cannot turn it off, so the second kernel is built from a
hard-linked copy of Debian's tree whose arch/x86/xen/Kconfig gives it one."""

from __future__ import annotations

import re
import subprocess

import pytest

from pvmatrix import build
from pvmatrix.analyze import analyze
from pvmatrix.boot import harness
from pvmatrix.boot.kernel import from_build

from conftest import XEN_FRAGMENTS

LIFE_ROLES = ["domU-pv-save", "domU-pvh-save", "domU-pv-migrate", "domU-pvh-migrate"]
PROMPTLESS = "config XEN_SAVE_RESTORE\n\tbool\n"


def _guests_created(cell) -> set[str]:
    """The guests dom0 created in CELL's boot (a retried one counts once)."""
    return set(re.findall(r"PVM guest=(\w+) stage=create ok=1", cell.boot.serial.read_text()))


def _explain(cell) -> str:
    ev = "\n".join(f"  L{e.line}: {e.text}" for e in cell.verdict.evidence)
    return f"{cell.role}: {cell.verdict.status}: {cell.verdict.reason}\n{ev}\n  log: {cell.boot.serial}"



@pytest.fixture(scope="session")
def no_suspend_kernel(debian_61, tmp_path_factory):
    """The same recipe plus `# CONFIG_XEN_SAVE_RESTORE is not set`, on a tree
    where that option has a prompt (so the fragment sticks)."""
    base = tmp_path_factory.mktemp("nosuspend")
    tree = base / "linux"
    subprocess.run(["cp", "-al", str(debian_61.tree), str(tree)], check=True)
    kconfig = tree / "arch/x86/xen/Kconfig"
    text = kconfig.read_text()
    assert PROMPTLESS in text, "XEN_SAVE_RESTORE changed shape in this tree"
    kconfig.unlink()            # a hard link: the shared tree must stay untouched
    kconfig.write_text(text.replace(PROMPTLESS, PROMPTLESS.replace(
        "bool\n", 'bool "Xen guest save/restore and migration"\n')))
    frag = base / "no-xen-save-restore.config"
    frag.write_text("# CONFIG_XEN_SAVE_RESTORE is not set\n")
    built = build.build(f"dir:{tree}", "tinyconfig", XEN_FRAGMENTS + [str(frag)],
                        toolchain="bookworm-gcc12")
    assert not built.unmet, built.unmet
    config = (built.dir / "config").read_text()
    assert "# CONFIG_XEN_SAVE_RESTORE is not set" in config
    assert "CONFIG_HIBERNATE_CALLBACKS=y" not in config
    return from_build(built)


def test_small_kernel_is_saved_restored_and_migrated_in_one_xen_boot(xen_kernel):
    caps = {c.name: c for c in analyze(xen_kernel.image.parent).capabilities}
    assert caps["pv_domu_suspend"].supported and caps["pvh_domu_suspend"].supported
    cells = {c.role: c for c in harness.run_cells(xen_kernel, ["dom0", *LIFE_ROLES])}
    assert cells["dom0"].verdict.status == "pass", _explain(cells["dom0"])
    for role in LIFE_ROLES:
        cell = cells[role]
        assert cell.verdict.status == "pass", _explain(cell)
        texts = " ".join(e.text for e in cell.verdict.evidence)
        assert "stage=resumed" in texts and "when=resumed" in texts
    assert len({c.boot.dir for c in cells.values()}) == 1
    assert _guests_created(cells["dom0"]) == {"pv", "pvh"}     # one guest per mode


def test_kernel_without_suspend_fails_save_and_migrate_with_the_toolstacks_message(
        no_suspend_kernel):
    caps = {c.name: c for c in analyze(no_suspend_kernel.image.parent).capabilities}
    assert caps["pv_domu_suspend"].supported is False
    assert "CONFIG_HIBERNATE_CALLBACKS is not set" in caps["pv_domu_suspend"].evidence[0]
    assert caps["pv_domu"].supported is True
    cells = {c.role: c for c in harness.run_cells(
        no_suspend_kernel, ["dom0", "domU-pv", "domU-pv-save", "domU-pv-migrate"])}
    assert cells["domU-pv"].verdict.status == "pass", _explain(cells["domU-pv"])
    save, migrate = cells["domU-pv-save"].verdict, cells["domU-pv-migrate"].verdict
    assert save.status == "fail" and save.reason.startswith("xl save failed: "), \
        _explain(cells["domU-pv-save"])
    assert migrate.status == "fail" and migrate.reason.startswith("xl migrate failed: "), \
        _explain(cells["domU-pv-migrate"])
    for v in (save, migrate):    # libxl's own words, after its 60 s wait
        assert "acknowledge suspend" in v.reason or "did not suspend" in v.reason, v.reason
    # one guest: the refused save left it running, so the migration ran on it too
    assert _guests_created(cells["domU-pv"]) == {"pv"}
