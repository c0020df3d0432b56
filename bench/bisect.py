#!/usr/bin/env python3
"""Bisection benchmark: steps against the log2 bound, and a warm step against
a cold build.

Uses the test series (tests/bisect_series.py: Debian's 6.1 tree plus four
commits, one breaking dom0) in its own cache (bench/.cache by default), with
ccache, warm trees and artifacts emptied first so that "cold" is cold. Then,
in the bisection's own worktree: the base commit built cold, the next commit
(documentation only) and the one after (a comment in one C file) built warm,
and the bisection itself. Writes bench/results/bisect.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("PVMATRIX_CACHE", str(HERE / ".cache"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import bisect_series  # noqa: E402
from pvmatrix import build, sources  # noqa: E402
from pvmatrix.bisect import commits  # noqa: E402
from pvmatrix.bisect.probe import CellSpec  # noqa: E402
from pvmatrix.paths import cache_root  # noqa: E402

SOURCE = "debian:linux-source-6.1@bookworm"


def forget(*parts: str) -> None:
    for part in parts:
        shutil.rmtree(cache_root() / part, ignore_errors=True)


def timed_build(tree: Path, repo: Path, commit: str, recipe: commits.Recipe) -> tuple[float, float]:
    """(wall s of the whole build call, s of the build container alone)."""
    subprocess.run(["git", "-C", str(tree), "checkout", "-q", "--detach", commit], check=True)
    source = sources.Source(f"git:{repo}@{commit}", "git", f"git:{commit}", tree)
    start = time.monotonic()
    b = build.build_source(source, recipe.base, recipe.fragments, recipe.toolchain)
    assert not b.cached, "a benchmark build came from the cache"
    return round(time.monotonic() - start, 1), b.build_s


def main() -> int:
    tree = sources.resolve(SOURCE).tree
    repo, shas = bisect_series.series(tree)
    recipe = bisect_series.recipe(Path(tempfile.mkdtemp(prefix="bench-bisect-")))
    forget("ccache", "warm", "artifacts", "recipes", "bisect")
    subprocess.run(["git", "-C", str(repo), "worktree", "prune"], check=True)
    import git
    worktree = commits._worktree(git.Repo(repo), shas["base"])
    load = {}
    cold = timed_build(worktree, repo, shas["base"], recipe)
    load["cold"] = os.getloadavg()[0]
    docs = timed_build(worktree, repo, shas["docs"], recipe)
    one_file = timed_build(worktree, repo, shas["comment"], recipe)
    load["warm"] = os.getloadavg()[0]
    start = time.monotonic()
    r = commits.bisect(repo, "good", "bad", CellSpec.parse("dom0"), recipe,
                       say=lambda m: print(m, file=sys.stderr))
    wall = round(time.monotonic() - start, 1)
    load["bisect"] = os.getloadavg()[0]
    result = {
        "steps": len(r.steps),
        "log2_bound": r.log2_bound,
        "warm_step_ratio": round(one_file[0] / cold[0], 3),
        "candidates": r.candidates,
        "first_bad_is_culprit": r.first_bad == shas["culprit"],
        "cold_build_s": cold[0],
        "docs_only_step_build_s": docs[0],
        "one_file_step_build_s": one_file[0],
        "container_s": {"cold": cold[1], "docs_only": docs[1], "one_file": one_file[1]},
        "bisect_wall_s": wall,
        "bisect_steps": [{"commit": s.label[:12], "subject": s.note, "answer": s.outcome,
                          "built": s.built, "build_s": s.build_s, "boot_s": round(s.boot_s, 1)}
                         for s in r.endpoints + r.steps],
        "load_avg_1m": load,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goal": "warm_step_ratio <= 0.20; steps <= log2_bound (+1 when git's midpoint is uneven)",
    }
    out = HERE / "results" / "bisect.json"
    if out.exists() and "ladder" in (before := json.loads(out.read_text())):
        result["ladder"] = before["ladder"]       # bench/bisect_ladder.py's entry
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["first_bad_is_culprit"] else 1


if __name__ == "__main__":
    sys.exit(main())
