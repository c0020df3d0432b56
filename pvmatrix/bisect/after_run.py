"""Bisection on its own after `pvmatrix run --bisect`: a boot cell that regressed
against the previous run, whose kernel is built from the same git tree at
another commit, is bisected between the two commits with the kernel's own
recipe (and the same dom0 when another kernel hosted it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..build.facts import BuildFacts
from ..paths import write_whole
from ..matrix.outcomes import Facts, KernelFacts, facts_of
from ..results.compare import statuses
from ..results.records import safe_name
from ..results.store import Run
from .commits import Recipe, bisect
from .probe import CellSpec


@dataclass
class Job:
    cell: str
    repo: str
    good: str
    bad: str
    spec: CellSpec
    recipe: Recipe
    dom0: str | None


def _facts(rec: dict | None) -> Facts | None:
    """The facts a source or build cell record keeps (its `manifest`), or None."""
    return facts_of(rec["cell"]["stage"], rec.get("manifest") or {}) if rec else None


def _git(facts: Facts | None) -> tuple[str, str] | None:
    """(repository path, commit) of a build from a git source, else None."""
    if not isinstance(facts, BuildFacts) or not facts.source.startswith("git:") \
            or not facts.identity.startswith("git:"):
        return None
    return facts.source.removeprefix("git:").rpartition("@")[0], facts.identity.removeprefix("git:")


def jobs(before: dict[str, dict], after: dict[str, dict], cells: list[str]) -> list[Job]:
    """What can be bisected among the regressed CELLS, given both runs' records by cell id."""
    out = []
    for cell_id in cells:
        rec = after.get(cell_id)
        if not rec or rec["cell"]["stage"] != "boot":
            continue
        kernel = rec["cell"]["kernel"]
        new_build, old_build = after.get(f"{kernel}/build"), before.get(f"{kernel}/build")
        if not new_build or not old_build:
            continue
        m = _facts(new_build)
        new, old = _git(m), _git(_facts(old_build))
        if not new or not old or new[0] != old[0] or new[1] == old[1]:
            continue
        dom0 = None
        host = (rec.get("inputs") or {}).get("dom0_kernel")
        if host and host != kernel:
            hosted = _facts(after.get(f"{host}/build") or after.get(f"{host}/source"))
            dom0 = hosted.boot_kernel if isinstance(hosted, KernelFacts) else None
        c = rec["cell"]
        out.append(Job(cell_id, new[0], old[1], new[1],
                       CellSpec.parse(c["role"], c.get("xen"), c.get("hardware") or "default"),
                       Recipe(m.base, list(m.fragments), m.toolchain), dom0))
    return out


def run_jobs(todo: list[Job], run_dir: Path, say) -> list[dict]:
    """Bisect each job; results go to RUN_DIR/bisect/CELL.json. A bisection
    that cannot run (e.g. the old commit does not pass any more) says why."""
    results = []
    (run_dir / "bisect").mkdir(exist_ok=True)
    for job in todo:
        say(f"bisecting {job.cell} in {job.repo}: {job.good[:12]}..{job.bad[:12]}")
        try:
            r = bisect(job.repo, job.good, job.bad, job.spec, job.recipe, job.dom0, say=say)
            summary = {**r.to_dict(), "cell": job.cell, "cell_spec": r.cell}
        except Exception as exc:          # the run is done: a bisection must not undo its exit
            text = str(exc).strip().splitlines()
            summary = {"cell": job.cell, "error": text[-1] if text else type(exc).__name__}
        write_whole(run_dir / "bisect" / f"{safe_name(job.cell)}.json",
                    json.dumps(summary, indent=2, default=str))
        results.append(summary)
    return results


def bisect_regressions(before: Run, after: Run, cells: list[str], stream: TextIO) -> None:
    """`pvmatrix run --bisect`: bisect the reproduced regressions CELLS of run AFTER
    (against BEFORE) that can be, and print what each bisection found."""
    todo = jobs(statuses(before), statuses(after), cells)
    if not todo:
        print("no regression to bisect: none is of a kernel built from two commits of one "
              "git tree", file=stream)
    for r in run_jobs(todo, after.dir, lambda m: print(f"pvmatrix: {m}", file=stream)):
        if r.get("first_bad"):
            print(f"  BISECTED {r['cell']}: first bad commit {r['first_bad']} {r['subject']} "
                  f"({len(r['steps'])} step(s))")
        else:
            print(f"  NOT BISECTED {r['cell']}: {r.get('error') or 'skipped commits hide it: '}"
                  f"{' '.join(c[:12] for c in r.get('could_be', []))}")
