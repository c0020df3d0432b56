"""What a task returns (small, JSON-able: never artifacts) and the cache of
outcomes by their inputs, so a rerun with nothing changed redoes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from ..errors import status_of
from ..paths import DATA, cache_dir
from ..records import BLOCKED, PASS, Evidence, Verdict

CACHEABLE = ("pass", "fail", "skip")
PACKAGE = Path(__file__).resolve().parent.parent


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@lru_cache(maxsize=None)
def code_digest(*names: str) -> str:
    """A digest over the files of pvmatrix subpackages / data dirs (relative to the
    package): a verdict made by other code is not reused."""
    h = hashlib.sha256()
    for name in names:
        root = PACKAGE / name
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.name != "cli.py")                # the command line makes no verdict
        for f in files:
            h.update(str(f.relative_to(PACKAGE)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def new(task: dict, manifest: dict | None = None, inputs: dict | None = None) -> dict:
    """An empty outcome for TASK (a dict with key, stage, kernel, cells)."""
    return {"key": task["key"], "stage": task["stage"], "kernel": task["kernel"],
            "status": PASS, "manifest": manifest or {}, "inputs": inputs or {},
            "cells": {}, "seconds": 0.0, "cached": False}


def cell(outcome: dict, cell_id: str, verdict: Verdict, **extra) -> None:
    """Record CELL_ID's verdict (plus durations, logs, ...) in OUTCOME."""
    outcome["cells"][cell_id] = {"verdict": verdict.to_dict(), **extra}


def all_cells(outcome: dict, task: dict, verdict: Verdict) -> dict:
    for c in task["cells"]:
        cell(outcome, c["id"], verdict)
    outcome["status"] = str(verdict.status)
    return outcome


def blocked_by(task: dict, deps: dict[str, dict]) -> dict | None:
    """If a dependency did not pass, every cell of TASK is blocked, naming it."""
    for dep in deps.values():
        if dep is not None and dep["status"] != PASS:
            first = next(iter(dep["cells"]), dep["key"])
            reason = f"{first} is {dep['status']}"
            return all_cells(new(task), task, Verdict(BLOCKED, reason, dep["status"]))
    return None


def broken(task: dict, exc: BaseException) -> dict:
    """Every cell of TASK ends as EXC says (errors.status_of: by its class)."""
    text = str(exc) or type(exc).__name__
    return all_cells(new(task), task, Verdict(status_of(exc), text, type(exc).__name__,
                                              [Evidence(text, "error")]))


def keep(task: dict) -> bool:
    """Whether TASK's outcome may go into the cache: a retry of a regression or a
    `pvmatrix rerun` measures again, the verdict of record stays the run's own."""
    return not task["args"].get("retry")


def _path(key: str) -> Path:
    return cache_dir("matrix", "outcomes") / f"{key}.json"


def load(key: str) -> dict | None:
    try:
        data = json.loads(_path(key).read_text())
    except (OSError, ValueError):
        return None
    data["cached"] = True
    return data


def save(key: str, outcome: dict) -> None:
    """Keep OUTCOME for its input key, if every cell ended in a lasting status."""
    if any(c["verdict"]["status"] not in CACHEABLE for c in outcome["cells"].values()):
        return
    path = _path(key)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(outcome, fh)
    os.replace(tmp, path)


def data_file(name: str) -> str:
    return str((DATA / name).resolve())
