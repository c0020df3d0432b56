"""Debian's split kernel packaging (6.19 and newer) without the network: a
real sid Packages index (tests/fixtures/debian/sid/Packages: linux-image-
cloud-amd64 and the packages it leads to), read by apt from the suite's
private lists, and stand-in .debs holding the real packages' file lists
with one real module (xen-tpmfront.ko.xz). The image metapackage is followed
to every package holding the kernel, which are unpacked into one tree with
module indexes made there, for analyze and boot alike."""

import shutil
import subprocess
from pathlib import Path

import pytest

from pvmatrix.analyze.inputs import locate
from pvmatrix.boot import kernel as boot_kernel
from pvmatrix.digest import sha256_id
from pvmatrix.errors import UserError
from pvmatrix import catalog
from pvmatrix.sources import debian, packages
from pvmatrix.sources.facts import PackageFacts

from .test_packages import _boot_header, _deb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "debian" / "sid"
ABI = "7.2.13+deb14-cloud-amd64"
MODULES = f"usr/lib/modules/{ABI}"
TPM = "kernel/drivers/char/tpm/xen-tpmfront.ko.xz"

needs_apt = pytest.mark.skipif(not (shutil.which("apt-cache") and shutil.which("dpkg-deb")
                                    and shutil.which("busybox")),
                               reason="needs apt-cache, dpkg-deb and busybox")


def test_the_parts_of_a_kernel_are_its_own_abi_packages():
    # the Depends lines of the real linux-image-ABI packages
    sid = ["dracut", "initramfs-tools", "linux-initramfs-tool", f"linux-base-{ABI}",
           f"linux-binary-{ABI}", f"linux-modules-{ABI}"]
    assert packages.kernel_parts(f"linux-image-{ABI}", sid) == [
        f"linux-image-{ABI}", f"linux-base-{ABI}", f"linux-binary-{ABI}", f"linux-modules-{ABI}"]
    generic = "7.3.4+deb13-amd64"           # trixie-backports: not the cloud flavour's packages
    assert packages.kernel_parts(f"linux-image-{generic}", [
        f"linux-base-{generic}", f"linux-binary-{generic}", f"linux-modules-{generic}",
        "linux-modules-7.3.4+deb13-cloud-amd64"])[1:] == [
        f"linux-base-{generic}", f"linux-binary-{generic}", f"linux-modules-{generic}"]
    bookworm = ["kmod", "linux-base", "initramfs-tools", "linux-initramfs-tool"]
    assert packages.kernel_parts("linux-image-6.1.0-50-amd64", bookworm) == ["linux-image-6.1.0-50-amd64"]


@pytest.fixture
def sid(private_cache):
    """The sid suite with the fixture index as its fresh lists, and stand-ins
    for the packages already 'downloaded'."""
    state = debian.lists_dir("sid")          # the host's mirror, as apt names its lists
    (state / "lists").mkdir(parents=True)
    lists = catalog.mirror().split("://", 1)[1].replace("/", "_")
    shutil.copy(FIXTURES / "Packages", state / "lists" / f"{lists}_dists_sid_main_binary-amd64_Packages")
    (state / "updated").touch()
    debs = private_cache / "apt" / "sid" / "debs"
    debs.mkdir()
    files = {
        "base": {f"{MODULES}/System.map": b"ffffffffffffffff B The real System.map is in the "
                                          b"linux-image-<version>-dbg package\n",
                 f"{MODULES}/config": b"CONFIG_XEN=y\nCONFIG_XEN_PV=y\n",
                 f"{MODULES}/modules.builtin": b"", f"{MODULES}/modules.builtin.modinfo": b"",
                 f"{MODULES}/modules.order": TPM.removesuffix(".xz").encode() + b"\n"},
        "binary": {f"{MODULES}/vmlinuz": _boot_header()},
        "modules": {f"{MODULES}/{TPM}": (FIXTURES / "xen-tpmfront.ko.xz").read_bytes()},
        "image": {},
    }
    made = {kind: _deb(debs, f"linux-{kind}-{ABI}", "7.2.13-1", f) for kind, f in files.items()}
    _deb(debs, "linux-image-cloud-amd64", "7.2.13-1", {})
    return made


@needs_apt
def test_a_split_kernel_is_every_package_holding_it(sid):
    kernel = packages.resolve_kernel("debian:linux-image-cloud-amd64@sid")
    assert [p.name for p in kernel.parts] == [f"linux-{k}-{ABI}" for k in ("image", "base", "binary", "modules")]
    assert [p.deb for p in kernel.parts] == [sid[k] for k in ("image", "base", "binary", "modules")]
    assert {(p.suite, p.version) for p in kernel.parts} == {("sid", "7.2.13-1")}
    assert kernel.parts[3].digest == sha256_id(sid["modules"]) and kernel.abi == ABI
    assert packages.resolve_kernel(kernel.spec) == kernel          # the concrete name: the same
    facts = PackageFacts(kernel)
    assert [p["sha256"] for p in facts.provenance()["packages"]] == [sha256_id(sid[k]) for k in
                                                                      ("image", "base", "binary", "modules")]


@needs_apt
def test_a_split_kernel_is_one_tree_with_module_aliases_for_analyze_and_boot(sid):
    kernel = packages.resolve_kernel("debian:linux-image-cloud-amd64@sid")
    tree = packages.unpacked_kernel(kernel)
    assert packages.unpacked_kernel(kernel) == tree
    modules = tree / MODULES
    assert "alias xen:vtpm xen_tpmfront" in (modules / "modules.alias").read_text()
    assert (modules / "modules.dep").read_text().startswith(f"{TPM}:")
    found = locate("debian:linux-image-cloud-amd64@sid")
    assert (found.image, found.config, found.modules) == (modules / "vmlinuz", modules / "config", modules)
    assert found.identity == kernel.digest and found.release == ABI
    booted = boot_kernel.load("debian:linux-image-cloud-amd64@sid")
    assert (booted.label, booted.image, booted.identity) == (ABI, found.image, kernel.digest)
    assert not list((tree.parent).glob(".*unpack*"))         # nothing half-made left behind


@needs_apt
def test_a_failed_index_leaves_no_tree(sid, monkeypatch):
    kernel = packages.resolve_kernel("debian:linux-image-cloud-amd64@sid")
    monkeypatch.setattr(packages, "make_module_indexes", lambda tree: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        packages.unpacked_kernel(kernel)
    assert [p.name for p in (kernel.parts[0].deb.parents[3] / "debs").iterdir()] == []


@needs_apt
def test_a_package_not_in_the_suite_names_the_suite(sid, monkeypatch):
    monkeypatch.setattr(subprocess, "run", _no_download(subprocess.run))
    for spec in ("debian:linux-image-nosuch-amd64@sid", "debian:linux-image-9.9.9+deb14-amd64@sid"):
        with pytest.raises(UserError, match=r"not found in suite\(?s?\)? sid") as err:
            packages.resolve_kernel(spec)
        assert "\n" not in str(err.value)


def _no_download(run):
    def guarded(argv, *a, **kw):
        assert "update" not in argv, argv          # the fresh lists say it: no apt-get update
        return run(argv, *a, **kw)
    return guarded


@pytest.mark.parametrize("release", ["7.3-amd64", "7.2.13+deb14-cloud-amd64"])
def test_module_indexes_of_any_release_name(tmp_path, release):
    """experimental's 7.3~rc7 kernel is release 7.3-amd64, which busybox depmod
    took for a module name (it then indexed the host's release and failed)."""
    from pvmatrix.kernel import make_module_indexes
    tree = tmp_path / "usr" / "lib" / "modules" / release
    (tree / Path(TPM).parent).mkdir(parents=True)
    shutil.copy(FIXTURES / "xen-tpmfront.ko.xz", tree / TPM)
    make_module_indexes(tree)
    assert "alias xen:vtpm xen_tpmfront" in (tree / "modules.alias").read_text()
    assert (tree / "modules.dep").read_text().startswith(TPM + ":")
