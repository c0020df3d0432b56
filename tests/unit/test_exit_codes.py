"""Exit codes (pvmatrix/exitcodes.py, README: Exit codes): one table; `run`
exits 0 when complete with no regression, 1 for a reproduced regression, and
with --strict 3 for a broken cell and 4 for a cell not run; a command stopped
by an error exits by the error's class."""

from __future__ import annotations

import io
import re

import pytest

from conftest import REPO
from matrix_helpers import FakeStages, row_spec
from pvmatrix import exitcodes
from pvmatrix.cli import parser
from pvmatrix.errors import HarnessFault, KernelFault, NotSupported, UserError
from pvmatrix.matrix import runner
from pvmatrix.results.records import RunFlags


def test_the_readme_shows_the_table():
    readme = (REPO / "README.md").read_text()
    assert exitcodes.markdown_table() in readme


def test_codes_are_distinct_and_name_the_cell_statuses():
    codes = [c.code for c in exitcodes.TABLE]
    assert len(set(codes)) == len(codes)
    assert {exitcodes.OF_STATUS[s] for s in ("fail", "broken", "not run")} == \
        {exitcodes.FAIL, exitcodes.BROKEN, exitcodes.NOT_RUN}


@pytest.mark.parametrize("exc,code", [(UserError("x"), 2), (KernelFault("x"), 1),
                                      (HarnessFault("x"), 3), (NotSupported("x"), 4)])
def test_an_error_that_stops_a_command_exits_by_its_class(exc, code):
    assert exc.exit_code == code


@pytest.mark.parametrize("statuses,strict,failing,code", [
    (["pass", "skip", "blocked"], True, False, 0),
    (["pass", "broken", "not run"], False, False, 0),      # not strict: only regressions count
    (["pass", "broken", "not run"], True, False, 3),       # the harness's fault first
    (["pass", "not run"], True, False, 4),
    (["fail", "broken"], True, True, 1),                   # the kernel's fault wins
    (["fail"], True, False, 0),                            # a failure that is no regression
    (["fail", "not run"], False, None, 1),                 # rerun, boot: any fail
])
def test_for_cells(statuses, strict, failing, code):
    assert exitcodes.for_cells(statuses, strict, failing) == code


@pytest.mark.parametrize("command", ["run", "boot"])
def test_strict_is_a_flag_of_run_and_boot(command):
    args = parser().parse_args([command, "--strict"] + (["debian:linux-image-amd64@sid"]
                                                         if command == "boot" else []))
    assert args.strict is True


# -- `pvmatrix run` in this process, the work faked (matrix_helpers.FakeStages) --

@pytest.fixture
def stages(tmp_path, monkeypatch, private_cache):
    fake = FakeStages(tmp_path)
    fake.install(monkeypatch)
    return fake


def run(spec, results, **kw) -> int:
    code, _ = runner.run(str(spec), results, stream=io.StringIO(), show=False, **kw)
    return code


@pytest.mark.parametrize("status,code", [("broken", 3), ("not run", 4)])
def test_run_exits_for_broken_and_not_run_cells_only_when_strict(stages, tmp_path, status, code):
    results, spec = tmp_path / "results", row_spec(tmp_path, "k")
    assert run(spec, results) == run(spec, results, strict=True) == 0
    stages.boot = (status, "QEMU could not start" if status == "broken" else "cannot run here")
    assert run(spec, results, flags=RunFlags(recheck=True)) == 0
    assert run(spec, results, flags=RunFlags(recheck=True), strict=True) == code


def test_a_reproduced_regression_exits_1_even_when_strict(stages, tmp_path):
    results, spec = tmp_path / "results", row_spec(tmp_path, "k")
    assert run(spec, results) == 0
    stages.boot = ("fail", "Kernel panic - not syncing: VFS")
    assert run(spec, results, flags=RunFlags(recheck=True, retries=1), strict=True) == 1
    # failing again is no regression any more (the baseline now fails): 0
    assert run(spec, results, flags=RunFlags(recheck=True, retries=1), strict=True) == 0


def test_the_cli_help_names_the_codes(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--help"])
    assert re.search(r"--strict\s+also exit non-zero for a cell broken \(exit 3\)",
                     capsys.readouterr().out)
