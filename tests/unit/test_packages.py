"""Debian packages without the network: metapackage following against a real
Packages index (tests/fixtures/debian/Packages, from bookworm), read by apt
from the suite's private lists, and small .debs made here standing in for
the downloads. One package resolution and one unpack serve sources, analyze
and boot."""

import io
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from pvmatrix.errors import UserError

from pvmatrix.analyze.inputs import locate
from pvmatrix.boot import kernel as boot_kernel
from pvmatrix.digest import sha256_id
from pvmatrix import catalog, sources
from pvmatrix.sources import debian, packages

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "debian" / "Packages"
RELEASE = "6.1.0-50-amd64"

needs_apt = pytest.mark.skipif(not (shutil.which("apt-cache") and shutil.which("dpkg-deb")),
                               reason="needs apt-cache and dpkg-deb")


def test_a_metapackage_is_followed_to_its_own_family():
    deps = ["kmod", "linux-image-6.1.0-50-amd64", "linux-headers-6.1.0-50-amd64"]
    assert packages.concrete("linux-image-amd64", deps) == "linux-image-6.1.0-50-amd64"
    assert packages.concrete("linux-source", ["binutils", "linux-source-6.1"]) == "linux-source-6.1"
    assert packages.concrete("linux-image-6.1.0-50-amd64", deps) == "linux-image-6.1.0-50-amd64"
    assert packages.concrete("linux-image-amd64", ["kmod"]) == "linux-image-amd64"
    assert packages.parse("debian:linux-image-amd64@trixie") == ("linux-image-amd64", "trixie")
    assert packages.parse("debian:linux-image-amd64") == ("linux-image-amd64", None)


def _deb(out: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    root = out / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
        "Maintainer: t <t@t>\nDescription: test\n")
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    deb = out / f"{name}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def _source_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        data = b"VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 176\n"
        info = tarfile.TarInfo("linux-source-6.1/Makefile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _boot_header() -> bytes:
    """The smallest image boot accepts: a boot protocol 2.15 header whose
    (gzip-magic) payload lies inside the file."""
    data = bytearray(0x408)
    data[0x1F1] = 1                                       # setup_sects: payload at 0x400
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, 0x020F)
    struct.pack_into("<II", data, 0x248, 0, 8)            # payload_offset, payload_length
    data[0x400:0x402] = b"\x1f\x8b"
    return bytes(data)


@pytest.fixture
def bookworm(private_cache):
    """The bookworm suite with the fixture index as its fresh lists, and the
    concrete packages already 'downloaded' into its debs directory."""
    state = debian.lists_dir("bookworm")          # the host's mirror, as apt names its lists
    (state / "lists").mkdir(parents=True)
    lists = catalog.mirror().split("://", 1)[1].replace("/", "_")
    shutil.copy(FIXTURE, state / "lists" / f"{lists}_dists_bookworm_main_binary-amd64_Packages")
    (state / "updated").touch()                    # fresh: no apt-get update
    debs = private_cache / "apt" / "bookworm" / "debs"
    debs.mkdir()
    image = _deb(debs, f"linux-image-{RELEASE}", "6.1.176-1", {
        f"boot/vmlinuz-{RELEASE}": _boot_header(),
        f"boot/config-{RELEASE}": b"CONFIG_XEN=y\n",
        f"lib/modules/{RELEASE}/modules.dep": b"",
        f"lib/modules/{RELEASE}/kernel/drivers/x.ko": b"\x7fELF"})
    src = _deb(debs, "linux-source-6.1", "6.1.176-1",
               {"usr/src/linux-source-6.1.tar.xz": _source_tarball()})
    return image, src


@needs_apt
def test_prebuilt_metapackage_resolves_to_the_concrete_package(bookworm):
    image, _ = bookworm
    p = packages.resolve("debian:linux-image-amd64@bookworm")
    assert (p.name, p.suite, p.deb, p.version) == (f"linux-image-{RELEASE}", "bookworm", image,
                                                    "6.1.176-1")
    assert p.digest == sha256_id(image) and p.spec == f"debian:linux-image-{RELEASE}@bookworm"
    assert packages.resolve(p.spec) == p                # a concrete name is itself


@needs_apt
def test_one_unpack_of_a_deb_serves_analyze_and_boot(bookworm):
    image, _ = bookworm
    plain = debian.unpacked(image)
    assert debian.unpacked(image) == plain and plain.name == sha256_id(image).removeprefix("sha256:")
    kernel = packages.resolve_kernel("debian:linux-image-amd64@bookworm")
    assert kernel.parts == (packages.resolve("debian:linux-image-amd64@bookworm"),)   # old packaging
    tree = packages.unpacked_kernel(kernel)          # with module indexes: a tree of its own
    assert (tree / "lib" / "modules" / RELEASE / "modules.alias").is_file()
    found = locate("debian:linux-image-amd64@bookworm")
    assert found.image == tree / "boot" / f"vmlinuz-{RELEASE}"
    assert found.modules == tree / "lib" / "modules" / RELEASE and found.release == RELEASE
    assert found.identity == sha256_id(image)
    assert locate(image).image == plain / "boot" / f"vmlinuz-{RELEASE}"   # the .deb itself
    booted = boot_kernel.load("debian:linux-image-amd64@bookworm")
    assert (booted.label, booted.image, booted.identity) == (RELEASE, found.image, found.identity)


@needs_apt
def test_debian_source_metapackage_is_its_tarball(bookworm):
    src = sources.resolve("debian:linux-source@bookworm")
    assert src.kind == "debian" and src.version == "6.1.176"
    inner = debian.unpacked(bookworm[1]) / "usr/src/linux-source-6.1.tar.xz"
    assert src.identity == sources.resolve(f"tarball:{inner}").identity


@needs_apt
def test_a_run_of_a_package_its_suite_lacks_is_one_line_before_any_work(bookworm, tmp_path,
                                                                         monkeypatch):
    """Lists a day old are not read at spec load; the run brings them up to date
    (a stand-in for apt-get update here: the fixture lists become fresh) and a
    missing package is the spec's fault, naming the suite; no run directory."""
    import os
    from pvmatrix.matrix import runner
    stamp = debian.stamp("bookworm")
    os.utime(stamp, (1, 1))                              # the lists are stale
    refreshed = []
    monkeypatch.setattr(debian, "refresh", lambda suite: (refreshed.append(suite), stamp.touch()))
    spec = tmp_path / "missing.toml"
    spec.write_text('[matrix]\nroles = []\nhardware = ["default"]\n'
                    '[[kernel]]\nname = "k"\npackage = "debian:linux-image-9.9.9-amd64@bookworm"\n')
    results = tmp_path / "results"
    with pytest.raises(UserError) as err:
        runner.run(str(spec), results, show=False)
    assert str(err.value) == (f"{spec}: kernel[0].package: Debian package "
                              "linux-image-9.9.9-amd64 not found in suite(s) bookworm")
    assert refreshed == ["bookworm"]
    assert not results.exists() or not any(results.iterdir())
