"""Each spec's runs as one line each in RESULTS/history/SPEC.jsonl: every cell's
status in that run. The published folder of a run is kept only for the latest
run of a spec; the history keeps the older ones' verdicts (the page's history
strips and triage labels read it).

    {"run_id": ..., "started": ..., "state": ..., "cells": {"CELL": "pass", ...},
     "flaky": ["CELL", ...]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..paths import write_whole
from ..records import FAIL, PASS

STRIP = 10                  # runs shown in a cell's history strip


@dataclass
class Entry:
    """One run of a spec, as the history keeps it."""
    run_id: str
    started: float
    state: str
    cells: dict[str, str]
    flaky: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, meta: dict, records: list[dict]) -> Entry:
        return cls(meta["run_id"], meta.get("started") or 0, meta.get("state") or "",
                   {r["cell"]["id"]: r["verdict"]["status"] for r in records},
                   sorted(r["cell"]["id"] for r in records if r.get("flaky")))


def path(results: Path, spec_name: str) -> Path:
    return results / "history" / f"{spec_name}.jsonl"


def load(results: Path, spec_name: str) -> list[Entry]:
    """The spec's runs, oldest first."""
    p = path(results, spec_name)
    if not p.is_file():
        return []
    entries = [Entry(**json.loads(line)) for line in p.read_text().splitlines() if line.strip()]
    return sorted(entries, key=lambda e: (e.started, e.run_id))


def add(results: Path, spec_name: str, entry: Entry) -> list[Entry]:
    """ENTRY in the spec's history (replacing the same run's line); the history."""
    entries = [e for e in load(results, spec_name) if e.run_id != entry.run_id] + [entry]
    entries.sort(key=lambda e: (e.started, e.run_id))
    p = path(results, spec_name)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_whole(p, "".join(json.dumps(asdict(e), sort_keys=True) + "\n" for e in entries))
    return entries


@dataclass(frozen=True)
class Past:
    """One cell over the runs up to one run: its statuses, oldest first."""
    runs: list[tuple[str, str]]          # (run id, status), the run itself last
    flaky: bool = False                  # the run's retries passed (matrix/retry.py)

    def strip(self) -> list[tuple[str, str]]:
        return self.runs[-STRIP:]

    def triage(self) -> str:
        """A failing cell's label: "new regression" (it passed in the previous
        run), "never passed", "flaky (k of n)" (it went from pass to fail and
        back within the shown runs, or a retry passed), or "known failure"
        (it failed in the previous run too). "" for a cell that did not fail."""
        statuses = [s for _, s in self.strip()]
        if not statuses or statuses[-1] != FAIL:
            return ""
        fails = sum(s == FAIL for s in statuses)
        if self.flaky:
            return f"flaky ({fails} of {len(statuses)})"
        if PASS not in (s for _, s in self.runs):
            return "never passed"
        decided = [s for s in statuses if s in (PASS, FAIL)]
        if len(decided) >= 2 and decided[-2] == PASS:
            flips = sum(a != b for a, b in zip(decided, decided[1:]))
            return f"flaky ({fails} of {len(statuses)})" if flips >= 3 else "new regression"
        flips = sum(a != b for a, b in zip(decided, decided[1:]))
        return f"flaky ({fails} of {len(statuses)})" if flips >= 3 else "known failure"


def pasts(entries: list[Entry], run_id: str) -> dict[str, Past]:
    """Every cell of RUN_ID with its past, from ENTRIES (a spec's history)."""
    upto: list[Entry] = []
    for e in entries:
        upto.append(e)
        if e.run_id == run_id:
            break
    else:
        return {}
    last = upto[-1]
    return {cell: Past([(e.run_id, e.cells[cell]) for e in upto if cell in e.cells],
                       cell in last.flaky) for cell in last.cells}
