"""Bisection, for real: a kernel git tree made by the test with a short series
of commits (one flips a Kconfig default that dom0 needs), and two configs
that differ in a handful of options (one of them FILE_LOCKING). Each step is
a real build in a container and a real boot under Xen in QEMU. (Bad input,
ddmin and the choice of cells without a build: tests/unit/test_bisect_logic.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import git
import pytest

import bisect_series
from conftest import DEBIAN_61
from pvmatrix import build
from pvmatrix.bisect import commits, configs
from pvmatrix.bisect.probe import CellSpec

FRAGMENTS = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]


@pytest.fixture(scope="module")
def series(debian_61) -> tuple[Path, dict[str, str]]:
    return bisect_series.series(debian_61.tree)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> commits.Recipe:
    return bisect_series.recipe(tmp_path_factory.mktemp("frag"))


@pytest.mark.slow
def test_git_bisect_names_the_commit_that_breaks_dom0(series, recipe):
    repo, shas = series
    r = commits.bisect(repo, "good", "bad", CellSpec.parse("dom0"), recipe)
    assert r.first_bad == shas["culprit"], r.to_dict()
    assert r.subject == "xen: XEN_DEV_EVTCHN defaults to n"
    assert r.candidates == 4 and r.log2_bound == 2
    assert len(r.steps) <= r.log2_bound + 1
    good, bad = r.endpoints
    assert (good.status, bad.status) == ("pass", "fail")
    # the bad verdict's evidence is dom0's own failed check, from its serial log
    culprit = next(s for s in r.steps if s.label == shas["culprit"]) \
        if any(s.label == shas["culprit"] for s in r.steps) else bad
    assert culprit.outcome == "bad"
    assert any("xenstored" in e for e in culprit.evidence), culprit.evidence
    # the user's repository is untouched: its HEAD stays, no bisection left in it
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert head == shas["maintainers"]
    # and the cache's worktree, where git bisected, has no bisection left either
    worktree = commits._worktree(git.Repo(repo), shas["base"])
    assert subprocess.run(["git", "-C", str(worktree), "bisect", "log"],
                          capture_output=True).returncode != 0


@pytest.mark.slow
def test_config_bisect_names_file_locking(tmp_path, debian_61):
    small = build.build(DEBIAN_61, "tinyconfig", FRAGMENTS)
    good = tmp_path / "good.config"
    shutil.copyfile(small.kernel.config, good)
    changes = tmp_path / "changes.config"
    changes.write_text("# CONFIG_FILE_LOCKING is not set\nCONFIG_IKCONFIG=y\n"
                       "# CONFIG_XEN_GRANT_DEV_ALLOC is not set\n"
                       "CONFIG_SERIAL_8250_RUNTIME_UARTS=2\n")
    bad = tmp_path / "bad.config"
    shutil.copyfile(build.build(DEBIAN_61, str(good), [str(changes)]).kernel.config, bad)
    r = configs.bisect(DEBIAN_61, good, bad, CellSpec.parse("dom0"))
    assert len(r.differences) >= 4, r.differences
    assert list(r.culprits) == ["CONFIG_FILE_LOCKING"], r.to_dict()
    assert r.culprits["CONFIG_FILE_LOCKING"] == ["y", "n"]
    assert [s.status for s in r.endpoints] == ["pass", "fail"]
    assert any("lock" in e for e in r.endpoints[1].evidence), r.endpoints[1].evidence


@pytest.mark.slow
def _beside(spec_dir: Path, fragment: str) -> str:
    """FRAGMENT as a spec may name it: a kconfigs/ name, or a copy in the spec's folder."""
    if "/" not in fragment or not Path(fragment).is_absolute():
        return fragment
    copy = spec_dir / Path(fragment).name
    shutil.copyfile(fragment, copy)
    return str(copy)


def test_run_bisect_names_the_commit_after_a_reproduced_regression(series, recipe, tmp_path):
    """Two runs of one spec, its kernel moved from the good to the bad commit:
    the dom0 cell regresses, is retried, and `run --bisect` names the culprit."""
    from pvmatrix.bisect import after_run
    from pvmatrix.matrix import runner
    repo, shas = series
    results = tmp_path / "results"

    def spec(ref: str) -> str:
        path = tmp_path / f"spec-{ref}.toml"
        frags = ", ".join(f'"{_beside(tmp_path, f)}"' for f in recipe.fragments)
        path.write_text(f'[matrix]\nname = "series"\nxen = ["4.17"]\nhardware = ["default"]\n'
                        f'roles = ["dom0"]\n\n[[kernel]]\nname = "series"\n'
                        f'source = "git:{repo}@{ref}"\nbase = "tinyconfig"\nfragments = [{frags}]\n')
        return str(path)

    from pvmatrix.results.records import RunFlags
    code, first = runner.run(spec("good"), results, flags=RunFlags(retries=1), show=False)
    assert code == 0
    code, second = runner.run(spec("bad"), results, flags=RunFlags(retries=1, bisect=True),
                              show=False, after=after_run.bisect_regressions)
    assert code == 1                                   # a reproduced regression
    cell = "series/dom0/xen-4.17/default"
    got = json.loads((second.dir / "bisect" / f"{cell.replace('/', '_')}.json").read_text())
    assert got["first_bad"] == shas["culprit"], got
    assert got["good"] == shas["base"] and got["bad"] == shas["maintainers"]
