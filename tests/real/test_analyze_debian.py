"""Ground truth against the real Debian 6.1 kernels (generic and cloud), the
current ABI of bookworm's linux-image-amd64 / linux-image-cloud-amd64, and
against the builder's own Xen kernel."""

import json
import shutil

import pytest

from conftest import DEBIAN_61, pvmatrix
from pvmatrix.sources import packages
from pvmatrix.analyze import analyze
from pvmatrix.errors import PvmError


def _deb(metapackage: str):
    package = packages.resolve(f"debian:{metapackage}@bookworm")
    assert package.name.startswith("linux-image-6.1")
    return package.deb


@pytest.fixture(scope="session")
def generic_deb():
    return _deb("linux-image-amd64")


@pytest.fixture(scope="session")
def cloud_deb():
    return _deb("linux-image-cloud-amd64")


@pytest.fixture(scope="session")
def generic(generic_deb):
    return analyze(generic_deb, hardware="qemu")


@pytest.fixture(scope="session")
def cloud(cloud_deb):
    return analyze(cloud_deb, hardware="qemu")


def _caps(result):
    return {c.name: c.supported for c in result.capabilities}


def test_debian_61_generic_is_pv_pvh_and_dom0(generic):
    caps = _caps(generic)
    assert caps["pv_domu"] and caps["pvh_domu"] and caps["pv_dom0"] and caps["dom0_toolstack"]
    assert generic.release.startswith("6.1.") and generic.release.endswith("-amd64")
    assert "Xen note ENTRY" in generic.capability("pv_domu").evidence[0]
    assert "CONFIG_XEN_DOM0=y" in generic.capability("pv_dom0").evidence
    assert len(generic.scan.modules) > 3900 and not generic.scan.unreadable


def test_debian_61_generic_covers_the_hardware(generic):
    for qemu, driver in [("e1000e", "e1000e"), ("ich9-ahci", "ahci"), ("megasas", "megaraid_sas"),
                         ("megasas-gen2", "megaraid_sas"), ("nvme", "nvme")]:
        found = generic.device(qemu)
        assert found.status == "module" and found.driver == driver, (qemu, found)
        assert found.module_path.endswith(".ko")


def test_debian_61_cloud_is_pv_and_pvh_not_dom0(cloud):
    caps = _caps(cloud)
    assert caps["pv_domu"] and caps["pvh_domu"]
    assert caps["pv_dom0"] is False and caps["dom0_toolstack"] is False
    assert "CONFIG_XEN_DOM0 is not set" in cloud.capability("pv_dom0").evidence


def test_debian_61_cloud_lacks_the_hardware(cloud):
    for qemu in ("e1000e", "ich9-ahci", "megasas", "megasas-gen2"):
        assert cloud.device(qemu).status == "missing", qemu
    assert cloud.device("nvme").status == "built-in"   # CONFIG_BLK_DEV_NVME=y in cloud


def test_cli_json_schema(cloud_deb):
    done = pvmatrix("analyze", str(cloud_deb), "--hardware", "default", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema"] == "pvmatrix.analyze/1"
    assert set(data) == {"schema", "kernel", "xen_notes", "capabilities", "modules", "hardware", "problems"}
    caps = {c["name"]: c for c in data["capabilities"]}
    assert caps["pv_dom0"]["supported"] is False and caps["pvh_domu"]["supported"] is True
    assert [d["status"] for d in data["hardware"]["devices"]] == ["missing", "missing"]
    table = pvmatrix("analyze", str(cloud_deb), "--hardware", "default")
    assert table.returncode == 0 and "pv_dom0" in table.stdout and "missing" in table.stdout


def test_truncated_image_is_reported_and_the_rest_goes_on(generic_deb, tmp_path):
    from pvmatrix.sources.debian import unpacked
    tree = unpacked(generic_deb)
    kernel = tmp_path / "kernel"
    (kernel / "boot").mkdir(parents=True)
    [image] = tree.glob("boot/vmlinuz-*")
    (kernel / "boot" / image.name).write_bytes(image.read_bytes()[:2_000_000])
    [config] = tree.glob("boot/config-*")
    shutil.copy(config, kernel / "boot" / config.name)
    result = analyze(kernel)
    assert any(f"{kernel / 'boot' / image.name}: truncated bzImage" in p for p in result.problems)
    assert result.notes is None and result.capability("pv_dom0").supported is True   # from the config
    # without the config too, nothing is left to read: a clear error naming the input
    (kernel / "boot" / config.name).unlink()
    with pytest.raises(PvmError, match=f"{kernel}: not a readable kernel .*truncated bzImage"):
        analyze(kernel)


@pytest.mark.slow
def test_builder_xen_kernel():
    from pvmatrix import build
    built = build.build(DEBIAN_61, "tinyconfig", ["boot", "xen-domu", "xen-dom0", "hw/e1000e"])
    result = analyze(built.dir, hardware="default")
    caps = {c.name: c for c in result.capabilities}
    assert all(caps[n].supported for n in ("pv_domu", "pvh_domu", "pv_dom0", "dom0_toolstack"))
    assert caps["blkback"].form == "built-in" and caps["hvc_console"].supported
    assert result.device("e1000e").status == "module" and result.device("e1000e").driver == "e1000e"
    assert result.device("ich9-ahci").status == "missing"
