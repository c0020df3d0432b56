"""bench/reference.py without running anything: the specs it would run load
(a changed kernel, the guest-only specs), --dry-run prints the steps, and the
boots it counts from a real run's records are that run's QEMU boots."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from conftest import REPO
from pvmatrix.matrix import spec as specs

SPECS = [REPO / "specs" / "reference.toml", REPO / "specs" / "default.toml"]
# a real run of specs/debian-suites.toml: 8 kernels, each booted bare metal and
# once per Xen release (4.14, 4.17, 4.20), nothing from cache: 32 QEMU boots
SUITES_RUN = REPO / "results" / "20261127-211042-e4e2"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_reference", REPO / "bench" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module            # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_spec_it_would_run_loads(bench, path, tmp_path, private_cache):
    steps = bench.steps(path)
    assert [s.key for s in steps] == ["cold_s", "warm_one_changed_s", "guest_warmup",
                                      "guest_warm_s", "guest_plus_one_s"]
    loaded = []
    for s in steps:
        f = tmp_path / s.key / path.name
        f.parent.mkdir()
        f.write_text(s.spec)
        loaded.append(specs.load(f))
    cold, changed, _, guest, plus_one = loaded
    assert cold.name == changed.name == specs.load(path).name     # compared with the cold run
    differ = [(a.name, a.fragments, b.fragments) for a, b in zip(cold.kernels, changed.kernels)
              if a != b]
    assert len(differ) == 1 and differ[0][2] == differ[0][1] + [bench.CHANGE_FRAGMENT]
    assert guest.roles == plus_one.roles == [bench.GUEST_ROLE]
    assert [k.name for k in guest.kernels] == [cold.dom0_fallback or cold.kernels[0].name]
    assert len(plus_one.kernels) == 2 and guest.name == plus_one.name != cold.name


def test_dry_run_prints_the_steps_and_measures_nothing(tmp_path):
    done = subprocess.run([sys.executable, "bench/reference.py", "--dry-run", "--spec",
                           "specs/default.toml"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "bench/results/matrix.json" in done.stdout
    for key in ("cold_s", "warm_one_changed_s", "guest_plus_one_s", "domU_cell_marginal_s"):
        assert key in done.stdout


def test_a_missing_spec_is_one_line_exit_2():
    done = subprocess.run([sys.executable, "bench/reference.py", "--dry-run", "--spec", "nope.toml"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0


def test_boots_of_a_real_run(bench):
    if not SUITES_RUN.is_dir():
        pytest.skip(f"{SUITES_RUN.name} is no longer under results/")
    assert bench.boots(SUITES_RUN) == 8 * (1 + 3)


def test_a_warm_measure_reads_the_finished_runs_time_and_boots(bench):
    if not SUITES_RUN.is_dir():
        pytest.skip(f"{SUITES_RUN.name} is no longer under results/")
    got = bench.run_figures(SUITES_RUN)
    assert got["run_s"] == 1016.7 and got["boots"] == 32 and got["run_id"] == SUITES_RUN.name
    assert got["run_cache"]["builds"] == got["run_cache"]["builds_cached"] == 0   # prebuilt only


def test_warm_needs_one_spec():
    done = subprocess.run([sys.executable, "bench/reference.py", "--warm", "results/x"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--warm needs exactly one --spec" in done.stderr


# records of a reference run (issue 17) made at b2c75cd by boot harness 8a2de94daa58b195
REFERENCE_RUN = REPO / "tests" / "fixtures" / "results" / "old-harness-run"


def test_warm_refuses_a_run_made_by_another_boot_harness(bench, tmp_path):
    """Seen for real: `--warm` of the reference run from later code timed a cold
    boot of every kernel (its boot harness had changed since: no verdict reused)."""
    from pvmatrix.matrix.tasks import harness_digest
    assert bench.harnesses(REFERENCE_RUN) == {"8a2de94daa58b195"}
    ours = harness_digest()
    assert ours != "8a2de94daa58b195"                     # pvmatrix/boot changed since
    why = bench.other_harness(REFERENCE_RUN)
    assert "8a2de94daa58b195" in why and ours in why
    same = tmp_path / "run" / "cells"                       # its records as this code's
    same.mkdir(parents=True)
    for p in list((REFERENCE_RUN / "cells").glob("bullseye-generic_*.json"))[:5]:
        (same / p.name).write_text(p.read_text().replace("8a2de94daa58b195", ours))
    assert bench.other_harness(same.parent) is None
    done = subprocess.run([sys.executable, "bench/reference.py", "--dry-run", "--spec",
                           "specs/reference.toml", "--warm", str(REFERENCE_RUN)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "boot harness 8a2de94daa58b195" in done.stderr
