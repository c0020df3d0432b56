"""`pvmatrix rerun RUN CELL`: one cell of a recorded run again, for real, from
the inputs that run used (its dependencies' recorded outcomes: the cached
kernels, analyses), in this process, without Dask. The outcome cache is
bypassed and not written; the run's records are left as they were."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from .. import exitcodes
from ..errors import HarnessFault, NotSupported, UserError
from ..results.records import safe_name
from ..results.store import Run
from .cells import alone
from .outcomes import TaskOutcome
from .tasks import execute


def _record(run: Run, cell_id: str) -> dict:
    path = run.dir / "cells" / f"{safe_name(cell_id)}.json"
    if not path.is_file():
        raise UserError(f"run {run.id}: no cell {cell_id!r} (see {run.dir / 'cells'})")
    rec = json.loads(path.read_text())
    if not rec.get("task_def"):
        raise NotSupported(f"run {run.id}: the record of {cell_id} has no task definition "
                           "(recorded by an older pvmatrix); rerun the matrix instead")
    return rec


def rerun(run: Run, cell_id: str, out: TextIO = sys.stdout) -> int:
    """Run CELL_ID's task again; print its verdict. Exit status as `--strict` has it
    (exitcodes.for_cells): 0 pass, 1 fail, 3 broken, 4 not run."""
    rec = _record(run, cell_id)
    tdef = rec["task_def"]
    done = run.outcomes()
    deps = {}
    for name, key in alone(tdef["deps"]).items():     # a rerun boots the cell's kernel alone
        if key not in done:
            raise NotSupported(f"run {run.id}: the outcome of {key} ({name}) is not recorded, "
                               f"so {cell_id} cannot be rerun from this run's inputs")
        deps[name] = TaskOutcome.from_dict(done[key])
    cells = [r["cell"] for r in run.records() if r.get("task") == rec["task"]]
    task = {"key": rec["task"] + "-rerun", "stage": rec["cell"]["stage"],
            "kernel": rec["cell"]["kernel"], "func": tdef["func"],
            "args": {**tdef["args"], "recheck": True, "retry": "rerun"}, "cells": cells}
    outcome = execute(task, **deps)
    got = outcome.cells.get(cell_id)
    if got is None:
        raise HarnessFault(f"rerun of {cell_id}: the task gave no verdict for it")
    v = got.verdict
    print(f"{cell_id}: {v.status}: {v.reason}  (recorded in run {run.id}: "
          f"{rec['verdict']['status']})", file=out)
    for e in v.evidence[:12]:
        print(f"  {('L' + str(e.line)) if e.line else '--':>6} {e.text}", file=out)
    for name in ("serial", "qemu_script"):
        if (got.logs or {}).get(name):
            print(f"  {name}: {got.logs[name]}", file=out)
    return exitcodes.for_cells([v.status], strict=True)


def open_dir(path: str) -> Run:
    run = Path(path)
    if not (run / "run.json").is_file():
        raise UserError(f"{path}: not a run directory (no run.json)")
    return Run(run)
