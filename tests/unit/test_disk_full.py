"""Writes that are whole or absent: a .deb unpack and a run's records on a
really full filesystem (a 256 KiB tmpfs, mounted by the test as root) end in
one line naming the place, and leave nothing half-written; partial unpacks of
dead processes are removed at the next unpack."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from matrix_helpers import FakeStages, row_spec
from pvmatrix.errors import HarnessFault, NoSpace
from pvmatrix.sources import debian

# a real .deb that unpacks to more than 256 KiB: pvmatrix's own Xen package if the
# shared cache has it, else one of the host's apt archives
DEBS = [Path(p) for p in sorted(glob.glob("/root/.cache/pvmatrix/apt/*/debs/xen-hypervisor-*.deb"))
        + sorted(glob.glob("/var/cache/apt/archives/*.deb"))
        if 300_000 < os.path.getsize(p) < 8_000_000]


@pytest.fixture
def real_deb(tmp_path):
    if not DEBS:
        pytest.skip("no .deb of 0.3-8 MB on this host")
    copy = tmp_path / DEBS[0].name                 # never touch the shared cache's file
    shutil.copyfile(DEBS[0], copy)
    return copy


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs, unmounted after the test."""
    where = tmp_path / "small"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def leftovers(root: Path) -> list[str]:
    """Temporary or partial files and folders under ROOT."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*")
                  if p.name.startswith((".tmp-", ".unpack-", ".new-run-")))


def test_an_unpack_on_a_full_disk_is_one_line_and_leaves_nothing(real_deb, small_fs,
                                                                  monkeypatch):
    monkeypatch.setenv("PVMATRIX_CACHE", str(small_fs))
    with pytest.raises(NoSpace) as err:
        debian.unpacked(real_deb)
    assert str(err.value) == f"no space left on device under {small_fs / 'debs'}"
    assert list((small_fs / "debs").iterdir()) == []


def test_a_failed_unpack_leaves_no_partial_folder_and_dead_ones_are_swept(
        real_deb, private_cache, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    debs = private_cache / "debs"
    debs.mkdir(parents=True)
    host = socket.gethostname()
    stale = debs / f".unpack-{dead.pid}@{host}-x1"     # a killed unpacker's
    live = debs / f".unpack-{os.getpid()}@{host}-x2"   # one under way in this process
    other = debs / f".unpack-{dead.pid}@other-{host}-x3"   # another host's (a shared cache)
    for d in (stale, live, other):
        (d / "boot").mkdir(parents=True)
        (d / "boot" / "xen.gz").write_bytes(b"half")
    broken = tmp_path / "truncated.deb"
    broken.write_bytes(real_deb.read_bytes()[:200_000])
    with pytest.raises(HarnessFault, match=f"cannot unpack {broken}: "):
        debian.unpacked(broken)
    assert sorted(p.name for p in debs.iterdir()) == sorted([live.name, other.name])
    good = debian.unpacked(real_deb)
    assert good.parent == debs and any(good.rglob("*"))
    assert sorted(p.name for p in debs.iterdir()) == sorted([live.name, other.name, good.name])


@pytest.mark.parametrize("free_kib", [4, 24, 64])
def test_a_run_on_a_full_disk_is_one_line_and_leaves_nothing_half_written(
        free_kib, small_fs, tmp_path, monkeypatch, private_cache):
    from pvmatrix.matrix import runner
    FakeStages(tmp_path).install(monkeypatch)
    ballast = small_fs / "ballast"
    with ballast.open("wb") as fh:                # fill all but FREE_KIB
        try:
            fh.write(b"\0" * (256 - free_kib) * 1024)
        except OSError:
            pass
    results = small_fs / "results"
    with pytest.raises(NoSpace) as err:
        runner.run(str(row_spec(tmp_path, "k")), results, show=False,
                   stream=open(os.devnull, "w"))
    assert str(err.value).startswith(f"no space left on device under {results}")
    assert "\n" not in str(err.value)
    assert leftovers(small_fs) == []
    for path in results.rglob("*.json"):          # every record there is whole
        json.loads(path.read_text())
    for run in results.glob("*/"):
        assert (run / "run.json").is_file() or not any(run.iterdir())


def test_the_outcome_cache_on_a_full_disk_keeps_no_half_written_outcome(small_fs, monkeypatch):
    from pvmatrix.analyze.facts import AnalysisFacts
    from pvmatrix.matrix import outcomes
    from pvmatrix.records import Verdict
    monkeypatch.setenv("PVMATRIX_CACHE", str(small_fs))
    task = {"key": "t", "stage": "analyze", "kernel": "k", "cells": [{"id": "k/analyze"}]}
    big = {"pv_domu": {"supported": True, "form": None, "evidence": ["x" * 400_000]}}
    out = outcomes.new(task, AnalysisFacts.from_dict({"release": "6.1.0", "capabilities": big}))
    outcomes.cell(out, "k/analyze", Verdict("pass", "6.1.0: PV", "PV"))
    with pytest.raises(NoSpace, match=f"^no space left on device under {small_fs}/matrix/outcomes$"):
        outcomes.save("key-1", out)
    assert list((small_fs / "matrix" / "outcomes").iterdir()) == []
    assert outcomes.load("key-1", task) is None


def test_a_task_that_fills_the_disk_stops_the_run_in_one_line_keeping_finished_cells(
        small_fs, tmp_path, monkeypatch, private_cache):
    """A boot writing into a really full filesystem (ENOSPC inside a Dask task)
    stops the run with the one line, not as one more broken cell of a run that
    goes on; the cells finished before it stay recorded, and --resume redoes it."""
    from pvmatrix.matrix import runner
    from pvmatrix.results import store
    monkeypatch.setenv("PVMATRIX_CACHE", str(small_fs))
    stages = FakeStages(tmp_path)
    stages.install(monkeypatch)
    fake_boot = stages.run_cells

    def boot_on_full_disk(*args, **kw):
        with (small_fs / "disk.img").open("wb") as fh:
            fh.write(b"\0" * 512 * 1024)          # twice the filesystem: a real ENOSPC
        return fake_boot(*args, **kw)
    monkeypatch.setattr("pvmatrix.boot.run_cells", boot_on_full_disk)
    results = tmp_path / "results"
    with pytest.raises(NoSpace) as err:
        runner.run(str(row_spec(tmp_path, "k")), results, show=False, stream=open(os.devnull, "w"))
    assert str(err.value) == f"no space left on device under {small_fs}"   # the task's cache
    run = store.all_runs(results)[-1]
    assert run.meta["state"] == "interrupted"
    got = {r["cell"]["id"]: r["verdict"] for r in run.records()}
    assert got["k/build"]["status"] == "pass", got
    boot = next(v for c, v in got.items() if "baremetal" in c)
    assert (boot["status"], boot["detail"]) == ("broken", "NoSpace"), boot

    (small_fs / "disk.img").unlink()
    monkeypatch.setattr("pvmatrix.boot.run_cells", fake_boot)
    code, resumed = runner.run(str(row_spec(tmp_path, "k")), results, resume=True, show=False,
                               stream=open(os.devnull, "w"))
    assert resumed.id == run.id and code == 0
    assert json.loads((resumed.dir / "run.json").read_text())["state"] == "complete"
