"""A real published run with machine columns, for the page's "for my machine"
view: a copy of results/20261128-002350-ddf6 (spec `default`: four kernels,
their real boots under Xen 4.17) plus, per kernel and shipped machine, the
cell the matrix's analyze_machine task gives, run through the real task code
on the kernel's real modules.alias and config lines (tests/fixtures/report/
machines: cut to what the captures need, the same coverage as the whole
tree)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pvmatrix.analyze import Analysis, coverage, machines
from pvmatrix.analyze.kconfig import read_config
from pvmatrix.analyze.modules import scan_alias_file
from pvmatrix.kernel import Kernel
from pvmatrix.matrix import plan as planmod, recording, tasks
from pvmatrix.matrix.cells import Task
from pvmatrix.results import store
from pvmatrix.results.records import machine_cell_id

from tests.unit.test_matrix_tasks import outcome

ROOT = Path(__file__).parent.parent
RUN = "20261128-002350-ddf6"
FIX = ROOT / "tests" / "fixtures" / "report" / "machines"
MACHINES = ["dell-poweredge-2950", "dell-poweredge-860", "dell-poweredge-r220"]
RELEASES = {"debian-6.1-generic": "6.1.0-50-amd64", "debian-6.1-cloud": "6.1.0-50-cloud-amd64",
            "debian-6.1-xen-min": "6.1.176-xen-min", "debian-6.12-xen-min": "6.12.117-xen-min"}


def _analysis(release: str):
    def run_analysis(_kernel, hardware):
        scan = scan_alias_file(FIX / f"modules.alias-{release}")
        config = read_config(FIX / f"config-{release}")
        return Analysis(Kernel(release), release, config=config, scan=scan, profile=hardware,
                        devices=coverage.cover(hardware, config, scan))
    return run_analysis


def _kernel_id(run: store.Run, row: str) -> str:
    rec = next(r for r in run.records() if r["cell"]["id"] == f"{row}/analyze/default")
    return rec["inputs"]["kernel_id"]


def machine_run(results: Path, cache: Path, machine_names: list[str] = MACHINES) -> store.Run:
    """The real run copied under RESULTS, its kernels' machine cells added."""
    shutil.copytree(ROOT / "results" / RUN, results / RUN)
    run = store.open_run(results, RUN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PVMATRIX_CACHE", str(cache))
        for row, release in RELEASES.items():
            mp.setattr(tasks, "run_analysis", _analysis(release))
            kernel = outcome(row, kernel_id=_kernel_id(run, row))
            for name in machine_names:
                task = Task("analyze", row, "analyze_machine",
                            {"machine": name, "profile": machines.to_args(machines.load(name))},
                            {"kernel": f"build-{row}"},
                            [planmod.Cell(machine_cell_id(row, name), "analyze", row, name,
                                          hardware=name)], {})
                out = tasks.execute(task.payload(), kernel=kernel)
                run.record(recording.make_record(run, task, task.cells[0], out))
    return run
