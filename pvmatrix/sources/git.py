"""git:PATH@REF: a commit of a local repository, checked out as a detached
worktree in the cache (the user's own checkout and HEAD stay as they are)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..paths import cache_dir
from .tree import Source

if TYPE_CHECKING:
    import git


def _commit(spec: str, rest: str) -> tuple[git.Repo, str]:
    """REST is PATH@REF: the repository and REF's commit id."""
    path, sep, ref = rest.rpartition("@")
    if not sep or not path or not ref:
        raise UserError(f"git source {spec!r}: expected git:PATH@REF")
    what = f"git source {spec!r}: "
    repo = open_repo(Path(path), what)
    return repo, commit_of(repo, ref, what, Path(path))


def check(spec: str, rest: str) -> None:
    """The repository exists and holds the ref; nothing is checked out."""
    _commit(spec, rest)


def resolve(spec: str, rest: str) -> Source:
    """REST is PATH@REF."""
    repo, commit = _commit(spec, rest)
    tree = cache_dir("trees") / f"git-{commit}"
    if not (tree / "Makefile").exists():
        worktree(repo, tree, commit)
    return Source(spec, "git", f"git:{commit}", tree)


def open_repo(path: Path, what: str = "") -> git.Repo:
    """The git repository at PATH, or a one-line error (WHAT prefixes it)."""
    import git      # here: GitPython wants a git binary at import; other sources need none
    try:
        return git.Repo(path)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError):
        raise UserError(f"{what}{path} is not a git repository") from None


def commit_of(repo: git.Repo, ref: str, what: str = "", where: Path | None = None) -> str:
    """REF's commit id in REPO, or a one-line error (WHAT prefixes it; WHERE
    names the repository as the user gave it)."""
    import git
    try:
        return repo.commit(ref).hexsha
    except (git.BadName, ValueError, git.GitCommandError):
        raise UserError(f"{what}ref {ref!r} not found in {where or repo.working_dir}") from None


def worktree(repo: git.Repo, tree: Path, commit: str) -> Path:
    """TREE as a detached worktree of REPO at COMMIT (made unless it is one
    already): the user's own working tree and HEAD stay as they are."""
    if not (tree / ".git").exists():
        if tree.exists():                 # half made (interrupted): start again
            shutil.rmtree(tree)
        repo.git.worktree("prune")
        repo.git.worktree("add", "--detach", "--force", str(tree), commit)
    return tree
