"""Whole runs in this process (runner.run on the embedded Dask cluster) with the
work faked (matrix_helpers.FakeStages) and the rest real: the outcome cache,
the records, --resume, the retries and the comparison baseline."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from matrix_helpers import FakeStages, row_spec
from pvmatrix.matrix import runner
from pvmatrix.matrix.plan import make_plan
from pvmatrix.matrix.spec import load
from pvmatrix.results import store
from pvmatrix.results.records import RunFlags


@pytest.fixture
def stages(tmp_path, monkeypatch, private_cache):
    fake = FakeStages(tmp_path)
    fake.install(monkeypatch)
    return fake


def run(spec, results, **kw):
    """runner.run, quietly; returns (exit code, run, what it printed)."""
    out = io.StringIO()
    code, done = runner.run(str(spec), results, stream=out, show=False, **kw)
    return code, done, out.getvalue()


def verdicts(r: store.Run) -> dict[str, tuple[str, bool]]:
    return {rec["cell"]["id"]: (rec["verdict"]["status"], rec["cached"]) for rec in r.records()}


# -- one identity: cached by content, known in a run by its task's key ------

def test_a_renamed_row_reuses_its_cached_verdicts_as_its_own(stages, tmp_path):
    results = tmp_path / "results"
    run(row_spec(tmp_path, "old"), results)
    _, renamed, _ = run(row_spec(tmp_path, "new"), results)
    assert verdicts(renamed) == {
        "new/source": ("pass", False), "new/build": ("pass", False),
        "new/analyze/default": ("pass", True), "new/hw/default/e1000e": ("pass", True),
        "new/hw/default/ich9-ahci": ("pass", True), "new/baremetal/default": ("pass", True)}
    assert stages.calls["analyze"] == stages.calls["boot"] == 1      # not redone


def test_resume_reuses_every_task_of_a_renamed_row(stages, tmp_path):
    results = tmp_path / "results"
    run(row_spec(tmp_path, "old"), results)
    spec = row_spec(tmp_path, "new")
    _, renamed, _ = run(spec, results)
    plan = make_plan(load(spec))
    assert set(renamed.outcomes()) == {t.key for t in plan.tasks}    # each under its own key
    renamed.update(state="interrupted")
    before = dict(stages.calls)
    _, resumed, said = run(spec, results, resume=True)
    assert resumed.id == renamed.id
    assert f"4 of {len(plan.tasks)} tasks already done" in said
    assert dict(stages.calls) == before


def test_a_regression_of_a_renamed_row_is_retried(stages, tmp_path):
    results = tmp_path / "results"
    run(row_spec(tmp_path, "old"), results)
    spec = row_spec(tmp_path, "new")
    run(spec, results, flags=RunFlags(recheck=True))   # the baseline: booted, analysis cached
    stages.boot = ("fail", "Kernel panic - not syncing: VFS")
    code, failed, said = run(spec, results, flags=RunFlags(recheck=True))
    assert "cannot retry" not in said
    rec = json.loads((failed.dir / "cells" / "new_baremetal_default.json").read_text())
    assert rec["retries"]["summary"] == "fail, reproduced 3/3"
    assert code == 1


# -- the comparison baseline ----------------------------------------------

def test_the_baseline_is_the_last_complete_run_not_an_interrupted_one(stages, tmp_path, capsys):
    from pvmatrix.results.index import Index
    results, spec = tmp_path / "results", row_spec(tmp_path, "k")
    _, good, _ = run(spec, results)
    stages.boot = ("fail", "Kernel panic - not syncing: VFS")
    _, stopped, _ = run(spec, results, flags=RunFlags(recheck=True, retries=0))
    stopped.update(state="interrupted")          # as a Ctrl-C after the boot's record leaves it
    index = Index(results)
    index.add_run(stopped)
    index.close()
    capsys.readouterr()
    code, _, _ = run(spec, results, flags=RunFlags(recheck=True, retries=0))
    assert f"compared with run {good.id}: 1 regression(s)" in capsys.readouterr().out
    assert code == 1                               # pass -> fail: the regression is seen


# -- --resume continues a run the way it started ----------------------------

def interrupt_after(monkeypatch, stage: str) -> None:
    """Ctrl-C in the runner right after STAGE's first task is recorded."""
    from pvmatrix.matrix.progress import Progress
    real = Progress.finished

    def finished(self, got_stage, *args, **kw):
        real(self, got_stage, *args, **kw)
        if got_stage == stage:
            raise KeyboardInterrupt
    monkeypatch.setattr(Progress, "finished", finished)


def test_resume_continues_with_the_flags_the_run_started_with(stages, tmp_path, monkeypatch):
    results, spec = tmp_path / "results", row_spec(tmp_path, "k")
    run(spec, results)                                  # a cached boot verdict
    with monkeypatch.context() as m:
        interrupt_after(m, "analyze")
        with pytest.raises(KeyboardInterrupt):
            run(spec, results, flags=RunFlags(recheck=True, retries=0))
    (stopped,) = [r for r in store.all_runs(results) if r.meta["state"] == "interrupted"]
    assert stopped.meta["flags"] == {"recheck": True, "retries": 0, "bisect": False,
                                     "store": None}
    booted = stages.calls["boot"]
    _, resumed, said = run(spec, results, resume=True)  # no flags given
    assert resumed.id == stopped.id and resumed.meta["state"] == "complete"
    assert "as it started: recheck=True, retries=0, bisect=False" in said
    assert stages.calls["boot"] == booted + 1           # --recheck: booted, not the cached verdict
    assert resumed.meta["flags"]["recheck"] is True


def test_confirm_is_kept_and_a_resumed_run_still_boots_what_the_analyzer_rules_out(
        stages, tmp_path, monkeypatch):
    results, spec = tmp_path / "results", row_spec(tmp_path, "k")
    spec.write_text(spec.read_text().replace('roles = ["baremetal"]', 'roles = ["dom0"]'))
    stages.ruled_out = {"pv_dom0"}
    stages.boot = ("fail", "missing marker 'stage=init'")
    with monkeypatch.context() as m:
        interrupt_after(m, "analyze")
        with pytest.raises(KeyboardInterrupt):
            run(spec, results, flags=RunFlags(confirm=True, retries=0))
    (stopped,) = store.all_runs(results)
    assert stopped.meta["flags"]["confirm"] is True
    _, resumed, said = run(spec, results, resume=True)  # no flags given
    assert resumed.id == stopped.id and "confirm=True" in said
    assert stages.calls["boot"] == 1                    # booted (then or now), not a static fail
    rec = json.loads((resumed.dir / "cells" / "k_dom0_xen-4.17_default.json").read_text())
    v = rec["verdict"]
    assert (v["status"], v["detail"]) == ("fail", "judge")       # the boot's verdict
    assert "--confirm" in v["reason"] and "static analysis said pv_dom0: no" in v["reason"]
    assert v["evidence"][0]["note"] == "static analysis"
    assert rec["task_def"]["args"]["confirm"] is True and rec["inputs"]["confirm"] is True


def test_resume_refuses_other_flags_than_the_run_started_with(stages, tmp_path, monkeypatch):
    from pvmatrix.errors import UserError
    results, spec = tmp_path / "results", row_spec(tmp_path, "k")
    with monkeypatch.context() as m:
        interrupt_after(m, "build")
        with pytest.raises(KeyboardInterrupt):
            run(spec, results)
    (stopped,) = store.all_runs(results)
    with pytest.raises(UserError, match=f"run {stopped.id} started with recheck=False, and "
                                        "--resume continues it that way: drop recheck=True"):
        run(spec, results, resume=True, flags=RunFlags(recheck=True))


# -- one process at a time on a run ----------------------------------------

def test_a_second_resume_of_a_run_being_run_is_refused(stages, tmp_path, monkeypatch):
    """Another pvmatrix (a child process) holds the run: --resume here is refused
    in one line naming the run, and leaves the run as it was."""
    import subprocess
    import sys
    from pvmatrix.errors import UserError
    results, spec = tmp_path / "results", row_spec(tmp_path, "k")
    with monkeypatch.context() as m:
        interrupt_after(m, "build")
        with pytest.raises(KeyboardInterrupt):
            run(spec, results)
    (stopped,) = store.all_runs(results)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pvmatrix.results.store import Run\n"
         f"with Run(__import__('pathlib').Path({str(stopped.dir)!r})).lock():\n"
         "    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert holder.stdout.readline() == "locked\n"
        meta, calls = stopped.meta, dict(stages.calls)
        with pytest.raises(UserError) as err:
            run(spec, results, resume=True)
        assert str(err.value) == (f"run {stopped.id} is being run by another pvmatrix "
                                  f"(pid {holder.pid}): wait for it to end, or start a new run "
                                  "without --resume")
        assert stopped.meta == meta and dict(stages.calls) == calls
    finally:
        holder.kill()
        holder.wait()
    _, resumed, _ = run(spec, results, resume=True)     # its holder gone: it resumes
    assert resumed.id == stopped.id and resumed.meta["state"] == "complete"
