"""Matrix specs and plans: errors name file, key and what was expected;
`pvmatrix plan` shows the cells without running anything."""

import pytest

from conftest import pvmatrix
from pvmatrix.errors import PvmError
from pvmatrix.matrix import spec
from pvmatrix.matrix.plan import make_plan


@pytest.mark.parametrize("text,expected", [
    ("[matrix]\nroles = ['dom0', 'domU-nosuch']\n[[kernel]]\nname='a'\nsource='x'\n",
     "matrix.roles: unknown role 'domU-nosuch' (known: baremetal, dom0, dom0-pvh, domU-hvm, domU-pv, "),
    ("[matrix]\nxen = ['9.9']\n[[kernel]]\nname='a'\nsource='x'\n",
     "matrix.xen: unknown Xen version '9.9' (known: 4.14, 4.17, 4.20)"),
    ("[matrix]\nxen = '4.17'\n[[kernel]]\nname='a'\nsource='x'\n",
     "matrix.xen: expected a list of Xen versions"),
    ("[matrix]\ncolour = 1\n[[kernel]]\nname='a'\nsource='x'\n", "matrix: unknown key(s) colour"),
    ("[matrix]\ndom0_fallback = 'b'\n[[kernel]]\nname='a'\nsource='x'\n",
     "matrix.dom0_fallback: expected the name of a [[kernel]], got 'b'"),
    ("[[kernel]]\nname='a'\npackage='debian:linux-source-6.1'\n",
     "kernel[0].package: expected 'debian:linux-image-...[@SUITE]'"),
    ("[[kernel]]\nname='a'\npackage='debian:linux-image-amd64'\nbase='defconfig'\n",
     "kernel[0]: a prebuilt package takes no base"),
    ("[[kernel]]\nname='a'\nsource='x'\n[[kernel]]\nname='a'\nsource='y'\n",
     "kernel[1].name: duplicate kernel name 'a'"),
    ("[kernels]\n", "unknown table(s) kernels"),
])
def test_spec_errors_name_file_key_and_expectation(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PvmError) as err:
        spec.load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)
    done = pvmatrix("plan", str(path))
    assert done.returncode == 2 and expected in done.stderr


def test_default_spec_covers_the_issue():
    s = spec.load(None)
    assert s.name == "default" and s.xen == ["4.17"] and s.hardware == ["default"]
    assert s.roles == ["baremetal", "dom0", "domU-pv", "domU-pvh"]
    sources = {k.source for k in s.kernels if k.source}
    assert {"debian:linux-source-6.1@bookworm", "debian:linux-source-6.12@trixie"} <= sources
    packages = {k.package for k in s.kernels if k.prebuilt}
    assert packages == {"debian:linux-image-amd64@bookworm", "debian:linux-image-cloud-amd64@bookworm"}


def test_plan_is_a_graph_source_build_analyze_boot():
    plan = make_plan(spec.load(None))
    by_key = {t.key: t for t in plan.tasks}
    seen = set()
    for t in plan.tasks:                   # dependency order, and stages only look back
        assert set(t.deps.values()) <= seen
        seen.add(t.key)
    boot = next(t for t in plan.tasks if t.func == "boot_xen" and t.kernel == "debian-6.1-xen-min")
    assert by_key[boot.deps["kernel"]].stage == "build"
    assert by_key[by_key[boot.deps["kernel"]].deps["source"]].stage == "source"
    assert by_key[boot.deps["analysis"]].stage == "analyze"
    assert [c.role for c in boot.cells] == ["dom0", "domU-pv", "domU-pvh"]
    assert boot.resources["qemu"] == 1
    generic = [t for t in plan.tasks if t.kernel == "debian-6.1-generic"]
    assert "build" not in {t.stage for t in generic}          # prebuilt: no build task
    # keys are content hashes of the definition: same spec, same keys
    assert [t.key for t in make_plan(spec.load(None)).tasks] == [t.key for t in plan.tasks]


def test_confirm_changes_only_the_xen_boot_tasks():
    """--confirm travels in the Xen boots' args; a plan without it keeps its keys."""
    plain = make_plan(spec.load(None))
    assert [t.key for t in make_plan(spec.load(None), confirm=False).tasks] == \
        [t.key for t in plain.tasks]
    assert all("confirm" not in t.args for t in plain.tasks)
    confirmed = make_plan(spec.load(None), confirm=True)
    for a, b in zip(plain.tasks, confirmed.tasks):
        xen = a.func in ("boot_xen", "boot_hosted")
        assert (a.key != b.key) == xen and b.args.get("confirm", False) is xen
        assert [c.id for c in a.cells] == [c.id for c in b.cells]


def test_plan_command_lists_cells_without_running():
    done = pvmatrix("plan")
    assert done.returncode == 0, done.stderr
    assert "debian-6.1-cloud/domU-pvh/xen-4.17/default" in done.stdout
    assert "debian-6.12-xen-min/hw/default/ich9-ahci" in done.stdout
    assert "34 cells in 19 tasks" in done.stdout
