"""Ladder bisection: the first kernel ABI of a suite that breaks a cell, by
binary search over prebuilt packages (nothing is built), then, given a git
tree, commit bisection between the two upstream versions (two-stage).

Both ends are booted first, then at most ceil(log2(N - 1)) rungs between
them: ceil(log2(N)) + 2 kernels in all. Every boot is remembered by the
package's content (probe.run_kernel), so the next bisection over the same
ladder boots nothing it has booted before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import sources
from ..errors import EndsAlike, UserError
from ..sources import ladder as ladders
from ..sources.ladder import Rung
from . import commits
from .probe import BAD, GOOD, CellSpec, Step, check_cell, check_end, probe_package, to_dict


@dataclass
class Result:
    ladder: str                      # debian:linux-image-FLAVOUR@SUITE
    versions: str                    # the range bisected ("" for every ABI)
    cell: str
    rungs: list[str]                 # the packages searched, oldest first
    boot_bound: int                  # ceil(log2(N)) + 2
    last_good: str | None = None
    first_bad: str | None = None
    could_be: list[str] = field(default_factory=list)   # when skipped rungs hide it
    endpoints: list[Step] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    commits: dict | None = None      # stage two: commits.Result.to_dict()

    @property
    def kernels_booted(self) -> int:
        """Rungs booted by this bisection (not answered from an earlier one)."""
        return sum(not s.boot_cached for s in self.endpoints + self.steps)

    def to_dict(self) -> dict:
        return {**to_dict(self), "kernels_booted": self.kernels_booted}


def bound(n: int) -> int:
    """The most kernels a bisection of N rungs boots: both ends, then halving."""
    return math.ceil(math.log2(n)) + 2 if n > 1 else n


def search(n: int, answer: Callable[[int], str]) -> tuple[int, int, list[int]]:
    """Binary search of rungs 0..N-1, rung 0 good and N-1 bad: (last good, first
    bad, rungs between them never answered). ANSWER(i) is good, bad or skip; a
    skipped rung is passed over for the untried one nearest the middle."""
    lo, hi, skipped = 0, n - 1, set()
    while hi - lo > 1:
        open_ = [i for i in range(lo + 1, hi) if i not in skipped]
        if not open_:
            break
        mid = min(open_, key=lambda i: (abs(i - (lo + hi) / 2), i))
        got = answer(mid)
        if got == GOOD:
            lo = mid
        elif got == BAD:
            hi = mid
        else:
            skipped.add(mid)
    return lo, hi, list(range(lo + 1, hi))


def rungs(ladder: str, versions: str | None) -> list[Rung]:
    """The ladder's rungs, at least two: a range of one has ends that do not differ."""
    found = ladders.ladder(ladder, versions)
    if len(found) < 2:
        raise UserError(f"ladder bisection of {ladder}{f' {versions}' if versions else ''}: "
                        f"the ends do not differ: it holds one ABI, {found[0].abi}")
    return found


def check_ends(good: Step, bad: Step, cell: CellSpec) -> None:
    """Both ends answered alike: nothing to find between them; else each as given."""
    if good.outcome == bad.outcome and good.outcome in (GOOD, BAD):
        raise UserError(f"ladder bisection: the ends do not differ: {good.label} and "
                        f"{bad.label} are both {good.status} in cell {cell}")
    check_end(good, GOOD, f"end {good.label}", cell)
    check_end(bad, BAD, f"end {bad.label}", cell)


def bisect(ladder: str, versions: str | None, cell: CellSpec, dom0: str | None = None,
           repo: str | Path | None = None, recipe=None, say=print) -> Result:
    """The first ABI of LADDER (within VERSIONS) where CELL stops passing; with a
    git tree REPO, then the first commit between the two upstream versions
    (built with RECIPE, a commits.Recipe)."""
    check_cell(cell)
    found = rungs(ladder, versions)
    tags = _tags(repo, found) if repo is not None else None
    result = Result(ladder, versions or "", str(cell), [r.package for r in found],
                    bound(len(found)))

    def step(i: int) -> Step:
        r = found[i]
        say(f"bisect: {r.abi} ({r.version}): running {cell}")
        s = probe_package(r.abi, r.spec, cell, dom0)
        say(f"bisect: {r.abi} is {s.outcome} ({s.status}: {s.reason[:100]})"
            + (" [remembered]" if s.boot_cached else ""))
        return s

    result.endpoints = [step(0), step(len(found) - 1)]
    check_ends(*result.endpoints, cell)

    def answer(i: int) -> str:
        result.steps.append(step(i))
        return result.steps[-1].outcome

    lo, hi, between = search(len(found), answer)
    result.could_be = [found[i].package for i in between] + ([found[hi].package] if between else [])
    if not between:
        result.last_good, result.first_bad = found[lo].package, found[hi].package
        if tags is not None:
            result.commits = _commits(repo, found[lo], found[hi], tags, cell, recipe, dom0, say)
    return result


def _tags(repo: str | Path, found: list[Rung]) -> dict[str, str]:
    """The upstream tag of every rung, checked in REPO before any boot: tag -> commit."""
    tree = sources.open_repo(Path(repo), "--repo: ")
    missing, tags = [], {}
    for r in found:
        try:
            tags[r.tag] = sources.commit_of(tree, r.tag)
        except UserError:
            missing.append(r.tag)
    if missing:
        raise UserError(f"git tree {repo} lacks the upstream tag(s) of the ladder: "
                        f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''} "
                        "(fetch the stable tags, e.g. git fetch --tags from linux-stable)")
    return tags


def good_ref(repo: str | Path, good: str, bad: str) -> str:
    """Where commit bisection starts: GOOD's tag when it is an ancestor of BAD's
    (one stable series), else their merge base (two series: v6.18.9 and v6.19.6
    meet at v6.18, from which 6.19 grew)."""
    tree = sources.open_repo(Path(repo))
    if tree.is_ancestor(good, bad):
        return good
    return tree.merge_base(good, bad)[0].hexsha


def _commits(repo, good: Rung, bad: Rung, tags: dict[str, str], cell: CellSpec, recipe,
             dom0: str | None, say) -> dict:
    """Stage two: commit bisection between GOOD's and BAD's upstream versions."""
    start = good_ref(repo, tags[good.tag], tags[bad.tag])
    say(f"bisect: commits between {good.tag} ({start[:12]}) and {bad.tag}")
    try:
        r = commits.bisect(repo, start, tags[bad.tag], cell, recipe or commits.Recipe(), dom0,
                           say=say)
    except EndsAlike as exc:
        # upstream's bad end, built with the recipe, passes: the ABI broke in how
        # Debian built it (its config, patches or packaging), in no upstream commit
        say(f"bisect: {exc}")
        return {"good_tag": good.tag, "bad_tag": bad.tag, "first_bad": None, "could_be": [],
                "ends_alike": str(exc)}
    return {**r.to_dict(), "good_tag": good.tag, "bad_tag": bad.tag}
