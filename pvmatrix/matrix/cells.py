"""The matrix as data: cells (what is recorded and reported), verdicts (what
a cell ended in) and tasks (what runs, one task may decide several cells).

Statuses (issue 7's taxonomy, plus one transitional state):
  pass     the kernel did what the cell asks, with evidence
  fail     the kernel or its config is at fault, with evidence
  broken   the harness or infrastructure failed (never blamed on the kernel)
  blocked  a cell it depends on did not pass (the reason names it)
  skip     not applicable (e.g. PVH on a kernel without the option), with why
  not run  the tool cannot run this cell yet (the reason says why); never a pass
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

PASS, FAIL, BROKEN, BLOCKED, SKIP, NOT_RUN = "pass", "fail", "broken", "blocked", "skip", "not run"
STATUSES = (PASS, FAIL, BROKEN, BLOCKED, SKIP, NOT_RUN)
STAGES = ("source", "build", "analyze", "boot")


@dataclass
class Evidence:
    """One line that shows why: from a log (file, line number) or a fact."""
    text: str
    note: str = ""
    line: int = 0
    log: str = ""


@dataclass
class Verdict:
    status: str
    reason: str = ""
    detail: str = ""                 # the stage's own word, e.g. "panic", "module", "cached"
    evidence: list[Evidence] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        ev = [Evidence(**e) for e in data.get("evidence", [])]
        return cls(data["status"], data.get("reason", ""), data.get("detail", ""), ev)


@dataclass(frozen=True)
class Cell:
    """One recorded result: a row (kernel) and a column of the published table."""
    id: str
    stage: str
    kernel: str
    column: str
    role: str | None = None
    xen: str | None = None
    hardware: str | None = None
    device: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Task:
    """One unit of work for the scheduler: FUNC in pvmatrix.matrix.tasks with
    ARGS and the outcomes of DEPS (arg name -> task key)."""
    stage: str
    kernel: str
    func: str
    args: dict
    deps: dict[str, str]
    cells: list[Cell]
    resources: dict[str, float]
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            blob = json.dumps([self.func, self.args, sorted(self.deps.items())], sort_keys=True)
            digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
            self.key = f"{self.stage}-{self.kernel}-{digest}"

    def payload(self) -> dict:
        """What the worker gets: plain data only."""
        return {"key": self.key, "stage": self.stage, "kernel": self.kernel, "func": self.func,
                "args": self.args, "cells": [c.to_dict() for c in self.cells]}


def safe_name(cell_id: str) -> str:
    """A file name for a cell id."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in cell_id)
