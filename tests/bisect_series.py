"""A test kernel git tree for bisection: Debian's 6.1 source as one commit,
then four commits, one of which (a Kconfig default flipped) breaks dom0.
Used by tests/real/test_bisect.py and bench/bisect.py. Made with git plumbing from
the cached source tree, which is never written to."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pvmatrix import configure
from pvmatrix.bisect import commits
from pvmatrix.paths import cache_dir

SERIES_VERSION = "1"


def _git(repo: Path, *args: str, work: Path | None = None, stdin: str | None = None) -> str:
    env = {**os.environ, "GIT_DIR": str(repo / ".git"), "GIT_AUTHOR_NAME": "pvmatrix test",
           "GIT_AUTHOR_EMAIL": "test@pvmatrix", "GIT_COMMITTER_NAME": "pvmatrix test",
           "GIT_COMMITTER_EMAIL": "test@pvmatrix", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00"}
    if work:
        env["GIT_WORK_TREE"] = str(work)
    got = subprocess.run(["git", "-c", "core.looseCompression=1", "-c", "gc.auto=0", *args],
                         env=env, cwd=work or repo, capture_output=True, text=True, input=stdin)
    assert got.returncode == 0, f"git {' '.join(args)}: {got.stderr}"
    return got.stdout.strip()


def _commit_change(repo: Path, base_tree: Path, path: str, edit, message: str) -> str:
    """Commit EDIT(text) of PATH, without writing to the (shared, cached) tree."""
    current = _git(repo, "show", f"HEAD:{path}")
    blob = _git(repo, "hash-object", "-w", "--stdin", stdin=edit(current + "\n"))
    _git(repo, "update-index", "--cacheinfo", f"100644,{blob},{path}", work=base_tree)
    _git(repo, "commit", "-q", "-m", message, work=base_tree)
    return _git(repo, "rev-parse", "HEAD")


def series(tree: Path) -> tuple[Path, dict[str, str]]:
    """A git repository of Debian's 6.1 tree plus four commits; the third makes
    /dev/xen/evtchn default to off, so xenstored cannot start in dom0. Kept in
    the cache (made once per machine), so its bisection worktree stays warm."""
    repo = cache_dir("test-repos") / f"linux-6.1-series-{SERIES_VERSION}"
    done = repo / ".pvm-commits"
    if not done.exists():
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        _git(repo, "config", "gc.auto", "0")          # no background repacking of 75k objects
        _git(repo, "add", "-A", "-f", ".", work=tree)   # Debian ignores /*
        _git(repo, "commit", "-q", "-m", "Linux 6.1 (Debian's linux-source-6.1)", work=tree)
        shas = {"base": _git(repo, "rev-parse", "HEAD")}
        shas["docs"] = _commit_change(
            repo, tree, "Documentation/admin-guide/README.rst",
            lambda t: t + "\nA line added by pvmatrix's bisection test.\n",
            "Documentation: a line for the bisection test")
        shas["comment"] = _commit_change(
            repo, tree, "drivers/xen/evtchn.c",
            lambda t: t + "\n/* a comment added by pvmatrix's bisection test */\n",
            "xen/evtchn: a comment (rebuilds one file)")
        shas["culprit"] = _commit_change(
            repo, tree, "drivers/xen/Kconfig",
            lambda t: t.replace('tristate "Xen /dev/xen/evtchn device"\n\tdefault y',
                                'tristate "Xen /dev/xen/evtchn device"\n\tdefault n', 1),
            "xen: XEN_DEV_EVTCHN defaults to n")
        shas["maintainers"] = _commit_change(
            repo, tree, "MAINTAINERS", lambda t: t + "\n",
            "MAINTAINERS: a blank line")
        _git(repo, "tag", "good", shas["base"])
        _git(repo, "tag", "bad", shas["maintainers"])
        done.write_text("\n".join(f"{k} {v}" for k, v in shas.items()))
    shas = dict(line.split() for line in done.read_text().splitlines())
    assert "default n" in _git(repo, "show", f"{shas['culprit']}:drivers/xen/Kconfig")
    return repo, shas


def recipe(where: Path) -> commits.Recipe:
    """The small Xen kernel's recipe, except that dom0's fragment leaves
    XEN_DEV_EVTCHN to its Kconfig default (which the culprit flips)."""
    frag = where / "xen-dom0-default-evtchn.config"
    text = configure.fragment_path("xen-dom0").read_text()
    frag.write_text("".join(l + "\n" for l in text.splitlines() if "XEN_DEV_EVTCHN" not in l))
    return commits.Recipe("tinyconfig", ["boot", "xen-domu", str(frag), "hw/e1000e"])
