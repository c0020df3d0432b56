"""`pvmatrix run`: plan the spec, run its tasks on Dask, record every cell as
it finishes, index it, and compare with the previous run of the same spec."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, TextIO

from . import host, outcomes, scheduler
from .. import exitcodes, settings
from ..errors import NoSpace, PvmError, UserError
from ..sources import packages
from ..paths import write_whole
from .outcomes import TaskOutcome
from ..records import BROKEN, NOT_RUN, PASS, SKIP
from ..report import html, markdown, terminal
from ..results import store
from ..results.compare import compare, regressions, reproduced
from ..results.index import Index
from ..results.records import RunFlags, RunRecord
from .plan import Plan, make_plan
from .progress import Progress
from .recording import keep_logs, make_record
from .retry import retry_cells
from .spec import Spec, load

DEFAULT_RESULTS = Path("results")

# Called with (previous run, this run, ids of its reproduced regressions, stream)
# after the summary: `pvmatrix run --bisect` bisects them (pvmatrix.bisect sits
# above the matrix, so the command line hands it in).
AfterRun = Callable[[store.Run, store.Run, list[str], TextIO], None]


def write_reports(run: store.Run) -> None:
    """report.md and report.html next to the records (the page links into the run)."""
    write_whole(run.dir / "report.md", markdown.render(run))
    write_whole(run.dir / "report.html", html.render(run))


def _lasting(outcome: TaskOutcome) -> bool:
    """Worth reusing on --resume: no cell broken or not run."""
    return all(c.verdict.status not in (BROKEN, NOT_RUN) for c in outcome.cells.values())


def _full_disk(outcome: TaskOutcome) -> NoSpace | None:
    """A task that found the disk full stops the run, in one line: its cells are
    recorded broken (redone by --resume), and no later task would fare better."""
    prefix = str(NoSpace("")).strip()
    return next((NoSpace(c.verdict.reason.removeprefix(prefix).strip())
                 for c in outcome.cells.values() if c.verdict.detail == NoSpace.__name__), None)


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
        if (full := _full_disk(outcome)) is not None:
            raise full

    with scheduler.client(address) as (c, offered):
        futures = scheduler.submit_all(c, plan.tasks, offered, done)
        scheduler.wait_each(futures, on_done)


def _stopped(run: store.Run, index: Index) -> None:
    """Mark RUN interrupted, as far as the disk lets (a full one is why it may have
    stopped: then run.json still says running, which --resume takes the same)."""
    try:
        run.update(state="interrupted", finished=time.time())
        index.add_run(run)
        write_reports(run)
    except (PvmError, OSError, sqlite3.Error) as exc:
        logging.getLogger(__name__).warning("run %s: marking it stopped: %s", run.id, exc)
    finally:
        index.close()


def _continued(run: store.Run, asked: RunFlags) -> RunFlags:
    """The flags RUN started with (ASKED for a run from before they were kept);
    ASKED must not set one otherwise: a resumed run continues the way it started."""
    kept = RunRecord.from_dict(run.meta).flags
    if kept is None:
        return asked
    bad = kept.differing(asked)
    if bad:
        raise UserError(f"run {run.id} started with {_shown(kept, bad)}, and --resume continues "
                        f"it that way: drop {_shown(asked, bad)} or start a new run")
    return kept


def _shown(flags: RunFlags, names: list[str]) -> str:
    return ", ".join(f"{n}={getattr(flags, n)!r}" for n in names)


def _open(spec: Spec, results: Path, resume: bool, asked: RunFlags,
          stream: TextIO) -> tuple[store.Run | None, RunFlags]:
    """The unfinished run of SPEC to resume (or None) and the flags to run with:
    the ones it started with, else ASKED with the store in effect."""
    found = store.last_unfinished(results, spec.name) if resume else None
    if resume and found is None:
        print(f"pvmatrix: no unfinished run of spec {spec.name!r} in {results}; starting a new one",
              file=stream)
    if found is not None:
        return found, _continued(found, asked)
    return None, dataclasses.replace(asked, store=asked.store or settings.current().store)


def run(spec_path: str | None, results: Path = DEFAULT_RESULTS, resume: bool = False,
        flags: RunFlags = RunFlags(), address: str | None = None, stream=sys.stderr,
        show: bool = True, after: AfterRun | None = None,
        strict: bool = False) -> tuple[int, store.Run]:
    """The main job, as FLAGS ask (a resumed run: as it started). Returns (exit
    code, run), by exitcodes.for_cells: FAIL when a cell regressed against the
    last complete run of the same spec and flags.retries more attempts did not
    pass (see retry.py); with STRICT, BROKEN or NOT_RUN for such cells; else OK.
    AFTER: called with such cells when flags.bisect (to bisect them)."""
    spec = load(spec_path)
    chosen = spec.run_settings()            # the mirror, before a run directory is made
    if address:
        scheduler.check(address)            # before a run directory is made
    with settings.use(chosen):              # a package missing from its suite: before any work
        for i, k in enumerate(spec.kernels):
            if k.package:
                _checked_package(spec, f"kernel[{i}].package", k.package)
    results = Path(results)
    current, flags = _open(spec, results, resume, flags, stream)
    resumed = current is not None
    if current is None:
        current = store.create(results, spec, host.facts(), flags)
    with current.lock(), settings.use(dataclasses.replace(chosen, store=flags.store)):
        code, done = _run(spec, results, current, resumed, flags, address, stream, show, after)
    return exitcodes.for_cells((r["verdict"]["status"] for r in done.records()), strict,
                               failing=code == exitcodes.FAIL), done


def _checked_package(spec: Spec, key: str, package: str) -> None:
    """PACKAGE is in its suite's up-to-date lists (a spec load checks only fresh ones)."""
    try:
        packages.check(package, fetch=True)
    except UserError as exc:
        raise UserError(f"{spec.path}: {key}: {exc}") from None


def _run(spec: Spec, results: Path, current: store.Run, resumed: bool, flags: RunFlags,
         address: str | None, stream: TextIO, show: bool,
         after: AfterRun | None) -> tuple[int, store.Run]:
    """run() once its run (CURRENT, RESUMED or new, locked by this process) and
    its FLAGS are known; its code says only whether a regression was reproduced."""
    plan = make_plan(spec, flags.recheck, flags.confirm)
    retries = flags.retries
    done: dict[str, dict] = {}
    if resumed:
        wanted = {t.key for t in plan.tasks}
        done = {k: v for k, v in current.outcomes().items() if k in wanted}
        current.update(state="running", flags=flags.to_dict())
        print(f"pvmatrix: resuming run {current.id}: {len(done)} of {len(plan.tasks)} tasks "
              "already done", file=stream)
        if flags != RunFlags(store=flags.store):
            shown = _shown(flags, ['recheck', 'retries', 'bisect', 'confirm'])
            print(f"pvmatrix: as it started: {shown}", file=stream)
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
        _stopped(current, index)
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
        return exitcodes.OK, current
    bad = regressions(changes)
    print(f"\ncompared with run {previous}: {len(bad)} regression(s) "
          f"({len(reproduced(changes))} not flaky), "
          f"{sum(c.kind == 'fix' for c in changes)} fix(es), "
          f"{sum(c.kind == 'changed' for c in changes)} other change(s)")
    for ch in bad:
        label = "REGRESSION" if ch.reproduced else "FLAKY"
        print(f"  {label} {ch.cell}: {'fail (flaky)' if ch.flaky_before else ch.before} -> "
              f"{ch.retries or ch.after}: {ch.reason[:120]}")
    if after and flags.bisect and reproduced(changes):
        after(store.open_run(results, previous), current, [c.cell for c in reproduced(changes)],
              stream)
    return (exitcodes.FAIL if reproduced(changes) else exitcodes.OK), current

