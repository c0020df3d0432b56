"""Toolchains by kernel version (data/toolchains.toml): each of Debian's
linux-source-X.Y gets the compiler Debian built it with, the ranges neither
overlap nor leave gaps, and the plan of specs/debian-sources.toml names each
kernel's toolchain before anything is fetched."""

from __future__ import annotations

import re

import pytest

from conftest import REPO
from pvmatrix import catalog, sources
from pvmatrix.build import toolchains
from pvmatrix.errors import NotSupported
from pvmatrix.matrix import spec
from pvmatrix.matrix.plan import make_plan, toolchain_of

SOURCES_SPEC = REPO / "specs" / "debian-sources.toml"


def _gcc(tc: catalog.Toolchain) -> int:
    return int(tc.compiler.removeprefix("gcc-"))


def newest() -> catalog.Toolchain:
    return max(catalog.all("toolchain").values(), key=_gcc)


# what Debian built each version with: the gcc in its linux-image's banner
# (e.g. "x86_64-linux-gnu-gcc-16 (Debian 16.2.0-4)" in sid's 7.2.13)
@pytest.mark.parametrize("version,compiler", [
    ("5.10.223", "gcc-10"), ("6.1.176", "gcc-12"), ("6.12.117", "gcc-14"),
])
def test_a_kernel_gets_the_compiler_debian_built_it_with(version, compiler):
    assert toolchains.pick("auto", version).compiler == compiler


@pytest.mark.parametrize("version", ["7.2.13", "7.3.4", "7.3"])
def test_a_7_2_and_later_kernel_gets_the_newest_compiler(version):
    assert toolchains.pick("auto", version) == newest()
    assert _gcc(newest()) >= 16


def test_ranges_are_contiguous_and_old_kernels_keep_old_compilers():
    """Sorted by compiler, each range starts where the one before ends: one
    toolchain per version, and a newer gcc never builds an older kernel."""
    chain = sorted(catalog.all("toolchain").values(), key=_gcc)
    for older, newer in zip(chain, chain[1:]):
        assert older.max_version == newer.min_version, (older.name, newer.name)
    assert toolchains.pick("auto", "5.10").compiler == "gcc-10"
    with pytest.raises(NotSupported):
        toolchains.pick("auto", "4.9")


def test_every_toolchain_installs_from_a_catalog_suite():
    for tc in catalog.all("toolchain").values():
        assert tc.suite in catalog.names("suite")
        assert tc.compiler in tc.containerfile.split()
        assert catalog.get("suite", tc.suite).base_image in tc.containerfile


@pytest.mark.parametrize("spec_text,expected", [
    ("debian:linux-source-7.3@trixie-backports", "7.3"),
    ("debian:linux-source-5.10", "5.10"),
    ("debian:linux-source@sid", None),        # the metapackage: known once followed
    ("git:/no/such/repo@main", None),
])
def test_a_source_names_its_version_before_any_fetch(spec_text, expected):
    assert sources.named_version(spec_text) == expected


def test_debian_sources_spec_loads_every_linux_source_with_its_toolchain(private_cache):
    s = spec.load(SOURCES_SPEC)
    assert s.xen == [catalog.default("xen").name]
    assert s.roles == ["baremetal", "dom0", "domU-pv", "domU-pvh"]
    got = {sources.named_version(k.source): toolchain_of(k) for k in s.kernels}
    assert list(got) == ["5.10", "6.1", "6.12", "7.2", "7.3"]
    assert all(k.base == "tinyconfig" and not k.prebuilt for k in s.kernels)
    compilers = {v: re.search(r"\((gcc-\d+),", t).group(1) for v, t in got.items()}
    assert compilers == {"5.10": "gcc-10", "6.1": "gcc-12", "6.12": "gcc-14",
                         "7.2": newest().compiler, "7.3": newest().compiler}
    cells = make_plan(s).cells
    for k in s.kernels:
        mine = [c for c in cells if c.kernel == k.name]
        assert [c.stage for c in mine].count("build") == 1
        assert sorted(c.role for c in mine if c.stage == "boot") == sorted(s.roles)


def test_plan_shows_auto_until_the_version_is_known():
    k = spec.KernelSpec("k", source="debian:linux-source@bookworm")
    assert toolchain_of(k).startswith("auto")
    named = spec.KernelSpec("k", source="dir:/x", toolchain="bullseye-gcc10")
    assert toolchain_of(named).startswith("bullseye-gcc10 (gcc-10")


def test_plan_command_prints_each_kernels_toolchain(private_cache, capsys):
    from pvmatrix import cli
    assert cli.main(["plan", str(SOURCES_SPEC)]) == 0
    out = capsys.readouterr().out
    for name, tc in [("debian-5.10-src", "bullseye-gcc10"), ("debian-7.3-src", newest().name)]:
        assert re.search(rf"^{re.escape(name)}\s+debian:\S+\s+{tc} \(", out, re.M), out


def test_an_image_build_failure_quotes_apts_error_line():
    """The build log of the sid toolchain image on a frozen mirror (real lines):
    the error says why, not only the step's exit status."""
    from pvmatrix.build.toolchains import _build_error
    log = [{"stream": "Get:1 http://mirror/debian sid InRelease [193 kB]\n"},
           {"stream": "E: Release file for http://mirror/debian/dists/sid/InRelease is expired "
                      "(invalid since 21d 14h 54min 45s). Updates for this repository will not be applied.\n"},
           {"error": "building at STEP \"RUN apt-get update ...\": exit status 100"}]
    assert _build_error(log).startswith("E: Release file for") and "expired" in _build_error(log)
    assert _build_error(log[2:]).endswith("exit status 100")


def test_a_suites_apt_options_reach_only_its_toolchain_image():
    from pvmatrix import catalog
    sid = catalog.get("toolchain", "sid-gcc16").containerfile
    assert "apt-get -o Acquire::Check-Valid-Until=false update" in sid
    assert "RUN apt-get update" in catalog.get("toolchain", "trixie-gcc14").containerfile
