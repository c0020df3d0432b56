"""specs/reference.toml (issue 17): every axis in one run. It loads and plans
without the network (a fresh cache has no apt lists, so no package is looked
up), and names what the issue asks: each suite's latest generic and cloud
kernel, the source builds of specs/debian-sources.toml, Xen 4.14, 4.17 and
4.20, the `qemu` profile booted and the real machines' profiles analyzed,
and every role of data/roles.toml."""

from __future__ import annotations

import pytest

from conftest import REPO
from pvmatrix import catalog, cli
from pvmatrix.errors import UserError
from pvmatrix.matrix import spec
from pvmatrix.matrix.plan import make_plan

REFERENCE = REPO / "specs" / "reference.toml"
SOURCES = REPO / "specs" / "debian-sources.toml"
REAL_MACHINES = sorted(p.stem for p in (REPO / "pvmatrix" / "data" / "hardware").glob("*.toml")
                       if p.stem not in ("default", "qemu"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PVMATRIX_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield spec.load(REFERENCE)
    finally:
        mp.undo()


def test_every_axis_of_the_issue(reference):
    s = reference
    assert s.name == "reference" and s.xen == ["4.14", "4.17", "4.20"]
    assert s.roles == catalog.names("role")
    assert s.hardware == ["qemu", *REAL_MACHINES] and s.booted == ["qemu"]
    packages = {k.package for k in s.kernels if k.prebuilt}
    assert packages == {f"debian:linux-image-{flavour}@{suite}" for suite in catalog.names("suite")
                        for flavour in ("amd64", "cloud-amd64")}
    built = [(k.source, k.base, k.fragments) for k in s.kernels if not k.prebuilt]
    assert built == [(k.source, k.base, k.fragments) for k in spec.load(SOURCES).kernels]
    # the shipped real servers' captures, a column each (the "for my machine" view)
    assert s.machines == sorted(p.name.split(".")[0] for p in
                                (REPO / "pvmatrix" / "data" / "machines").glob("*.lspci-vvnn.txt"))
    fallback = s.kernel(s.dom0_fallback)
    assert fallback.package == "debian:linux-image-amd64@bookworm"


def test_the_plan_boots_only_the_qemu_profile_and_analyzes_every_one(reference):
    plan = make_plan(reference)
    cells = plan.cells
    boots = [c for c in cells if c.stage == "boot"]
    assert {c.hardware for c in boots} == {"qemu"}
    assert {c.hardware for c in cells if c.stage == "analyze"} == \
        {"qemu", *REAL_MACHINES, *reference.machines}
    per_kernel = len(reference.xen) * (len(reference.roles) - 1) + 1      # baremetal once
    assert len(boots) == len(reference.kernels) * per_kernel
    # one bare-metal boot and, per Xen release, dom0's boot, dom0-pvh's own and the
    # passthrough guest's own (its device and machine are nobody else's); and per
    # Xen release and Xen boot, one boot of the guests of every kernel that cannot be dom0
    assert sum(t.stage == "boot" for t in plan.tasks) == len(reference.kernels) * (1 + 3 * 3) + 3 * 2   # the shared boots: the main one, the passthrough one


def test_plan_command_loads_it(reference, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PVMATRIX_CACHE", str(tmp_path / "cache"))
    assert cli.main(["plan", str(REFERENCE)]) == 0
    out = capsys.readouterr().out
    assert "sid-cloud/domU-pvh-migrate/xen-4.20/qemu" in out
    assert "debian-5.10-src/hw/dell-poweredge-r320/" in out
    assert f"{len(make_plan(reference).cells)} cells in" in out


def test_boot_hardware_must_be_among_the_profiles(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[matrix]\nhardware = ['qemu']\nboot_hardware = ['default']\n"
                    "[[kernel]]\nname='a'\nsource='debian:linux-source-6.1@bookworm'\n")
    with pytest.raises(UserError, match=r"matrix.boot_hardware: expected profiles out of "
                                        r"matrix.hardware \(qemu\), got 'default'"):
        spec.load(path)
