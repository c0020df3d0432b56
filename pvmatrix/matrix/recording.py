"""A cell's record in a run, from the outcome of the task that decided it, with
copies of its boot logs and its reproducers (used by the runner and by retries)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from ..paths import copy_whole, write_whole
from ..records import BROKEN, Verdict
from ..results import provenance, store
from ..results.records import CellRecord, TaskDef, safe_name
from .cells import Task
from .outcomes import CellOutcome, TaskOutcome


def make_record(run: store.Run, task: Task, cell, outcome: TaskOutcome) -> CellRecord:
    """CELL's record, from the OUTCOME of TASK (the task that decided it)."""
    got = outcome.cells.get(cell.id) or CellOutcome(
        Verdict(BROKEN, "the task returned no verdict for this cell", "harness"))
    return CellRecord(
        run_id=run.id, cell=cell, task=task.key,
        task_def=TaskDef(task.func, task.args, task.deps, task.resources),
        verdict=got.verdict, inputs=outcome.inputs,
        manifest=outcome.manifest() if task.stage in ("source", "build") else {},
        provenance=provenance.record(outcome.provenance, got.boot),
        durations={"task_s": outcome.seconds, **(got.durations or {})},
        logs=got.logs or {}, boot=got.boot, cached=outcome.cached, finished=time.time())


def keep_logs(run: store.Run, rec: CellRecord, suffix: str = "") -> None:
    """Copy a boot's serial log and its plain QEMU script into the run (small; the
    cache may be cleaned) as logs/CELL[SUFFIX].serial.log and .qemu.sh, name the
    copies in the record, and write logs/CELL.rerun.sh (see reproducers())."""
    logs = rec.logs
    serial, script = logs.get("serial"), logs.get("qemu_script")
    if not serial or not Path(serial).is_file():
        return
    base = run.dir / "logs" / f"{safe_name(rec.cell.id)}{suffix}"
    base.parent.mkdir(exist_ok=True)
    copy_whole(serial, Path(f"{base}.serial.log"))
    logs["serial_copy"] = f"logs/{base.name}.serial.log"
    if script and Path(script).is_file():
        copy_whole(script, Path(f"{base}.qemu.sh"))
        Path(f"{base}.qemu.sh").chmod(0o755)
        logs["qemu_script_copy"] = f"logs/{base.name}.qemu.sh"
    if not suffix:
        reproducers(run, rec)


def reproducers(run: store.Run, rec: CellRecord) -> None:
    """A boot cell's two reproducers, named in rec.reproduce: `pvmatrix rerun`
    (the cell's task again, from the cached inputs this run used) in
    logs/CELL.rerun.sh, and the plain QEMU script (logs/CELL.qemu.sh)."""
    cell = rec.cell.id
    command = f"pvmatrix rerun {shlex.quote(str(run.dir.resolve()))} {shlex.quote(cell)}"
    path = run.dir / "logs" / f"{safe_name(cell)}.rerun.sh"
    write_whole(path, f"#!/bin/sh\n# Reruns cell {cell} of run {run.id} from the cached inputs it used\n"
                    f"# (a real boot, the outcome cache bypassed); exit 0 when it passes.\n"
                    f"exec {command} \"$@\"\n")
    path.chmod(0o755)
    rec.reproduce = {"command": command, "rerun_script": f"logs/{path.name}",
                     "qemu_script": rec.logs.get("qemu_script_copy")}
