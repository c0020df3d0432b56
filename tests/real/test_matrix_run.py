"""`pvmatrix run` for real on Dask (embedded LocalCluster) with a kernel that
is already in the cache: records, index, warm rerun, Ctrl-C and --resume,
regressions against the previous run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import fake_tasks
from conftest import REPO, free_port, interruptible, pvmatrix
from matrix_helpers import small_spec
from pvmatrix.results import store
from pvmatrix.results.index import Index


def run_cli(spec, results, *extra, env=None):
    return pvmatrix("run", str(spec), "--results", str(results), *extra, env=env)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    spec = small_spec(tmp)
    done = run_cli(spec, tmp / "results")
    return tmp, spec, done


def test_run_records_every_cell(first_run):
    tmp, spec, done = first_run
    assert done.returncode == 0, done.stderr
    (run,) = store.all_runs(tmp / "results")
    meta = run.meta
    assert meta["state"] == "complete" and meta["spec_name"] == "small"
    assert meta["host"]["cpus"] and meta["tool_version"]
    assert (run.dir / "spec.toml").read_text() == spec.read_text()
    recs = {r["cell"]["id"]: r for r in run.records()}
    assert set(recs) == {"tiny-6.1/source", "tiny-6.1/build", "tiny-6.1/analyze/default",
                         "tiny-6.1/hw/default/e1000e", "tiny-6.1/hw/default/ich9-ahci"}
    build = recs["tiny-6.1/build"]
    assert build["verdict"]["status"] == "pass" and build["inputs"]["artifact_key"]
    assert build["inputs"]["identity"].startswith("sha256:")
    assert build["logs"]["build"].endswith("build.log")
    assert recs["tiny-6.1/hw/default/e1000e"]["verdict"]["detail"] == "module"
    ahci = recs["tiny-6.1/hw/default/ich9-ahci"]["verdict"]
    assert ahci["status"] == "fail" and "8086:2922" in ahci["reason"]
    assert "PV" in recs["tiny-6.1/analyze/default"]["verdict"]["detail"]
    # plain progress lines when not on a terminal, and the table on stdout
    assert "build       1/1 tiny-6.1: pass (cached)" in done.stderr   # done of the stage's total
    assert "tiny-6.1" in done.stdout and "missing" in done.stdout


def test_history_and_warm_rerun(first_run):
    tmp, spec, _ = first_run
    start = time.monotonic()
    done = run_cli(spec, tmp / "results")
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert took < 10, f"warm rerun took {took:.1f} s"
    assert "(cached)" in done.stderr and "compared with run" in done.stdout
    hist = pvmatrix("history", "tiny-6.1/hw/default/ich9-ahci", "--results", str(tmp / "results"))
    assert hist.returncode == 0, hist.stderr
    assert hist.stdout.count("fail") == 2
    idx = Index(tmp / "results")
    assert len(idx.history("tiny-6.1/")) == 10
    idx.close()


def test_regression_against_previous_run_exits_nonzero(first_run):
    tmp, spec, _ = first_run
    runs = store.all_runs(tmp / "results")
    last = runs[-1]
    # make the last run claim the AHCI cell passed: the next run regresses it
    path = next(last.dir.glob("cells/*ich9-ahci*.json"))
    rec = json.loads(path.read_text())
    rec["verdict"]["status"] = "pass"
    store.write_json(path, rec)
    Index(tmp / "results").rebuild(tmp / "results")
    done = run_cli(spec, tmp / "results")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSION tiny-6.1/hw/default/ich9-ahci: pass -> fail" in done.stdout
    newest = store.all_runs(tmp / "results")[-1]
    cmp = pvmatrix("compare", last.id, newest.id, "--results", str(tmp / "results"))
    assert cmp.returncode == 1 and "regression" in cmp.stdout
    back = pvmatrix("compare", newest.id, last.id, "--results", str(tmp / "results"))
    assert back.returncode == 0 and "fix" in back.stdout


def test_ctrl_c_keeps_finished_cells_and_resume_continues(tmp_path):
    spec = small_spec(tmp_path, "interrupted")
    results = tmp_path / "results"
    # analyze tasks wait 60 s (or until Ctrl-C): a fake kind the child registers
    proc = subprocess.Popen([*fake_tasks.command(["--slow", "analyze=60"]), "run", str(spec),
                             "--results", str(results)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = store.all_runs(results)
        if runs and list(runs[0].dir.glob("cells/*build.json")):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the build cell was never recorded")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (run,) = store.all_runs(results)
    assert run.meta["state"] == "interrupted"
    ids = {r["cell"]["id"] for r in run.records()}
    assert ids == {"tiny-6.1/source", "tiny-6.1/build"}
    assert "--resume" in err

    done = run_cli(spec, results, "--resume")
    assert done.returncode == 0, done.stderr
    assert f"resuming run {run.id}: 2 of 3 tasks already done" in done.stderr
    (again,) = store.all_runs(results)            # the same run, now complete
    assert again.meta["state"] == "complete"
    assert len(again.records()) == 5


def test_same_run_on_an_external_dask_scheduler(tmp_path):
    """--scheduler: the same tasks go to a real `dask scheduler` and `dask worker`."""
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
             "--nworkers", "1", "--nthreads", "4", "--resources", "CPU=2 MEM=8 qemu=1",
             "--dashboard-address", ":0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")))
        spec = small_spec(tmp_path, "remote")
        done = run_cli(spec, tmp_path / "results", "--scheduler", f"tcp://127.0.0.1:{port}")
        assert done.returncode == 0, done.stderr
        (run,) = store.all_runs(tmp_path / "results")
        assert run.meta["state"] == "complete" and len(run.records()) == 5
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


CLOUD_DOM0 = """[matrix]
name = "cloud-dom0"
roles = ["dom0"]
hardware = ["default"]

[[kernel]]
name = "cloud"
package = "debian:linux-image-cloud-amd64@bookworm"
"""


@pytest.mark.slow
def test_confirm_boots_the_cloud_kernel_as_dom0_and_keeps_the_static_no(tmp_path):
    """Debian's cloud kernel has no XEN_DOM0: its dom0 cell is a static fail,
    not booted; `run --confirm` boots it as dom0 anyway (one Xen boot, up to its
    deadline), and the cell's verdict is the boot's, after the static evidence."""
    spec, results = tmp_path / "cloud.toml", tmp_path / "results"
    spec.write_text(CLOUD_DOM0)
    cell = "cells/cloud_dom0_xen-4.17_default.json"
    plain = run_cli(spec, results)
    assert plain.returncode == 0, plain.stderr
    (first,) = store.all_runs(results)
    rec = json.loads((first.dir / cell).read_text())
    v = rec["verdict"]
    assert (v["status"], v["detail"]) == ("fail", "static"), v
    assert v["reason"].startswith("pv_dom0: no") and rec["boot"] is None
    assert [e["note"] for e in v["evidence"]] == ["static analysis"]

    done = run_cli(spec, results, "--confirm")
    assert done.returncode == 0, done.stdout + done.stderr
    confirmed = store.all_runs(results)[-1]
    assert confirmed.meta["flags"]["confirm"] is True
    rec = json.loads((confirmed.dir / cell).read_text())
    v = rec["verdict"]
    assert rec["task_def"]["args"]["confirm"] is True and rec["inputs"]["confirm"] is True
    # without XEN_DOM0 it never reaches its init (it halts): a fail from the boot
    assert v["status"] == "fail" and v["detail"] == "halted", v      # judged at its halt (59 s)
    assert "--confirm" in v["reason"] and "the static analysis said pv_dom0: no" in v["reason"]
    static, *booted = v["evidence"]
    assert static["note"] == "static analysis" and static["text"].startswith("pv_dom0: no")
    assert booted and all(e["note"] != "static analysis" for e in booted)
    assert any(e.get("line") and e.get("log", "").endswith("serial.log") for e in booted), booted
    assert rec["boot"] is not None and rec["logs"]["serial"]
