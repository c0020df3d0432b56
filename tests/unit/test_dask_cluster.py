"""The matrix on a real Dask cluster on 127.0.0.1: a `dask scheduler` and
`dask worker --resources ...` processes, driven through pvmatrix's own
scheduler (pvmatrix.matrix.scheduler) and runner/results store. No mocks;
only the work is fake: task kinds defined here ("fake", "hang_once") are put
into pvmatrix.matrix.tasks.FUNCS on every worker by a worker plugin, so each
task still goes through tasks.execute, submit_all (resources, futures as
dependencies, retries) and the runner's recording, and takes milliseconds
instead of a kernel build or a boot.

- A task that needs a resource no worker offers (qemu) waits, then runs when
  a worker offering it joins.
- A worker host killed with SIGKILL in the middle of a task loses no finished
  cell: they are in the results store, and the run completes on the other
  worker.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from distributed.diagnostics.plugin import WorkerPlugin

from conftest import free_port
from matrix_helpers import small_spec
from pvmatrix.matrix import outcomes, runner, scheduler
from pvmatrix.results import store
from pvmatrix.matrix.cells import Task
from pvmatrix.records import PASS, Verdict
from pvmatrix.results.records import Cell
from pvmatrix.results.index import Index
from pvmatrix.matrix.plan import RESOURCES, Plan
from pvmatrix.matrix.progress import Progress
from pvmatrix.matrix.spec import load

# the workers import this module (unit.test_dask_cluster) and its helpers from tests/
TESTS = Path(__file__).resolve().parent.parent


# -- fake task kinds (run on the workers) -----------------------------------

def _worker_name() -> str:
    from distributed import get_worker
    return str(get_worker().name)


def _passed(task: dict, **seen) -> outcomes.TaskOutcome:
    """A pass; what the fake saw goes into the outcome's inputs (free-form, unlike facts)."""
    name = _worker_name()
    out = outcomes.new(task, inputs={"worker": name, "pid": os.getpid(), **seen})
    for c in task["cells"]:
        outcomes.cell(out, c["id"], Verdict(PASS, f"ran on {name}", "fake"))
    return out


def fake(task: dict, **deps) -> outcomes.TaskOutcome:
    """Sleep ARGS.sleep seconds and pass; says which worker ran it."""
    time.sleep(task["args"].get("sleep", 0))
    return _passed(task, deps=sorted(deps))


def hang_once(task: dict, **deps) -> outcomes.TaskOutcome:
    """The first attempt writes ARGS.marker (its pid) and hangs; a later one passes."""
    marker = Path(task["args"]["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(task["args"]["hang"])
    return _passed(task, attempt_after=marker.read_text())


class FakeTaskKinds(WorkerPlugin):
    """Adds the fake task kinds to pvmatrix.matrix.tasks.FUNCS on each worker,
    including workers that join later (setup runs before a worker takes tasks)."""
    name = "pvmatrix-test-fake-task-kinds"

    def setup(self, worker) -> None:
        from pvmatrix.matrix import tasks
        tasks.FUNCS.update(fake=fake, hang_once=hang_once)


# -- a real cluster -------------------------------------------------------

class Cluster:
    """`dask scheduler` and `dask worker` processes, each in its own session
    (a worker's nanny and worker process die together with killpg)."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        # the workers import this module to unpickle the fake task kinds
        self.env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False",
                        PYTHONPATH=os.pathsep.join(
                            [str(TESTS)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", *argv], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def start_scheduler(self) -> None:
        self._spawn("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(self.port), "--dashboard-address", ":0"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.procs["scheduler"].poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail("dask scheduler did not start:\n" + self.log("scheduler"))

    def start_worker(self, name: str, resources: str, nthreads: int = 2) -> subprocess.Popen:
        return self._spawn(name, ["distributed.cli.dask_worker", self.address, "--name", name,
                                  "--nworkers", "1", "--nthreads", str(nthreads),
                                  "--resources", resources, "--dashboard-address", ":0"])

    def wait_for_workers(self, c, names: set[str], timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            have = {str(w["name"]) for w in c.scheduler_info(n_workers=-1)["workers"].values()}
            if names <= have:
                return
            time.sleep(0.2)
        pytest.fail(f"workers {names} did not join:\n"
                    + "\n".join(self.log(n) for n in names))

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return f"--- {name} ---\n" + (path.read_text()[-3000:] if path.exists() else "")

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            try:                       # anything left in its session (nanny's child, pools)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def cluster(tmp_path):
    (tmp_path / "logs").mkdir()
    cl = Cluster(tmp_path / "logs")
    try:
        cl.start_scheduler()
        yield cl
    finally:
        cl.stop()


def fake_task(stage: str, name: str, resources: dict, deps: dict | None = None,
              func: str = "fake", **args) -> Task:
    return Task(stage, "fake", func, {"name": name, **args}, dict(deps or {}),
                [Cell(f"fake/{name}", stage, "fake", name)], dict(resources))


# -- tests ----------------------------------------------------------------

def test_task_waits_for_a_resource_no_worker_offers_then_runs_when_one_joins(cluster):
    cluster.start_worker("cpu-only", "CPU=2 MEM=4")
    analyze = fake_task("analyze", "analyze", RESOURCES["analyze"])
    boot = fake_task("boot", "baremetal", RESOURCES["boot_baremetal"], {"analysis": analyze.key})
    with scheduler.client(cluster.address) as (c, offered):
        assert offered is None            # a real cluster: resources are asked for as declared
        c.register_plugin(FakeTaskKinds())
        cluster.wait_for_workers(c, {"cpu-only"})
        futures = scheduler.submit_all(c, [analyze, boot], offered, {})
        assert futures[analyze.key].result(timeout=30)["inputs"]["worker"] == "cpu-only"

        # qemu=1: no worker has it, so the scheduler parks it as no-worker and it waits
        def state() -> str:
            return c.run_on_scheduler(lambda dask_scheduler, k=boot.key: dask_scheduler.tasks[k].state)
        end = time.monotonic() + 10
        while state() != "no-worker" and time.monotonic() < end:
            time.sleep(0.1)
        assert state() == "no-worker"
        time.sleep(0.5)                   # and it stays there
        assert futures[boot.key].status == "pending" and state() == "no-worker"

        cluster.start_worker("qemu-host", "CPU=1 MEM=1 qemu=1")
        out = futures[boot.key].result(timeout=45)
        assert out["inputs"]["worker"] == "qemu-host"
        assert out["inputs"]["deps"] == ["analysis"]
        assert out["cells"]["fake/baremetal"]["verdict"]["status"] == PASS
        got = {}
        scheduler.wait_each(futures, lambda key, o, err: got.setdefault(key, (o, err)))
        assert all(err is None for _, err in got.values()), got
        assert {k: o.status for k, (o, _) in got.items()} == {analyze.key: PASS, boot.key: PASS}


def test_killed_worker_loses_no_finished_cell_and_the_run_completes(cluster, tmp_path):
    for name in ("host-a", "host-b"):
        cluster.start_worker(name, "CPU=2 MEM=4")
    marker = tmp_path / "hang.started"
    source = fake_task("source", "source", RESOURCES["source"])
    quick = [fake_task("analyze", f"quick-{i}", RESOURCES["analyze"], {"kernel": source.key},
                       sleep=0.2) for i in range(6)]
    slow = fake_task("boot", "slow", RESOURCES["analyze"], {"kernel": source.key},
                     func="hang_once", marker=str(marker), hang=300)
    spec = load(small_spec(tmp_path, "cluster"))
    plan = Plan(spec, [source, *quick, slow])
    results = tmp_path / "results"
    run = store.create(results, spec)
    progress = Progress(Counter(t.stage for t in plan.tasks), io.StringIO(), tty=False)

    with scheduler.client(cluster.address) as (c, _):
        c.register_plugin(FakeTaskKinds())
        cluster.wait_for_workers(c, {"host-a", "host-b"})

    failed: list[BaseException] = []

    def drive() -> None:                  # the runner, as `pvmatrix run --scheduler ADDR` drives it
        index = Index(results)
        index.add_run(run)
        try:
            runner.execute(plan, run, index, cluster.address, progress, {})
        except BaseException as exc:      # reported by the test thread
            failed.append(exc)
        finally:
            index.close()

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    finished_ids = {c.id for t in [source, *quick] for c in t.cells}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        recorded = {r["cell"]["id"] for r in run.records()}
        if marker.exists() and finished_ids <= recorded:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"cells recorded: {sorted(recorded)}; slow task started: {marker.exists()}\n"
                    + "\n".join(cluster.log(n) for n in ("host-a", "host-b")))
    time.sleep(0.5)                       # the hanging task is well under way
    before = {r["cell"]["id"]: r for r in run.records()}
    assert "fake/slow" not in before
    victim_pgid = os.getpgid(int(marker.read_text()))
    victim = next(n for n, p in cluster.procs.items() if p.pid == victim_pgid)
    survivor = ({"host-a", "host-b"} - {victim}).pop()
    cluster.kill(victim)                  # SIGKILL: nanny and worker process, mid-task

    # the finished cells are in the store right after the kill, untouched
    after_kill = {r["cell"]["id"]: r for r in run.records()}
    assert finished_ids <= set(after_kill)
    assert all(after_kill[i] == before[i] for i in finished_ids)

    thread.join(timeout=45)
    assert not thread.is_alive(), "the run did not complete after the worker was killed"
    assert not failed, failed
    recs = {r["cell"]["id"]: r for r in run.records()}
    assert set(recs) == finished_ids | {"fake/slow"}
    assert all(r["verdict"]["status"] == PASS for r in recs.values())
    assert all(recs[i]["finished"] == before[i]["finished"] for i in finished_ids)   # not redone
    assert recs["fake/slow"]["verdict"]["reason"] == f"ran on {survivor}"
    saved = run.outcomes()                # what --resume would reuse: every task
    assert set(saved) == {t.key for t in plan.tasks}
    victim_pid = marker.read_text()
    assert saved[slow.key]["inputs"]["attempt_after"] == victim_pid      # a second attempt
    assert str(saved[slow.key]["inputs"]["pid"]) != victim_pid
    idx = Index(results)
    try:
        assert {(h[3], h[4]) for h in idx.history("fake/")} == {(i, PASS) for i in recs}
    finally:
        idx.close()
    with scheduler.client(cluster.address) as (c, _):
        names = {str(w["name"]) for w in c.scheduler_info(n_workers=-1)["workers"].values()}
        assert names == {survivor}
