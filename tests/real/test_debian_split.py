"""Debian's split kernel packaging (6.19 and newer: linux-image-ABI is empty
and depends on linux-base/binary/modules-ABI, no modules.alias shipped),
for real: sid's linux-image-amd64 is followed to every package holding the
kernel, unpacked into one tree with module indexes, analyzed, and booted on
bare metal under QEMU (TCG)."""

from __future__ import annotations

import pytest

from conftest import pvmatrix
from pvmatrix.analyze import analyze
from pvmatrix.boot import harness
from pvmatrix.boot.kernel import load
from pvmatrix.sources import packages

SPEC = "debian:linux-image-amd64@sid"


@pytest.fixture(scope="session")
def sid_kernel():
    kernel = packages.resolve_kernel(SPEC)
    kinds = [p.name.removesuffix(f"-{kernel.abi}") for p in kernel.parts]
    assert kinds == ["linux-image", "linux-base", "linux-binary", "linux-modules"], kinds
    return kernel


def test_sid_generic_is_one_tree_with_generated_module_aliases(sid_kernel):
    tree = packages.unpacked_kernel(sid_kernel)
    modules = tree / "usr" / "lib" / "modules" / sid_kernel.abi
    assert (modules / "vmlinuz").is_file() and (modules / "config").is_file()
    aliases = (modules / "modules.alias").read_text()
    assert "alias xen-backend:vif xen_netback" in aliases
    assert any(line.endswith(" e1000e") for line in aliases.splitlines() if line.startswith("alias pci:"))


def test_sid_generic_analyzes_as_pv_pvh_and_dom0(sid_kernel):
    a = analyze(SPEC, hardware="qemu")
    caps = {c.name: c.supported for c in a.capabilities}
    assert caps["pv_domu"] and caps["pvh_domu"] and caps["pv_dom0"], caps
    assert a.release == sid_kernel.abi and not a.scan.unreadable
    assert a.device("e1000e").status == "module" and a.device("e1000e").driver == "e1000e"


def test_sid_generic_analyze_cli_names_the_kernel():
    done = pvmatrix("analyze", SPEC)
    assert done.returncode == 0, done.stderr
    assert "no kernel image" not in done.stdout + done.stderr


def test_sid_generic_baremetal_binds_e1000e(sid_kernel):
    kernel = load(SPEC)
    assert kernel.identity == sid_kernel.digest and kernel.label == sid_kernel.abi
    cell = harness.run_cells(kernel, ["baremetal"])[0]
    assert cell.verdict.status == "pass", (cell.verdict.reason, cell.verdict.evidence)
    assert cell.devices["e1000e"]["driver"] == "e1000e"


def test_a_package_not_in_sid_is_one_line_naming_the_suite():
    done = pvmatrix("boot", "debian:linux-image-nosuch-amd64@sid", "--role", "baremetal")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "sid" in lines[0], done.stderr
