"""The matrix's unit of work: a Task (what runs; one task may decide several
cells). A cell, what is recorded and reported, is results.records.Cell, and
what it ended in is a records.Verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..results.records import Cell
from ..digest import short as short_sha256

STAGES = ("source", "build", "analyze", "boot")
# A Xen boot task's dependency on the boot_hosted task that boots many kernels'
# guests together (plan.py): optional, and left out when the task boots on its
# own again (a retry, `pvmatrix rerun`: a kernel alone is measured again).
HOSTED = "hosted"


def alone(deps: dict[str, str]) -> dict[str, str]:
    """DEPS without the HOSTED one."""
    return {k: v for k, v in deps.items() if k != HOSTED}


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
            digest = short_sha256(blob)
            self.key = f"{self.stage}-{self.kernel}-{digest}"

    def payload(self) -> dict:
        """What the worker gets: plain data only."""
        return {"key": self.key, "stage": self.stage, "kernel": self.kernel, "func": self.func,
                "args": self.args, "cells": [c.to_dict() for c in self.cells],
                "resources": dict(self.resources)}

