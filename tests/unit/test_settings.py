"""Settings: read from flags and the environment in one place (pvmatrix/settings.py,
the only reader of os.environ), malformed values are one-line user errors, no
command writes to os.environ, and a run's store and cache travel with its tasks
to a worker in another process whose own environment says otherwise."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pvmatrix import artifacts, paths, settings
from pvmatrix.errors import UserError
from pvmatrix.matrix import outcomes, scheduler
from pvmatrix.matrix.cells import Cell, Task
from pvmatrix.records import PASS, Verdict
from pvmatrix.settings import Settings

PACKAGE = Path(paths.__file__).resolve().parent


def test_values_from_the_environment_and_flags_over_them(tmp_path):
    env = {"PVMATRIX_CACHE": str(tmp_path / "c"), "PVMATRIX_STORE": "s3://b/p",
           "AWS_ENDPOINT_URL": "http://aws", "PVMATRIX_WARM_TREES": "-3",
           "PVMATRIX_BOOT_KEEP_MB": "12", "PVMATRIX_ACCEL": "tcg", "PVMATRIX_QEMU": "",
           "HOME": str(tmp_path)}
    s = Settings.from_env(env)
    assert s.cache_root() == tmp_path / "c" and s.store == "s3://b/p"
    assert s.s3_endpoint == "http://aws" and s.warm_trees == 0 and s.boot_keep_mb == 12
    assert s.accel == "tcg" and s.qemu is None          # an empty variable is unset
    assert Settings.from_env({**env, "PVMATRIX_S3_ENDPOINT": "http://own"}).s3_endpoint == "http://own"
    flagged = Settings.from_env(env, store="/elsewhere", cache=None)
    assert flagged.store == "/elsewhere" and flagged.cache == tmp_path / "c"
    assert Settings.from_env({"HOME": str(tmp_path)}).cache_root() == tmp_path / ".cache" / "pvmatrix"
    assert Settings.from_env({"XDG_CACHE_HOME": str(tmp_path / "x")}).cache_root() == \
        tmp_path / "x" / "pvmatrix"
    assert Settings.from_env({}).warm_trees == 8 and Settings.from_env({}).boot_keep_mb == 4096


@pytest.mark.parametrize("name, value, says", [
    ("PVMATRIX_BOOT_KEEP_MB", "abc", "not a number of MiB"),
    ("PVMATRIX_WARM_TREES", "x", "not a number of trees"),
    ("PVMATRIX_ACCEL", "hvf", "not one of tcg, kvm"),
])
def test_a_malformed_value_is_a_user_error_naming_the_variable(name, value, says):
    with pytest.raises(UserError) as err:
        Settings.from_env({name: value})
    assert str(err.value) == f"{name}={value!r}: {says}"


def test_malformed_setting_through_the_cli_is_one_line_exit_2(monkeypatch, capsys):
    from pvmatrix import cli
    monkeypatch.setenv("PVMATRIX_WARM_TREES", "x")
    assert cli.main(["source", "dir:/nonexistent"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pvmatrix: error: PVMATRIX_WARM_TREES='x': not a number of trees"]


def test_use_puts_settings_in_effect_for_a_block(tmp_path, monkeypatch):
    monkeypatch.setenv("PVMATRIX_CACHE", str(tmp_path / "env"))
    assert paths.cache_root() == tmp_path / "env"           # none in effect: the environment
    with settings.use(Settings.from_env(cache=str(tmp_path / "run"), store="/run-store")):
        assert paths.cache_root() == tmp_path / "run"
        assert artifacts.store_url() == "/run-store"
        with settings.use(Settings.from_env()):
            assert paths.cache_root() == tmp_path / "env"
        assert paths.cache_root() == tmp_path / "run"
    assert paths.cache_root() == tmp_path / "env"


def test_payload_carries_the_run_and_the_worker_keeps_its_host(tmp_path):
    run = Settings.from_env({"PVMATRIX_CACHE": "/shared/cache", "PVMATRIX_QEMU": "/run/qemu",
                             "PVMATRIX_WARM_TREES": "2"}, store="s3://b/p")
    payload = run.to_payload()
    assert payload == {"cache": "/shared/cache", "store": "s3://b/p"}
    worker_env = {"PVMATRIX_CACHE": "/own", "PVMATRIX_STORE": "/own-store",
                  "PVMATRIX_QEMU": "/own/qemu", "PATH": "/own/bin"}
    w = Settings.from_payload(payload, worker_env)
    assert w.cache_root() == Path("/shared/cache") and w.store == "s3://b/p"
    assert w.qemu == "/own/qemu" and w.warm_trees == 8
    assert w.child_env(EXTRA="1") == {**worker_env, "EXTRA": "1"}
    assert "EXTRA" not in w.environ


def test_only_settings_reads_the_environment_and_nothing_writes_it():
    pattern = re.compile(r"os\.environ|getenv|putenv|environ\.update|environ\.setdefault")
    readers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if pattern.search(p.read_text()))
    assert readers == ["settings.py"]
    text = (PACKAGE / "settings.py").read_text()
    assert not re.search(r"os\.environ\[|putenv|environ\.update|environ\.setdefault", text)


def test_store_flag_is_not_written_to_the_environment(monkeypatch, capsys):
    from pvmatrix import cli
    monkeypatch.delenv("PVMATRIX_STORE", raising=False)
    assert cli.main(["build", "--store", "nosuchproto://x", "dir:/nonexistent"]) == 2
    assert "PVMATRIX_STORE" not in os.environ
    assert "nosuchproto://x" in capsys.readouterr().err


# -- settings travel with the tasks, to a worker process of its own ----------

def where(task: dict, **deps) -> outcomes.TaskOutcome:
    """A fake task kind: the cache and store it runs with, and its own environment's
    (in the outcome's inputs, which are free-form)."""
    out = outcomes.new(task, inputs={"cache": str(paths.cache_root()), "store": artifacts.store_url(),
                                     "own_cache": os.environ.get("PVMATRIX_CACHE"), "pid": os.getpid()})
    outcomes.cell(out, task["cells"][0]["id"], Verdict(PASS, "ran", "fake"))
    return out


def _register(dask_worker=None) -> None:
    from pvmatrix.matrix import tasks
    tasks.FUNCS["where"] = where


def test_a_worker_runs_each_task_with_the_run_store_and_cache(tmp_path):
    """A worker process started with another PVMATRIX_CACHE and PVMATRIX_STORE runs
    the task under the run's (sent with the task), not its own."""
    from distributed import LocalCluster
    own = {"PVMATRIX_CACHE": str(tmp_path / "worker-cache"),
           "PVMATRIX_STORE": str(tmp_path / "worker-store")}
    run = Settings.from_env({"PVMATRIX_CACHE": str(tmp_path / "run-cache")},
                            store=str(tmp_path / "run-store"))
    task = Task("analyze", "fake", "where", {}, {},
                [Cell(id="fake/where", stage="analyze", kernel="fake", column="where")], {"CPU": 1})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, env=own,
                      dashboard_address=None, resources={"CPU": 1}) as cluster, \
            scheduler.client(cluster.scheduler_address) as (c, offered), settings.use(run):
        c.run(_register)
        futures = scheduler.submit_all(c, [task], offered, {})
        got = futures[task.key].result(timeout=60)["inputs"]
    assert got["pid"] != os.getpid() and got["own_cache"] == own["PVMATRIX_CACHE"]
    assert got["cache"] == str(tmp_path / "run-cache")
    assert got["store"] == str(tmp_path / "run-store")
