"""`pvmatrix run`: plan the spec, run its tasks on Dask, record every cell as
it finishes, index it, and compare with the previous run of the same spec."""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from . import outcomes, scheduler
from ..results import provenance, store
from .cells import BROKEN, NOT_RUN, Task, Verdict, safe_name
from ..results.compare import compare, regressions, reproduced
from ..results.index import Index
from .plan import Plan, make_plan
from .progress import Progress
from .retry import DEFAULT_RETRIES, retry_cells
from .spec import load

DEFAULT_RESULTS = Path("results")


def make_record(run: store.Run, task: Task, cell, outcome: dict) -> dict:
    got = outcome["cells"].get(cell.id) or {
        "verdict": Verdict(BROKEN, "the task returned no verdict for this cell", "harness").to_dict()}
    return {"schema": store.SCHEMA, "run_id": run.id, "cell": cell.to_dict(), "task": task.key,
            "task_def": {"func": task.func, "args": task.args, "deps": task.deps,
                         "resources": task.resources},
            "verdict": got["verdict"], "inputs": outcome.get("inputs", {}),
            "manifest": outcome.get("manifest", {}) if task.stage in ("source", "build") else {},
            "provenance": provenance.record(outcome, got),
            "durations": {"task_s": outcome.get("seconds", 0.0), **(got.get("durations") or {})},
            "logs": got.get("logs") or {}, "boot": got.get("boot"),
            "cached": bool(outcome.get("cached")), "finished": time.time()}


def keep_logs(run: store.Run, rec: dict, suffix: str = "") -> None:
    """Copy a boot's serial log and its plain QEMU script into the run (small; the
    cache may be cleaned) as logs/CELL[SUFFIX].serial.log and .qemu.sh, name the
    copies in the record, and write logs/CELL.rerun.sh (see reproducers())."""
    logs = rec.get("logs") or {}
    serial, script = logs.get("serial"), logs.get("qemu_script")
    if not serial or not Path(serial).is_file():
        return
    base = run.dir / "logs" / f"{safe_name(rec['cell']['id'])}{suffix}"
    base.parent.mkdir(exist_ok=True)
    shutil.copyfile(serial, f"{base}.serial.log")
    logs["serial_copy"] = f"logs/{base.name}.serial.log"
    if script and Path(script).is_file():
        shutil.copyfile(script, f"{base}.qemu.sh")
        Path(f"{base}.qemu.sh").chmod(0o755)
        logs["qemu_script_copy"] = f"logs/{base.name}.qemu.sh"
    if not suffix:
        reproducers(run, rec)


def reproducers(run: store.Run, rec: dict) -> None:
    """A boot cell's two reproducers, named in rec["reproduce"]: `pvmatrix rerun`
    (the cell's task again, from the cached inputs this run used) in
    logs/CELL.rerun.sh, and the plain QEMU script (logs/CELL.qemu.sh)."""
    cell = rec["cell"]["id"]
    command = f"pvmatrix rerun {shlex.quote(str(run.dir.resolve()))} {shlex.quote(cell)}"
    path = run.dir / "logs" / f"{safe_name(cell)}.rerun.sh"
    path.write_text(f"#!/bin/sh\n# Reruns cell {cell} of run {run.id} from the cached inputs it used\n"
                    f"# (a real boot, the outcome cache bypassed); exit 0 when it passes.\n"
                    f"exec {command} \"$@\"\n")
    path.chmod(0o755)
    rec["reproduce"] = {"command": command, "rerun_script": f"logs/{path.name}",
                        "qemu_script": rec["logs"].get("qemu_script_copy")}


def write_reports(run: store.Run) -> None:
    """report.md and report.html next to the records (the page links into the run)."""
    from ..report import html, markdown
    (run.dir / "report.md").write_text(markdown.render(run))
    (run.dir / "report.html").write_text(html.render(run))


def _lasting(outcome: dict) -> bool:
    """Worth reusing on --resume: no cell broken or not run."""
    return all(c["verdict"]["status"] not in (BROKEN, NOT_RUN) for c in outcome["cells"].values())


def execute(plan: Plan, run: store.Run, index: Index, address: str | None,
            progress: Progress, done: dict[str, dict]) -> None:
    """Run PLAN's tasks, recording each cell as its task finishes."""
    def on_done(key: str, outcome: dict | None, error: BaseException | None) -> None:
        task = plan.task(key)
        if outcome is None:
            outcome = outcomes.broken(task.payload(), error or RuntimeError("no outcome"))
        statuses = []
        for cell in task.cells:
            rec = make_record(run, task, cell, outcome)
            keep_logs(run, rec)
            run.record(rec)
            index.add_cell(run.id, rec)
            statuses.append(rec["verdict"]["status"])
        first_bad = next((outcome["cells"][c.id]["verdict"]["reason"] for c in task.cells
                          if c.id in outcome["cells"]
                          and outcome["cells"][c.id]["verdict"]["status"] not in ("pass", "skip")), "")
        if _lasting(outcome):             # after its records: --resume trusts it
            run.save_outcome(outcome)
        progress.finished(task.stage, task.kernel, statuses, outcome.get("seconds", 0.0),
                          bool(outcome.get("cached")), first_bad[:100])

    with scheduler.client(address) as (c, offered):
        futures = scheduler.submit_all(c, plan.tasks, offered, done)
        scheduler.wait_each(futures, on_done)


def run(spec_path: str | None, results: Path = DEFAULT_RESULTS, resume: bool = False,
        recheck: bool = False, address: str | None = None, stream=sys.stderr,
        show: bool = True, retries: int = DEFAULT_RETRIES,
        bisect: bool = False) -> tuple[int, store.Run]:
    """The main job. Returns (exit code, run): 1 when a cell regressed against the
    previous run of the same spec and RETRIES more attempts did not pass (see
    retry.py), else 0. BISECT: such a cell of a kernel built from another commit
    of the same git tree is then bisected between the two commits."""
    spec = load(spec_path)
    plan = make_plan(spec, recheck)
    results = Path(results)
    current = store.last_unfinished(results, spec.name) if resume else None
    if resume and current is None:
        print(f"pvmatrix: no unfinished run of spec {spec.name!r} in {results}; starting a new one",
              file=stream)
    done: dict[str, dict] = {}
    if current is not None:
        wanted = {t.key for t in plan.tasks}
        done = {k: v for k, v in current.outcomes().items() if k in wanted}
        current.update(state="running")
        print(f"pvmatrix: resuming run {current.id}: {len(done)} of {len(plan.tasks)} tasks "
              "already done", file=stream)
    else:
        current = store.create(results, spec)
    index = Index(results)
    index.add_run(current)
    progress = Progress(Counter(t.stage for t in plan.tasks), stream)
    for t in plan.tasks:
        if t.key in done:
            progress.done[t.stage] += 1
    print(f"pvmatrix: run {current.id} of spec {spec.name} ({spec.path}) -> {current.dir}",
          file=stream)
    progress.begin()
    try:
        execute(plan, current, index, address, progress, done)
        progress.end()
        previous = index.previous_run(spec.name, current.id)
        changes = compare(store.open_run(results, previous), current) if previous else []
        if regressions(changes) and retries > 0:
            retry_cells(plan, current, index, [c.cell for c in regressions(changes)], retries,
                        address, stream)
            changes = compare(store.open_run(results, previous), current)
    except BaseException:
        progress.end()
        current.update(state="interrupted", finished=time.time())
        index.add_run(current)
        write_reports(current)
        index.close()
        print(f"pvmatrix: run {current.id} stopped; finished cells are recorded "
              "(pvmatrix run --resume continues)", file=stream)
        raise
    current.update(state="complete", finished=time.time(), wall_s=round(progress.elapsed(), 2))
    index.add_run(current)
    write_reports(current)
    index.close()
    if show:
        from ..report import terminal
        print(terminal.render(current))
    if previous is None:
        return 0, current
    bad = regressions(changes)
    print(f"\ncompared with run {previous}: {len(bad)} regression(s) "
          f"({len(reproduced(changes))} not flaky), "
          f"{sum(c.kind == 'fix' for c in changes)} fix(es), "
          f"{sum(c.kind == 'changed' for c in changes)} other change(s)")
    for ch in bad:
        label = "REGRESSION" if ch.reproduced else "FLAKY"
        print(f"  {label} {ch.cell}: {'fail (flaky)' if ch.flaky_before else ch.before} -> "
              f"{ch.retries or ch.after}: {ch.reason[:120]}")
    if bisect and reproduced(changes):
        _bisect(store.open_run(results, previous), current, [c.cell for c in reproduced(changes)],
                stream)
    return (1 if reproduced(changes) else 0), current


def _bisect(before: store.Run, after: store.Run, cells: list[str], stream) -> None:
    from ..bisect import after_run
    from ..results.compare import statuses
    todo = after_run.jobs(statuses(before), statuses(after), cells)
    if not todo:
        print("no regression to bisect: none is of a kernel built from two commits of one "
              "git tree", file=stream)
    for r in after_run.run_jobs(todo, after.dir, lambda m: print(f"pvmatrix: {m}", file=stream)):
        if r.get("first_bad"):
            print(f"  BISECTED {r['cell']}: first bad commit {r['first_bad']} {r['subject']} "
                  f"({len(r['steps'])} step(s))")
        else:
            print(f"  NOT BISECTED {r['cell']}: {r.get('error') or 'skipped commits hide it: '}"
                  f"{' '.join(c[:12] for c in r.get('could_be', []))}")
