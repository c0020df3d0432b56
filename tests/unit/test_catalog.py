"""The catalog: one loader for everything that varies; every kind loads and
lists, an unknown name is one error listing the known ones, an unknown QEMU
device in a profile is an error, and no name of a kind is a literal in code."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from conftest import one_error_line, pvmatrix
from pvmatrix import catalog
from pvmatrix.boot import devices
from pvmatrix.errors import UnknownName

RECORDS = {"toolchain": catalog.Toolchain, "suite": catalog.Suite, "xen": catalog.XenRelease,
           "role": catalog.Role, "device": catalog.QemuDevice,
           "hardware": catalog.HardwareProfile, "driver": catalog.BuiltinDriver,
           "death": catalog.Death, "driverless": catalog.DriverlessClass,
           "iommu": catalog.Iommu}
PACKAGE = Path(catalog.__file__).parent


@pytest.mark.parametrize("kind", list(catalog.KINDS))
def test_every_kind_loads_and_lists(kind):
    names = catalog.names(kind)
    assert names and list(catalog.all(kind)) == names
    assert all(isinstance(catalog.get(kind, n), RECORDS[kind]) for n in names)


@pytest.mark.parametrize("kind", list(catalog.KINDS))
def test_an_unknown_name_lists_the_known_ones(kind):
    with pytest.raises(UnknownName) as err:
        catalog.get(kind, "no-such-name")
    assert err.value.exit_code == 2 and err.value.known == sorted(catalog.names(kind))
    assert all(n in str(err.value) for n in catalog.names(kind))


def test_roles_carry_what_the_code_used_to_hard_code():
    dom0, bare = catalog.host_role(xen=True), catalog.host_role(xen=False)
    assert not dom0.is_guest and not bare.xen and dom0.marks[dom0.timed_by]
    guests = [r for r in catalog.all("role").values() if r.is_guest]
    assert guests and all(g.needs == dom0.name and g.modules for g in guests)
    # an HVM guest needs nothing Xen-specific (emulated devices); PV and PVH do
    assert all(g.capability for g in guests if g.guest_type != "hvm")
    assert dom0.capability and dom0.cmdline and bare.cmdline and bare.capability is None


def test_xen_releases_have_a_default_and_a_command_line():
    assert catalog.default("xen").name in catalog.names("xen")
    assert all(x.cmdline and x.suite in catalog.names("suite")
               for x in catalog.all("xen").values())


def test_toolchain_images_are_tagged_by_content():
    tc = catalog.get("toolchain", catalog.names("toolchain")[0])
    assert catalog.get("suite", tc.suite).base_image in tc.containerfile
    assert re.fullmatch(rf"pvmatrix/toolchain:{tc.name}-[0-9a-f]{{16}}", tc.image)


def test_a_profile_device_takes_its_ids_from_the_device_catalog(tmp_path):
    name = next(n for n, d in catalog.all("device").items() if d.pci)
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\n[[device]]\nqemu = "{name}"\n'
                    f'[[device]]\nqemu = "{name}"\nname = "mine"\nsubvendor = 0x1234\n')
    plain, own = catalog.profile(path).devices
    assert plain == catalog.get("device", name).pci
    assert (own.name, own.subvendor, own.device) == ("mine", 0x1234, plain.device)


def test_an_unknown_qemu_device_in_a_profile_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[device]]\nname = "x"\nvendor = 1\ndevice = 2\n'
                    'class = 2\nsubclass = 0\nqemu = "no-such-nic"\n')
    with pytest.raises(UnknownName, match=r"unknown QEMU device 'no-such-nic' \(known: .*"
                                          rf"e1000.*in {re.escape(str(path))}, device 0"):
        catalog.profile(path)


def test_boot_devices_come_from_the_catalog():
    assert [d.name for d in devices.plan()] == catalog.profile("default").qemu_devices
    with pytest.raises(UnknownName, match="unknown QEMU device 'no-such-nic'"):
        devices.plan(["no-such-nic"])


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


# record keys and labels that happen to spell a role's name (not a choice of role)
ALLOWED = {("matrix/tasks.py", "dom0")}


def test_no_role_xen_or_device_name_is_a_literal_in_code():
    names = {n for kind in ("role", "xen", "device") for n in catalog.names(kind)}
    found = {(str(p.relative_to(PACKAGE)), value, line)
             for p in sorted(PACKAGE.rglob("*.py")) for line, value in _code_strings(p)
             if value in names}
    assert {(f, v) for f, v, _ in found} <= ALLOWED, sorted(found)


@pytest.mark.parametrize("what", list(catalog.TABLES))
def test_pvmatrix_list_prints_each_catalog(what):
    done = pvmatrix("list", what)
    assert done.returncode == 0, done.stderr
    kind = catalog.TABLES[what][0]
    assert all(n in done.stdout for n in catalog.names(kind))


def test_pvmatrix_list_of_an_unknown_kind_exits_2():
    assert pvmatrix("list", "colours").returncode == 2


@pytest.mark.parametrize("args,known", [
    (["--xen", "9.9"], "xen"),
    (["--device", "no-such-nic"], "device"),
])
def test_boot_with_an_unknown_name_exits_2_before_any_boot(tmp_path, args, known):
    env = {**os.environ, "PVMATRIX_CACHE": str(tmp_path / "cache")}
    done = pvmatrix("boot", str(tmp_path / "no-kernel-needed"), *args, env=env)
    line = one_error_line(done)
    assert done.returncode == 2 and "unknown" in line
    assert all(n in line for n in catalog.names(known))
