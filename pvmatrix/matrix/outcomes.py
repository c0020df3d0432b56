"""What a task returns (small, JSON-able: never artifacts) and the cache of
outcomes by their inputs, so a rerun with nothing changed redoes nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..analyze.facts import AnalysisFacts
from ..boot.verdicts import EARLIER_STEP
from ..build.facts import BuildFacts
from ..errors import status_of
from ..paths import DATA, cache_dir, write_whole
from ..records import BLOCKED, PASS, BootFacts, Evidence, Status, Verdict
from ..sources.facts import PackageFacts, SourceFacts

CACHEABLE = ("pass", "fail", "skip")


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()




# What a kernel-making task hands on: a built kernel, or a prebuilt package.
KernelFacts = BuildFacts | PackageFacts
Facts = SourceFacts | PackageFacts | BuildFacts | AnalysisFacts


def facts_of(stage: str, data: dict) -> Facts | None:
    """STAGE's facts from their JSON (an outcome's or a cell record's `manifest`);
    None for none ({}: a boot, or a task that did not pass)."""
    if not data:
        return None
    if stage == "source":
        return (PackageFacts if "package" in data else SourceFacts).from_dict(data)
    if stage == "build":
        return BuildFacts.from_dict(data)
    if stage == "analyze":
        return AnalysisFacts.from_dict(data)
    raise ValueError(f"a {stage} task hands on no facts, got {sorted(data)}")


@dataclass
class CellOutcome:
    """One cell's verdict in its task's outcome, with what the record keeps besides
    (None: not said, and left out of the JSON)."""
    verdict: Verdict
    logs: dict | None = None
    durations: dict | None = None
    cached: bool | None = None
    boot: BootFacts | None = None   # a boot cell's facts (accel, devices, provenance, ...)

    def to_dict(self) -> dict:
        extra = {"logs": self.logs, "durations": self.durations, "cached": self.cached,
                 "boot": self.boot.to_dict() if self.boot is not None else None}
        return {"verdict": self.verdict.to_dict(), **{k: v for k, v in extra.items() if v is not None}}

    @classmethod
    def from_dict(cls, data: dict) -> CellOutcome:
        boot = data.get("boot")
        return cls(Verdict.from_dict(data["verdict"]), data.get("logs"), data.get("durations"),
                   data.get("cached"), BootFacts.from_dict(boot) if boot is not None else None)


@dataclass
class TaskOutcome:
    """What a task returns: its cells' verdicts, the FACTS it hands on to the tasks
    after it, the INPUTS its verdicts rest on (what keys the outcome cache), and
    PROVENANCE (None in outcomes from before it). to_dict() is the JSON of the
    outcome cache and of a run's tasks/; the facts go under `manifest`."""
    key: str
    stage: str
    kernel: str
    status: Status = PASS
    facts: Facts | None = None
    inputs: dict = field(default_factory=dict)
    cells: dict[str, CellOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False
    provenance: dict | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def manifest(self) -> dict:
        """The facts as JSON ({} for none)."""
        return self.facts.to_dict() if self.facts is not None else {}

    def to_dict(self) -> dict:
        out = {"key": self.key, "stage": self.stage, "kernel": self.kernel,
               "status": str(self.status), "manifest": self.manifest(), "inputs": self.inputs,
               "cells": {k: c.to_dict() for k, c in self.cells.items()},
               "seconds": self.seconds, "cached": self.cached}
        if self.provenance is not None:
            out["provenance"] = self.provenance
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TaskOutcome:
        return cls(data["key"], data["stage"], data["kernel"], Status(data["status"]),
                   facts_of(data["stage"], data.get("manifest") or {}), data.get("inputs") or {},
                   {k: CellOutcome.from_dict(c) for k, c in data.get("cells", {}).items()},
                   data.get("seconds", 0.0), data.get("cached", False), data.get("provenance"))


def new(task: dict, facts: Facts | None = None, inputs: dict | None = None) -> TaskOutcome:
    """An empty outcome for TASK, passing until a cell says otherwise."""
    return TaskOutcome(task["key"], task["stage"], task["kernel"], facts=facts,
                       inputs=inputs or {})


def cell(outcome: TaskOutcome, cell_id: str, verdict: Verdict, **extra) -> None:
    """Record CELL_ID's verdict (plus logs, durations, cached, boot) in OUTCOME."""
    outcome.cells[cell_id] = CellOutcome(verdict, **extra)


def all_cells(outcome: TaskOutcome, task: dict, verdict: Verdict) -> TaskOutcome:
    for c in task["cells"]:
        cell(outcome, c["id"], verdict)
    outcome.status = verdict.status
    return outcome


def blocked_by(task: dict, deps: dict[str, TaskOutcome | None]) -> TaskOutcome | None:
    """If a dependency did not pass, every cell of TASK is blocked, naming it."""
    for dep in deps.values():
        if dep is not None and not dep.passed:
            first = next(iter(dep.cells), dep.key)
            reason = f"{first} is {dep.status}"
            return all_cells(new(task), task, Verdict(BLOCKED, reason, str(dep.status)))
    return None


def broken(task: dict, exc: BaseException) -> TaskOutcome:
    """Every cell of TASK ends as EXC says (errors.status_of: by its class)."""
    text = str(exc) or type(exc).__name__
    return all_cells(new(task), task, Verdict(status_of(exc), text, type(exc).__name__,
                                              [Evidence(text, "error")]))


def _kernel_provenance(out: TaskOutcome | None) -> dict:
    """Provenance of a kernel from its source or build task's outcome: its inputs
    first, then its facts (a package's name and version)."""
    if out is None:
        return {}
    i = out.inputs
    got = {"source": i.get("source") or i.get("package"), "source_identity": i.get("identity"),
           "config_sha256": i.get("config_sha256"), "toolchain": i.get("toolchain"),
           "toolchain_image": i.get("toolchain_image"),
           "toolchain_image_id": i.get("toolchain_image_id")}
    facts = out.facts.provenance() if out.facts is not None else {}
    merged = {k: got.get(k) or facts.get(k) for k in {**got, **facts}}
    return {k: v for k, v in merged.items() if v}


def provenance_of(task: dict, deps: dict[str, TaskOutcome | None], out: TaskOutcome) -> dict:
    """What OUT (TASK's outcome) rests on, before any boot facts (see
    results.provenance.record(), which lists the fields)."""
    if task["stage"] in ("source", "build"):
        prov = _kernel_provenance(deps.get("source")) if task["stage"] == "build" else {}
        prov.update(_kernel_provenance(out))
        return prov
    prov = _kernel_provenance(deps.get("kernel"))
    i = out.inputs
    if i.get("dom0_kernel") and i.get("dom0_kernel_id") != i.get("kernel_id"):
        prov.update(dom0_kernel=i["dom0_kernel"], dom0_kernel_id=i["dom0_kernel_id"])
    return prov


def keep(task: dict) -> bool:
    """Whether TASK's outcome may go into the cache: a retry of a regression or a
    `pvmatrix rerun` measures again, the verdict of record stays the run's own."""
    return not task["args"].get("retry")


def _path(key: str) -> Path:
    return cache_dir("matrix", "outcomes") / f"{key}.json"


def place(cell_id: str, kernel: str) -> str:
    """A cell's place in its kernel's row: its id without the row's name (plan.py
    names every cell KERNEL/PLACE), the same whatever the row is called."""
    return cell_id.removeprefix(f"{kernel}/")


def relabel(out: TaskOutcome, task: dict) -> TaskOutcome:
    """OUT as TASK's own outcome: its key, its row, and its cells under TASK's cell
    ids, matched by their place in the row. The cache is keyed by what a verdict
    rests on, not by names, so a hit may come from a row of another name (renamed,
    or the same kernel twice): the run's records, its tasks/ (what --resume
    reuses) and its retries all know a task by its own key and cells."""
    by_place = {place(cid, out.kernel): c for cid, c in out.cells.items()}
    out.key, out.kernel = task["key"], task["kernel"]
    out.cells = {c["id"]: by_place[p] for c in task["cells"]
                 if (p := place(c["id"], task["kernel"])) in by_place}
    return out


def load(key: str, task: dict) -> TaskOutcome | None:
    """The outcome kept for input KEY as TASK's own (relabel()), marked cached; or None."""
    try:
        out = TaskOutcome.from_dict(json.loads(_path(key).read_text()))
    except (OSError, ValueError, KeyError, TypeError):   # a file of an older shape: redo
        return None
    out.cached = True
    return relabel(out, task)


def save(key: str, outcome: TaskOutcome) -> None:
    """Keep OUTCOME for its input key, if every cell ended in a lasting status (a
    lifecycle step blocked by its guest's failed earlier step is one: that
    failure is in the same outcome)."""
    if any(c.verdict.status not in CACHEABLE and c.verdict.detail != EARLIER_STEP
           for c in outcome.cells.values()):
        return
    write_whole(_path(key), json.dumps(outcome.to_dict()))


def data_file(name: str) -> str:
    return str((DATA / name).resolve())
