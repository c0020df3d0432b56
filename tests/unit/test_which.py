"""`pvmatrix which`: the recorded runs under results/ (real, read only) and
the kernels' static coverage from a cache holding, for Debian's bookworm
(6.1.0-50) and bullseye (5.10.0-32) kernels, their real modules.alias and
config lines (tests/fixtures/analyze/machines) where the cache keeps their
unpacked packages; and Debian forky's 7.2.12 kernel, split across four
packages (linux-image -> linux-base, linux-binary, linux-modules), where
the cache keeps them unpacked together (the folder name is the real one)."""

from __future__ import annotations

import re

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pvmatrix.report.which import recorded, render, which
from pvmatrix.sources.packages import unpacked_name

ROOT = Path(__file__).parent.parent.parent
RESULTS = ROOT / "results"
FIX = ROOT / "tests" / "fixtures" / "analyze" / "machines"
KERNELS = {"7b5597492a0a65aee61985a492e6bcc3f2cde830072a0e3b3d8c7e1b90279bd3": "6.1.0-50-amd64",
           "86a6792f3a03ab15a643f385830cdaa921f15e3e9c8bf63aa55a9243c62fc797": "5.10.0-32-amd64"}


@pytest.fixture
def cache(private_cache):
    for digest, release in KERNELS.items():
        tree = private_cache / "debs" / digest
        (tree / "lib" / "modules" / release).mkdir(parents=True)
        (tree / "boot").mkdir()
        (tree / "boot" / f"vmlinuz-{release}").write_bytes(b"")
        shutil.copy(FIX / f"modules.alias-{release}", tree / "lib" / "modules" / release / "modules.alias")
        shutil.copy(FIX / f"config-{release}", tree / "boot" / f"config-{release}")
    return private_cache

FORKY = "7.2.12+deb14-amd64"
FORKY_TREE = "52f2b3d013342613c3c817cdef4b6fcecd98d4b8c85889b631ce5215aee8d8ef"   # debs/ in the real cache


@pytest.fixture
def split_cache(private_cache):
    """Forky's split kernel as pvmatrix unpacks it: one tree named by its parts."""
    mods = private_cache / "debs" / FORKY_TREE / "usr" / "lib" / "modules" / FORKY
    mods.mkdir(parents=True)
    (mods / "vmlinuz").write_bytes(b"")
    shutil.copy(FIX / f"modules.alias-{FORKY}", mods / "modules.alias")
    shutil.copy(FIX / f"config-{FORKY}", mods / "config")
    return private_cache


def _by_name(kernels):
    return {n: k for k in kernels for n in k.names}     # every name a kernel has in the runs


def test_kernels_that_drive_the_machine_and_pass_dom0_come_first(cache):
    a = which("dell-poweredge-2950", RESULTS, "dom0", "4.17")
    fits = _by_name(a.fits)
    assert "bookworm" in fits, render(a)
    book = fits["bookworm"]
    assert "debian-6.1-generic" in book.names       # the same kernel under another spec's row
    v = book.verdicts["4.17"]
    # its newest dom0 verdict, under whichever spec's row ran it last
    assert v.status == "pass" and v.cell.split("/", 1)[1].startswith("dom0/xen-4.17/")
    assert v.cell.split("/")[0] in book.names
    assert (RESULTS / v.run_id / "cells").is_dir()
    assert not book.lacks and book.cover.summary.endswith("devices covered (9 apart)")
    text = render(a)
    assert f"run {v.run_id}, cell {v.cell}" in text


def test_misses_say_what_they_lack(cache):
    a = which(str(FIX / "dell-poweredge-r220.lspci-vvnn.txt"), RESULTS, "dom0")
    assert "bullseye" in _by_name(a.fits), render(a)    # the capture's own Debian 11 kernel line
    misses = _by_name(a.misses)
    # the cloud kernel's files are not in this cache: no static answer, ranked last
    cloud = misses["debian-6.1-cloud"]
    assert cloud.cover is None and "not in the cache" in cloud.no_static
    assert a.misses[-1].cover is None
    assert cloud.verdicts["4.17"].status == "fail" and "pv_dom0: no" in cloud.verdicts["4.17"].reason
    text = render(a, misses=50)
    assert "pv_dom0: no" in text


def test_a_role_never_booted_is_ranked_by_static_coverage(cache):
    a = which("dell-poweredge-860", RESULTS, "dom0-pvh")
    assert not a.fits
    ranked = [k for k in a.misses if k.cover is not None]
    assert ranked and all(not k.verdicts for k in ranked)
    covered = [len(k.cover.counted) - len(k.cover.missing) for k in ranked]
    lacks = [len(k.lacks) for k in ranked]
    assert lacks == sorted(lacks) and (lacks[0] < lacks[-1] or covered[0] >= covered[-1])
    assert "dom0-pvh: not booted" in render(a)


def test_the_scan_is_cached_by_kernel_identity(cache):
    which("dell-poweredge-2950", RESULTS, "dom0", "4.17")
    shutil.rmtree(cache / "debs")               # the second query needs no kernel file
    a = which("dell-poweredge-2950", RESULTS, "dom0", "4.17")
    assert "bookworm" in _by_name(a.fits)


@pytest.mark.parametrize("args, says", [
    (["--hardware", "/no/such/dump"], "--hardware: unknown machine '/no/such/dump'"),
    (["--hardware", "README.md"], "--hardware: README.md: no PCI devices found"),
    (["--hardware", "dell-poweredge-860", "--role", "dom1"], "--role: unknown role 'dom1'"),
    (["--hardware", "dell-poweredge-860", "--xen", "9.9"], "--xen: unknown Xen version '9.9'"),
])
def test_bad_input_is_one_line_exit_2(private_cache, args, says):
    done = subprocess.run([sys.executable, "-c", "import sys; from pvmatrix.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "which", *args,
                           "--results", str(RESULTS)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1


def test_the_benchmark_copies_real_runs_under_new_ids(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import scan as bench
    real = bench.copy_runs(tmp_path, 12)
    from pvmatrix.results.store import all_runs
    runs = all_runs(tmp_path)
    assert len(runs) == 12 and real == len(list(RESULTS.glob("*/run.json")))
    assert all(r.meta["run_id"] == r.id for r in runs)


def test_a_split_kernel_is_found_by_its_source_record():
    forky = _by_name(recorded(RESULTS, "dom0", None).values())["forky"]
    assert forky.prebuilt is not None
    assert [p.name for p in forky.prebuilt.parts] == [
        f"linux-{w}-{FORKY}" for w in ("image", "base", "binary", "modules")]
    assert forky.kernel_id != "sha256:" + FORKY_TREE       # the identity is not the folder
    assert unpacked_name(forky.prebuilt) == FORKY_TREE


def test_a_split_kernel_gets_static_coverage(split_cache):
    a = which(str(FIX / "dell-poweredge-r220.lspci-vvnn.txt"), RESULTS, "dom0")
    kernels = _by_name(a.kernels)
    forky = kernels["forky"]
    assert forky.cover is not None, forky.no_static
    assert forky.cover.summary.startswith("14/14 devices covered") and not forky.lacks
    assert forky in a.fits and forky.passed
    # the other split kernels' trees are not in this cache: still named as such
    assert "not in the cache" in kernels["sid"].no_static
    # named by its newest row (a later spec may call it forky-generic), its other names after
    assert re.search(rf"forky[-\w]* \({re.escape(FORKY)}[^)]*\): 14/14 devices covered", render(a))


@pytest.mark.parametrize("machine", ["dell-poweredge-2950", "dell-poweredge-r320", "qemu"])
def test_the_alias_index_matches_what_every_pattern_would(machine):
    """coverage's index (by vendor and device, by vendor, the rest) finds, for
    each device, the modules a match against all of a real kernel's aliases finds."""
    from fnmatch import fnmatchcase

    from pvmatrix.analyze import coverage, machines
    from pvmatrix.analyze.modules import scan_alias_file
    scan = scan_alias_file(FIX / "modules.alias-6.1.0-50-amd64")
    profile = machines.load(machine)
    found = 0
    for d in profile.devices:
        brute = sorted({m.name for m in scan.modules for p in m.pci_aliases
                        if fnmatchcase(d.modalias, p)})
        assert sorted(m.driver for m in coverage._module_matches(d.modalias, scan)) == brute, d
        found += bool(brute)
    assert found >= 2


def test_a_runs_records_of_some_parts_are_those_cells_of_all():
    from pvmatrix.results import store
    run = max(store.all_runs(RESULTS), key=lambda r: r.meta["started"])
    every = run.records()
    some = run.records(parts=("source", "analyze", "dom0"))
    assert [r["cell"]["id"] for r in some] == \
        [r["cell"]["id"] for r in every if r["cell"]["id"].split("/")[1] in ("source", "analyze", "dom0")]
    assert 0 < len(some) < len(every) / 3
