"""`pvmatrix run`: plan the spec, run its tasks on Dask, record every cell as
it finishes, index it, and compare with the previous run of the same spec."""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from . import outcomes, scheduler, store
from .cells import BROKEN, NOT_RUN, Task, Verdict, safe_name
from .compare import compare, regressions
from .index import Index
from .plan import Plan, make_plan
from .progress import Progress
from .spec import load

DEFAULT_RESULTS = Path("results")


def make_record(run: store.Run, task: Task, cell, outcome: dict) -> dict:
    got = outcome["cells"].get(cell.id) or {
        "verdict": Verdict(BROKEN, "the task returned no verdict for this cell", "harness").to_dict()}
    return {"schema": store.SCHEMA, "run_id": run.id, "cell": cell.to_dict(), "task": task.key,
            "verdict": got["verdict"], "inputs": outcome.get("inputs", {}),
            "manifest": outcome.get("manifest", {}) if task.stage in ("source", "build") else {},
            "durations": {"task_s": outcome.get("seconds", 0.0), **(got.get("durations") or {})},
            "logs": got.get("logs") or {}, "boot": got.get("boot"),
            "cached": bool(outcome.get("cached")), "finished": time.time()}


def keep_logs(run: store.Run, rec: dict) -> None:
    """Copy a boot's serial log into the run (small; the cache may be cleaned),
    as logs/CELL.serial.log, and name the copy in the record."""
    serial = (rec.get("logs") or {}).get("serial")
    if not serial or not Path(serial).is_file():
        return
    dest = run.dir / "logs" / f"{safe_name(rec['cell']['id'])}.serial.log"
    dest.parent.mkdir(exist_ok=True)
    shutil.copyfile(serial, dest)
    rec["logs"]["serial_copy"] = str(dest.relative_to(run.dir))


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
        show: bool = True) -> tuple[int, store.Run]:
    """The main job. Returns (exit code, run): 1 when a cell regressed against the
    previous run of the same spec, else 0."""
    spec = load(spec_path)
    plan = make_plan(spec, recheck)
    scheduler.prestart(address)           # the embedded worker starts while the run is set up
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
    except BaseException:
        progress.end()
        current.update(state="interrupted", finished=time.time())
        index.add_run(current)
        write_reports(current)
        index.close()
        print(f"pvmatrix: run {current.id} stopped; finished cells are recorded "
              "(pvmatrix run --resume continues)", file=stream)
        raise
    progress.end()
    current.update(state="complete", finished=time.time(), wall_s=round(progress.elapsed(), 2))
    index.add_run(current)
    write_reports(current)
    previous = index.previous_run(spec.name, current.id)
    index.close()
    if show:
        from ..report import terminal
        print(terminal.render(current))
    if previous is None:
        return 0, current
    changes = compare(store.open_run(results, previous), current)
    bad = regressions(changes)
    print(f"\ncompared with run {previous}: {len(bad)} regression(s), "
          f"{sum(c.kind == 'fix' for c in changes)} fix(es), "
          f"{sum(c.kind == 'changed' for c in changes)} other change(s)")
    for ch in bad:
        print(f"  REGRESSION {ch.cell}: {ch.before} -> {ch.after}: {ch.reason[:120]}")
    return (1 if bad else 0), current
