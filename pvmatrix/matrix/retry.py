"""Retry before regression: a cell that passed in the previous run of the spec
and fails now is run again (default 2 more times) before it is called a
regression. Only the tasks owning such cells run again (one Xen boot decides
its dom0 and domU cells together), for real: the outcome cache is bypassed
and a retry's outcome is never cached.

The cell's verdict stays its first attempt's (its status, reason, evidence):
a kernel that failed once did fail, with evidence. The record gains

    "retries": {"attempts": [{"attempt": 1, "status": "fail", ...}, ...],
                "failed": F, "passed": P, "of": N,
                "outcome": "reproduced" | "flaky" | "unconfirmed",
                "summary": "fail, reproduced 3/3" | "fail once, passed on retry (flaky)" | ...}
    "flaky": true | false

Retrying a cell stops at its first passing attempt (flaky is then settled).
"reproduced": every retry failed; "flaky": a retry passed; "unconfirmed": no
retry gave a verdict (each broken, blocked ...). Only flaky regressions leave
the exit status of `pvmatrix run` at 0.
"""

from __future__ import annotations

import dataclasses
from typing import TextIO

from . import outcomes, scheduler
from .outcomes import TaskOutcome
from ..results import store
from ..records import FAIL, PASS
from .cells import Task, alone
from ..results.index import Index
from ..results.records import CellRecord, RunFlags
from .plan import Plan
from .recording import keep_logs, make_record

DEFAULT_RETRIES = RunFlags().retries


def attempt_of(rec: CellRecord, n: int) -> dict:
    """One attempt's summary (for rec.retries["attempts"])."""
    v = rec.verdict
    return {"attempt": n, "status": str(v.status), "detail": v.detail, "reason": v.reason,
            "seconds": rec.durations.get("task_s"), "serial": rec.logs.get("serial_copy")}


def summarize(attempts: list[dict]) -> dict:
    """The retries block of a record from its attempts (the first is the run's own)."""
    retries = attempts[1:]
    failed = sum(a["status"] == FAIL for a in attempts)
    passed = sum(a["status"] == PASS for a in attempts)
    of = len(attempts)
    if passed:
        outcome = "flaky"
        summary = ("fail once" if failed == 1 else f"fail {failed}/{of}") + \
            ", passed on retry (flaky)"
    elif retries and all(a["status"] == FAIL for a in retries):
        outcome, summary = "reproduced", f"fail, reproduced {failed}/{of}"
    else:
        outcome = "unconfirmed"
        summary = f"fail, not confirmed: retries {', '.join(a['status'] for a in retries) or 'none'}"
    return {"attempts": attempts, "failed": failed, "passed": passed, "of": of,
            "outcome": outcome, "summary": summary}


def _retry_task(task: Task, n: int) -> Task:
    """TASK again as attempt N: a new key, boots and analyses forced to run, on
    its own (not from the boot it shared with other kernels' guests)."""
    args = {**task.args, "recheck": True, "retry": n}
    return dataclasses.replace(task, args=args, deps=alone(task.deps), key="")


def _deps_of(plan: Plan, task: Task) -> list[Task]:
    """TASK's dependencies, transitively, in plan order."""
    want, todo = set(), list(task.deps.values())
    while todo:
        key = todo.pop()
        if key not in want:
            want.add(key)
            todo += list(plan.task(key).deps.values())
    return [t for t in plan.tasks if t.key in want]


def retry_cells(plan: Plan, run: store.Run, index: Index, cells: list[str], retries: int,
                address: str | None, stream: TextIO) -> dict[str, dict]:
    """Run the tasks owning CELLS up to RETRIES more times; update their records.
    Returns cell id -> its retries block."""
    # a build's compile error is not retried: it fails the same way (and a failed
    # build's warm tree starts empty, so each retry would cost a cold build)
    records = {r.cell.id: r for r in map(CellRecord.from_dict, run.records())
               if r.cell.id in cells and r.cell.stage != "build"}
    if not records:
        return {}
    owners = {t.key: t for t in plan.tasks if any(c.id in records for c in t.cells)}
    attempts = {cid: [attempt_of(rec, 1)] for cid, rec in records.items()}
    done = run.outcomes()
    print(f"pvmatrix: retrying {len(records)} regressed cell(s) in {len(owners)} task(s), "
          f"up to {retries} more time(s)", file=stream)
    with scheduler.client(address) as (client, offered):
        for n in range(2, retries + 2):
            todo = [t for t in owners.values()
                    if any(c.id in records and attempts[c.id][-1]["status"] != PASS for c in t.cells)]
            if not todo:
                break
            again = {_retry_task(t, n).key: (t, _retry_task(t, n)) for t in todo}
            needed = {d.key: d for t in todo for d in _deps_of(plan, _retry_task(t, n))}
            missing = [k for k in needed if k not in done]
            if missing:
                print(f"pvmatrix: cannot retry: outcome of {missing[0]} not recorded", file=stream)
                break
            futures = scheduler.submit_all(client, [*needed.values(), *(r for _, r in again.values())],
                                           offered, done)

            def on_done(key: str, outcome: TaskOutcome | None, error: BaseException | None) -> None:
                if key not in again:
                    return
                task, _ = again[key]
                if outcome is None:
                    outcome = outcomes.broken(again[key][1].payload(), error or RuntimeError("lost"))
                for c in task.cells:
                    if c.id not in records:
                        continue
                    rec = make_record(run, task, c, outcome)
                    keep_logs(run, rec, f".attempt{n}")
                    attempts[c.id].append(attempt_of(rec, n))
                    print(f"pvmatrix: retry {n - 1}/{retries} of {c.id}: {rec.verdict.status}"
                          f" {rec.verdict.reason[:90]}", file=stream)

            scheduler.wait_each(futures, on_done)
    out = {}
    for cid, rec in records.items():
        rec.retries = out[cid] = summarize(attempts[cid])
        rec.flaky = rec.retries["outcome"] == "flaky"
        run.record(rec)
        index.add_cell(run.id, rec)
    return out
