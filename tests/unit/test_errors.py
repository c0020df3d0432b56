"""Whose fault a failure is: the status and exit code follow from the error's
class (errors.py), never from its text."""

import os
import pickle
from pathlib import Path

import pytest

from conftest import FIXTURES, one_error_line, pvmatrix
from pvmatrix import build as builder
from pvmatrix.build import kbuild
from pvmatrix.errors import (BuildFailed, HarnessFault, KernelFault, NotSupported, PvmError,
                             QemuDidNotStart, UnknownName, UserError, status_of)
from pvmatrix.matrix import tasks
from pvmatrix.matrix.outcomes import TaskOutcome
from pvmatrix.sources.facts import SourceFacts

FAILED_LOG = FIXTURES / "build" / "compile-error.log"   # gcc's own output, in a kernel build log


@pytest.mark.parametrize("exc,status,code", [
    (UserError("bad spec"), "broken", 2),
    (UnknownName("toolchain", "nosuch", ["b", "a"]), "broken", 2),
    (KernelFault("the kernel"), "fail", 1),
    (BuildFailed("build", "x.c:1:2: error: y"), "fail", 1),
    (HarnessFault("no engine"), "broken", 3),
    (QemuDidNotStart("QEMU could not start"), "broken", 3),
    (NotSupported("no toolchain covers kernel 2.6.32"), "not run", 4),
    (ImportError("no module named s3fs"), "not run", None),
    (NotImplementedError(), "not run", None),
    (RuntimeError("anything else"), "broken", None),
])
def test_status_and_exit_code_by_class(exc, status, code):
    assert status_of(exc) == status
    if code is not None:
        assert exc.exit_code == code


def test_status_ignores_the_message():
    assert status_of(HarnessFault("build of x failed in step build: (log: /l)")) == "broken"
    assert status_of(BuildFailed("build", "QEMU could not start")) == "fail"


def test_unknown_name_lists_the_known_ones():
    exc = UnknownName("Xen version", "9.9", {"4.19": 1, "4.17": 1}, "or give a path to a xen binary")
    assert str(exc) == "unknown Xen version '9.9' (known: 4.17, 4.19; or give a path to a xen binary)"
    assert (exc.kind, exc.name, exc.known) == ("Xen version", "9.9", ["4.17", "4.19"])


@pytest.mark.parametrize("exc", [
    BuildFailed("build", "x.c:1:2: error: y", "/cache/failed/k/build.log", "build of dir:/k"),
    UnknownName("role", "dom1", ["dom0"], "a hint"),
    HarnessFault("podman API service did not start", log="/run/podman.log"),
])
def test_errors_cross_processes_whole(exc):
    """Dask moves exceptions between processes by pickling them."""
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc) and back.log == exc.log
    assert back.__dict__ == exc.__dict__


def test_build_failure_from_a_real_log():
    """The step the log entered last and gcc's first error, not a warning or make's line."""
    exc = kbuild.failure(FAILED_LOG, "build of dir:/src")
    assert isinstance(exc, KernelFault) and status_of(exc) == "fail"
    assert exc.step == "build" and exc.log == FAILED_LOG
    assert exc.first_error == ("/src/drivers/xen/events.c:5:26: error: 'undeclared_thing' "
                               "undeclared (first use in this function)")
    assert str(exc) == f"build of dir:/src failed in step build: {exc.first_error} (log: {FAILED_LOG})"


def test_configure_failure_names_make(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("@@pvmatrix-step configure\nmake[1]: Entering directory '/out'\n"
                   "*** Kconfig: syntax error\nmake: *** [Makefile:234: __sub-make] Error 2\n")
    exc = kbuild.failure(log, "configuring dir:/src (tinyconfig)", "configure")
    assert (exc.step, exc.first_error) == ("configure", "*** Kconfig: syntax error")
    assert str(exc).startswith("configuring dir:/src (tinyconfig) failed: *** Kconfig: syntax error")


@pytest.fixture
def kernel_tree(tmp_path):
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    return tree


def test_unknown_name_exits_2_through_the_cli(kernel_tree, tmp_path):
    env = {**os.environ, "PVMATRIX_CACHE": str(tmp_path / "cache")}
    done = pvmatrix("build", f"dir:{kernel_tree}", "--toolchain", "nosuch", env=env)
    line = one_error_line(done)
    assert done.returncode == 2
    assert "unknown toolchain 'nosuch' (known: " in line and "bookworm-gcc12" in line


def test_harness_fault_exits_3_through_the_cli(kernel_tree, tmp_path):
    """No container engine answers: pvmatrix's side, not bad input (and no container starts)."""
    env = {**os.environ, "PVMATRIX_CACHE": str(tmp_path / "cache"),
           "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    done = pvmatrix("build", f"dir:{kernel_tree}", "--toolchain", "bookworm-gcc12", env=env)
    assert "does not answer" in one_error_line(done) and done.returncode == 3


def build_task(recheck=False):
    return {"key": "build-k", "stage": "build", "kernel": "k", "func": "build",
            "args": {"base": "tinyconfig", "fragments": [], "toolchain": "bookworm-gcc12",
                     "recheck": recheck},
            "cells": [{"id": "k/build"}]}


SOURCE = TaskOutcome("source-k", "source", "k",
                     facts=SourceFacts("dir:/src", "sha256:0", "6.1.0", "/src"))


def run_build_task(monkeypatch, exc: PvmError, recheck=True) -> TaskOutcome:
    def failing(*args, **kw):
        raise exc
    monkeypatch.setattr(builder, "build", failing)
    return tasks.build(build_task(recheck), SOURCE)


def test_build_task_fails_on_a_build_failure(monkeypatch, private_cache):
    exc = BuildFailed("build", "x.c:1:2: error: y", "/kept/build.log", "build of dir:/src")
    out = run_build_task(monkeypatch, exc)
    cell = out.cells["k/build"]
    assert cell.verdict.status == "fail" and cell.verdict.detail == "build"
    assert cell.logs == {"build": "/kept/build.log"}
    assert cell.verdict.evidence[0].log == "/kept/build.log"
    again = run_build_task(monkeypatch, HarnessFault("not called"), recheck=False)
    assert again.cached and again.cells["k/build"].verdict.status == "fail"


@pytest.mark.parametrize("exc,status", [
    # a message that reads like a build failure does not make one
    (HarnessFault("build of dir:/src failed in step build: no space left (log: /l)"), "broken"),
    (QemuDidNotStart("QEMU could not start"), "broken"),
    (NotSupported("no toolchain covers kernel 6.1.0"), "not run"),
])
def test_build_task_is_not_a_fail_when_the_harness_is_at_fault(monkeypatch, private_cache,
                                                                exc, status):
    out = run_build_task(monkeypatch, exc)
    verdict = out.cells["k/build"].verdict
    assert (verdict.status, verdict.detail) == (status, "builder")
    again = run_build_task(monkeypatch, HarnessFault("now the engine is down"), recheck=False)
    assert again.cells["k/build"].verdict.reason == "now the engine is down", \
        "a harness fault must not be remembered as the build's verdict"


def test_any_task_error_takes_its_status_from_its_class(private_cache):
    from pvmatrix.matrix import outcomes
    task = build_task()
    assert outcomes.broken(task, BuildFailed("build", "e")).status == "fail"
    assert outcomes.broken(task, UserError("bad")).status == "broken"
    assert outcomes.broken(task, NotSupported("later")).status == "not run"
