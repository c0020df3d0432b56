"""Git bisection: the first commit between a good and a bad ref that breaks a cell.

git itself (driven through gitpython) picks each commit, in a worktree of the
pvmatrix cache, never the user's own. The worktree stays the same directory
across steps and a checkout only touches the files that differ, so each step
is an incremental build in the same warm output tree (see warm.py).
"""

from __future__ import annotations

import fcntl
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HarnessFault, UserError
from ..paths import cache_dir
from .. import sources
from .probe import BAD, GOOD, CellSpec, Step, check_cell, check_end, to_dict, try_kernel
from .. import build
from ..digest import short as short_sha256

FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)


@dataclass
class Recipe:
    base: str = "tinyconfig"
    fragments: list[str] = field(default_factory=list)
    toolchain: str = "auto"


@dataclass
class Result:
    repo: str
    cell: str
    good: str
    bad: str
    candidates: int                  # commits in good..bad: what the bisection chose among
    log2_bound: int
    first_bad: str | None = None
    subject: str = ""
    could_be: list[str] = field(default_factory=list)   # when skipped commits hide it
    endpoints: list[Step] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    log: str = ""

    def to_dict(self) -> dict:
        return to_dict(self)


def _worktree(repo, start: str) -> Path:
    """The cache's worktree of REPO (one per repository), at START."""
    key = short_sha256(str(Path(repo.git_dir).resolve()))
    return sources.worktree(repo, cache_dir("bisect", "trees") / key, start)


def _git(what: str, call, *args):
    """A git command; its failure is a one-line error naming WHAT."""
    import git
    try:
        return call(*args)
    except git.GitCommandError as exc:
        lines = (exc.stderr or str(exc)).strip().splitlines()
        raise HarnessFault(f"{what}: git {exc.command[1] if len(exc.command) > 1 else ''} failed: "
                       f"{lines[-1] if lines else exc.status}") from None


def bisect(repo_path: str | Path, good: str, bad: str, cell: CellSpec,
           recipe: Recipe | None = None, dom0: str | None = None, say=print) -> Result:
    """Find the first commit in GOOD..BAD of the git tree at REPO_PATH where
    CELL stops passing. DOM0 (a kernel spec, see probe.run_cell) hosts domU cells."""
    import git
    recipe = recipe or Recipe()
    repo = sources.open_repo(Path(repo_path))
    good_c, bad_c = sources.commit_of(repo, good, "good "), sources.commit_of(repo, bad, "bad ")
    if good_c == bad_c:
        raise UserError(f"good ref {good!r} and bad ref {bad!r} are the same commit")
    if not repo.is_ancestor(good_c, bad_c):
        raise UserError(f"good ref {good!r} is not an ancestor of bad ref {bad!r}")
    candidates = int(repo.git.rev_list("--count", f"{good_c}..{bad_c}"))
    result = Result(str(repo_path), str(cell), good_c, bad_c, candidates,
                    math.ceil(math.log2(candidates)) if candidates > 1 else 0)
    check_cell(cell)
    key = short_sha256(str(Path(repo.git_dir).resolve()))
    with open(cache_dir("bisect") / f"{key}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise HarnessFault(f"another bisection of {repo_path} is running") from None
        tree = _git(f"worktree of {repo_path}", _worktree, repo, good_c)
        wt = git.Repo(tree)
        _reset(wt)

        def step(commit: str) -> Step:
            source = sources.Source(f"git:{repo_path}@{commit}", "git", f"git:{commit}", tree)
            subject = wt.commit(commit).summary
            say(f"bisect: {commit[:12]} {subject}: building and running {cell}")
            s = try_kernel(commit, lambda: build.build_source(source, recipe.base,
                                                              recipe.fragments, recipe.toolchain),
                           cell, dom0)
            s.note = subject
            say(f"bisect: {commit[:12]} is {s.outcome} ({s.status}: {s.reason[:100]})")
            return s

        for ref, want in ((good_c, GOOD), (bad_c, BAD)):
            _git(f"checkout of {ref[:12]} in {tree}", wt.git.checkout, "--detach", ref)
            s = step(ref)
            result.endpoints.append(s)
            check_end(s, want, f"end {ref[:12]}", cell)
        try:
            out = _git(f"bisect of {repo_path}", wt.git.bisect, "start", bad_c, good_c)
            while not (m := FIRST_BAD.search(out)):
                s = step(wt.head.commit.hexsha)
                result.steps.append(s)
                try:
                    out = wt.git.bisect(s.outcome)
                except git.GitCommandError as exc:      # only skipped commits left
                    out = f"{exc.stdout}\n{exc.stderr}"
                    if "only 'skip'ped commits left" not in out:
                        raise
                    result.could_be = re.findall(r"^([0-9a-f]{40})", out.split("could be any of:")[-1],
                                                 re.M)
                    break
            if m:
                result.first_bad = m.group(1)
                result.subject = repo.commit(result.first_bad).summary
            result.log = wt.git.bisect("log")
        finally:
            _reset(wt)
    return result


def _reset(wt) -> None:
    """No bisection left in the worktree, nor a lock a killed git left behind
    (held under the bisection's flock, so no live git owns it)."""
    import git
    Path(wt.git_dir, "index.lock").unlink(missing_ok=True)
    for args in (("bisect", "reset"), ("checkout", "--force", "--detach", "HEAD")):
        try:
            wt.git.execute(["git", *args])
        except git.GitCommandError:
            pass
