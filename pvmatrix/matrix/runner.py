"""`pvmatrix run`: plan the spec, run its tasks on Dask, record every cell as
it finishes, index it, and compare with the previous run of the same spec."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, TextIO

from . import host, outcomes, scheduler
from .outcomes import TaskOutcome
from ..records import BROKEN, NOT_RUN, PASS, SKIP
from ..report import html, markdown, terminal
from ..results import store
from ..results.compare import compare, regressions, reproduced
from ..results.index import Index
from .plan import Plan, make_plan
from .progress import Progress
from .recording import keep_logs, make_record
from .retry import DEFAULT_RETRIES, retry_cells
from .spec import load

DEFAULT_RESULTS = Path("results")

# Called with (previous run, this run, ids of its reproduced regressions, stream)
# after the summary: `pvmatrix run --bisect` bisects them (pvmatrix.bisect sits
# above the matrix, so the command line hands it in).
AfterRun = Callable[[store.Run, store.Run, list[str], TextIO], None]


def write_reports(run: store.Run) -> None:
    """report.md and report.html next to the records (the page links into the run)."""
    (run.dir / "report.md").write_text(markdown.render(run))
    (run.dir / "report.html").write_text(html.render(run))


def _lasting(outcome: TaskOutcome) -> bool:
    """Worth reusing on --resume: no cell broken or not run."""
    return all(c.verdict.status not in (BROKEN, NOT_RUN) for c in outcome.cells.values())


def execute(plan: Plan, run: store.Run, index: Index, address: str | None,
            progress: Progress, done: dict[str, dict]) -> None:
    """Run PLAN's tasks, recording each cell as its task finishes."""
    def on_done(key: str, outcome: TaskOutcome | None, error: BaseException | None) -> None:
        task = plan.task(key)
        if outcome is None:
            outcome = outcomes.broken(task.payload(), error or RuntimeError("no outcome"))
        statuses = []
        for cell in task.cells:
            rec = make_record(run, task, cell, outcome)
            keep_logs(run, rec)
            run.record(rec)
            index.add_cell(run.id, rec)
            statuses.append(rec.verdict.status)
        first_bad = next((got.verdict.reason for c in task.cells
                          if (got := outcome.cells.get(c.id))
                          and got.verdict.status not in (PASS, SKIP)), "")
        if _lasting(outcome):             # after its records: --resume trusts it
            run.save_outcome(outcome.to_dict())
        progress.finished(task.stage, task.kernel, statuses, outcome.seconds, outcome.cached,
                          first_bad[:100])

    with scheduler.client(address) as (c, offered):
        futures = scheduler.submit_all(c, plan.tasks, offered, done)
        scheduler.wait_each(futures, on_done)


def run(spec_path: str | None, results: Path = DEFAULT_RESULTS, resume: bool = False,
        recheck: bool = False, address: str | None = None, stream=sys.stderr,
        show: bool = True, retries: int = DEFAULT_RETRIES,
        after: AfterRun | None = None) -> tuple[int, store.Run]:
    """The main job. Returns (exit code, run): 1 when a cell regressed against the
    previous run of the same spec and RETRIES more attempts did not pass (see
    retry.py), else 0. AFTER: called with such cells (e.g. to bisect them)."""
    spec = load(spec_path)
    plan = make_plan(spec, recheck)
    if address:
        scheduler.check(address)            # before a run directory is made
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
        current = store.create(results, spec, host.facts())
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
    if after and reproduced(changes):
        after(store.open_run(results, previous), current, [c.cell for c in reproduced(changes)],
              stream)
    return (1 if reproduced(changes) else 0), current

