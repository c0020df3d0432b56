"""Bisection without a build: bad input is a clear error before any build,
ddmin, cell specs, and which regressed cells `run --bisect` picks."""

from __future__ import annotations

import git
import pytest

from conftest import DEBIAN_61
from pvmatrix.bisect import commits, configs
from pvmatrix.bisect.probe import CellSpec
from pvmatrix.build.facts import BuildFacts
from pvmatrix.errors import PvmError
from pvmatrix.sources.facts import PackageFacts


def test_git_bisect_bad_input_is_a_clear_error_before_any_build(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    r = git.Repo.init(repo)
    (repo / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\n")
    r.index.add(["Makefile"])
    r.index.commit("one")
    r.create_tag("good")
    (repo / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 2\n")
    r.index.add(["Makefile"])
    r.index.commit("two")
    r.create_tag("bad")
    cell = CellSpec.parse("dom0")
    with pytest.raises(PvmError, match="ref 'no-such-ref' not found"):
        commits.bisect(repo, "no-such-ref", "bad", cell)
    with pytest.raises(PvmError, match="is not an ancestor"):
        commits.bisect(repo, "bad", "good", cell)
    with pytest.raises(PvmError, match="are the same commit"):
        commits.bisect(repo, "bad", "bad", cell)
    with pytest.raises(PvmError, match="unknown Xen version '9.9'"):
        commits.bisect(repo, "good", "bad", CellSpec.parse("dom0", xen="9.9"))
    with pytest.raises(PvmError, match="unknown hardware profile 'nosuch'"):
        commits.bisect(repo, "good", "bad", CellSpec.parse("dom0", hardware="nosuch"))
    with pytest.raises(PvmError, match="is not a git repository"):
        commits.bisect(tmp_path, "good", "bad", cell)
    assert r.head.commit.message == "two" and len(r.git.worktree("list").splitlines()) == 1


def test_config_bisect_identical_configs_is_an_error(tmp_path):
    cfg = tmp_path / "a.config"
    cfg.write_text("CONFIG_A=y\n")
    with pytest.raises(PvmError, match="set every option alike"):
        configs.bisect(DEBIAN_61, cfg, cfg, CellSpec.parse("dom0"))


def test_ddmin_finds_one_and_two_culprits():
    assert configs.ddmin(list("abcXef"), lambda s: "X" in s) == ["X"]
    assert sorted(configs.ddmin(list("abcXef"), lambda s: "X" in s and "b" in s)) == ["X", "b"]


def test_cell_spec_from_role_or_matrix_cell_id():
    assert CellSpec.parse("dom0") == CellSpec("dom0", "4.17", "default")
    assert CellSpec.parse("k/domU-pvh/xen-4.20/big") == CellSpec("domU-pvh", "4.20", "big")
    with pytest.raises(PvmError, match="names no role"):
        CellSpec.parse("k/nothing")


def _records(kernel: str, commit: str, status: str, dom0: str | None = None) -> dict[str, dict]:
    """The two records after_run reads, shaped as runner.make_record writes them."""
    facts = BuildFacts(key="0" * 64, dir=f"/cache/{kernel}", source="git:/src/linux@v9",
                       identity=f"git:{commit}", version="6.1.0", toolchain="auto", image="img",
                       base="tinyconfig", fragments=["boot", "xen-domu"], config_sha256="c" * 64)
    build_rec = {"cell": {"id": f"{kernel}/build", "stage": "build", "kernel": kernel},
                 "manifest": facts.to_dict()}
    boot = {"cell": {"id": f"{kernel}/domU-pv/xen-4.17/default", "stage": "boot",
                     "kernel": kernel, "role": "domU-pv", "xen": "4.17", "hardware": "default"},
            "verdict": {"status": status}, "inputs": {"dom0_kernel": dom0 or kernel}}
    return {r["cell"]["id"]: r for r in (build_rec, boot)}


def test_after_run_bisects_a_regressed_boot_cell_between_the_two_commits():
    from pvmatrix.bisect import after_run
    before = _records("k", "a" * 40, "pass", dom0="host")
    after = _records("k", "b" * 40, "fail", dom0="host")
    host = PackageFacts.from_dict({"package": "linux-image-amd64", "suite": "bookworm",
                                   "deb": "/x.deb", "version": "1", "kernel_id": "sha256:0"})
    after["host/source"] = {"cell": {"id": "host/source", "stage": "source", "kernel": "host"},
                            "manifest": host.to_dict()}
    (job,) = after_run.jobs(before, after, ["k/domU-pv/xen-4.17/default", "k/build"])
    assert (job.repo, job.good, job.bad) == ("/src/linux", "a" * 40, "b" * 40)
    assert job.spec == CellSpec("domU-pv", "4.17", "default")
    assert job.recipe.fragments == ["boot", "xen-domu"]
    assert job.dom0 == "debian:linux-image-amd64@bookworm"
    # the same commit, or not a git source: nothing to bisect
    assert after_run.jobs(before, _records("k", "a" * 40, "fail"), ["k/domU-pv/xen-4.17/default"]) == []
    tarball = _records("k", "b" * 40, "fail")
    tarball["k/build"]["manifest"]["source"] = "tarball:/x.tar.xz"
    assert after_run.jobs(before, tarball, ["k/domU-pv/xen-4.17/default"]) == []
