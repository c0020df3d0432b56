"""Dask distributed underneath the matrix: one code path from a laptop to a
farm. Each task is submitted as a future keyed by its content hash, declaring
the resources it holds (CPU, MEM in GiB, qemu, kvm); its dependencies are
passed as futures, and it returns a small outcome (never artifacts).

Embedded default: a LocalCluster with one worker process holding this
machine's resources. With --scheduler tcp://HOST:8786 (or a scheduler file)
the same tasks go to `dask scheduler` / `dask worker --resources ...`.

Tasks go to the scheduler as one Client.map per (depth in the graph,
resources), not one submit each, and finished outcomes come back a batch per
gather: per task, Dask's own bookkeeping is what is left.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from ..errors import PvmError
from .cells import Task
from .tasks import execute

THREADS = 4          # concurrent tasks in the one local worker; resources do the limiting

# The embedded cluster's one worker process. It is forked (where fork exists), not
# spawned: a spawned worker imports distributed and pvmatrix afresh, about 0.7 s of
# the cluster's 0.9 s start on 2 cores (and 0.2 s of its stop), paid by every
# `pvmatrix run`; forked, the start is ~0.1 s. The fork happens while the caller
# waits (in LocalCluster(), or in prestart() until the worker is forked), so none
# of its imports or locks is half-way; the other threads then are Dask's own and
# at most the progress ticker. DASK_DISTRIBUTED__WORKER__
# MULTIPROCESSING_METHOD=spawn (or forkserver) in the environment is obeyed instead.
# The worker must not be daemonic: tasks start process pools (the analyzer's module
# scan). Its statistical profiler (a 10 ms sampling thread, for a dashboard it has
# not) is off.
EMBEDDED_CONFIG = {
    "distributed.worker.daemon": False,
    "distributed.worker.multiprocessing-method":
        os.environ.get("DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD")
        or ("fork" if hasattr(os, "fork") else "spawn"),
    "distributed.worker.profile.enabled": False,
}
# No Dask memory limit on it: that limit counts the worker process alone, never the
# podman or QEMU children that hold the memory; the MEM resource and the children's
# own limits are what hold. Without one, results are kept in a plain dict, not a
# spill buffer weighing each one, and the nanny polls no memory.
MEMORY_LIMIT = 0
# When every outcome is in, the embedded cluster is closed in the background
# (~40 ms: the worker process stopped, the scheduler closed) while the caller
# writes reports; here until joined.
_CLOSING: list[threading.Thread] = []
# An embedded cluster started ahead by prestart(), for client() to take.
_EARLY: list[Future] = []
_FORKED = threading.Event()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_parent=_FORKED.set)

def local_resources() -> dict[str, float]:
    """What this machine offers: cores, GiB of RAM, and QEMU (kvm when usable)."""
    return dict(_probe_resources())


@lru_cache(maxsize=1)
def _probe_resources() -> dict[str, float]:          # probing kvm takes ~50 ms: once a process
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    res = {"CPU": float(os.cpu_count() or 1), "MEM": float(int(mem)),
           "qemu": 1.0 if shutil.which("qemu-system-x86_64") else 0.0}
    try:
        from ..boot.qemu import probe_accel
        if probe_accel().name == "kvm":
            res["kvm"] = 1.0
    except Exception:
        pass
    return res


@contextmanager
def client(address: str | None = None) -> Iterator[tuple[object, dict | None]]:
    """A dask.distributed Client: to ADDRESS (tcp://... or a scheduler file), else to
    an embedded LocalCluster. Yields (client, local resources or None)."""
    from distributed import Client
    if address:
        kw = {"scheduler_file": address} if Path(address).is_file() else {"address": address}
        try:
            c = Client(**kw, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise PvmError(f"--scheduler {address}: cannot connect ({exc})") from None
        try:
            yield c, None
        finally:
            c.close()
        return
    cluster, res = _EARLY.pop().result() if _EARLY else _start_local()
    c = Client(cluster)
    try:
        yield c, res
    except BaseException:                 # Ctrl-C, a lost scheduler: stop the worker now
        _close(c, cluster)
        raise
    closing = threading.Thread(target=_close, args=(c, cluster), name="pvmatrix-cluster-close")
    closing.start()                       # every outcome is in: the caller goes on meanwhile
    _CLOSING.append(closing)


def _start_local() -> tuple[object, dict[str, float]]:
    """The embedded LocalCluster: one worker process with this machine's resources."""
    import dask
    from distributed import LocalCluster
    wait_closed()                         # no fork while another cluster is closing
    res = local_resources()
    dask.config.set(EMBEDDED_CONFIG)      # for good: a restarted worker is made the same way
    cluster = LocalCluster(n_workers=1, threads_per_worker=THREADS, processes=True,
                           resources=res, memory_limit=MEMORY_LIMIT, dashboard_address=None,
                           silence_logs=logging.ERROR, worker_dashboard_address=None)
    return cluster, res


def prestart(address: str | None) -> None:
    """Start the embedded cluster (when ADDRESS is None) in the background, for
    client() to take: its worker process comes up (~0.1 s) while the caller
    prepares the run. Returns once the worker process is forked, so the fork
    never catches the caller half-way through an import or holding a lock."""
    if address or _EARLY:
        return
    import distributed                    # noqa: F401  (imported here, not in the thread)
    _FORKED.clear()
    early: Future = Future()

    def start() -> None:
        try:
            early.set_result(_start_local())
        except BaseException as exc:
            early.set_exception(exc)

    threading.Thread(target=start, name="pvmatrix-cluster-start", daemon=True).start()
    _EARLY.append(early)
    while not _FORKED.wait(0.005) and not early.done():
        pass
    atexit.register(_drop_early)


def _drop_early() -> None:
    """At exit: close a cluster prestart() started that no client() took."""
    while _EARLY:
        try:
            cluster, _ = _EARLY.pop().result(timeout=30)
            cluster.close()
        except Exception:
            pass


def _close(c, cluster) -> None:
    try:
        c.close()
        cluster.close()
    except Exception as exc:              # nothing is lost: every outcome is recorded
        logging.getLogger(__name__).warning("closing the embedded Dask cluster: %s", exc)


def wait_closed() -> None:
    """Wait until embedded clusters closed in the background are gone (the
    interpreter waits for them too at exit: the threads are not daemons)."""
    while _CLOSING:
        _CLOSING.pop().join()


def fit(wanted: dict[str, float], offered: dict[str, float] | None) -> dict[str, float]:
    """On the embedded cluster a task never asks for more than the machine has
    (a 1-core laptop still builds); on a real cluster it waits for such a worker.
    A resource the machine lacks entirely (e.g. qemu) stays, so the task waits."""
    if offered is None:
        return dict(wanted)
    return {k: (min(v, offered[k]) if offered.get(k) else v) for k, v in wanted.items()}


def run_task(payload: dict, deps: dict) -> dict:
    """What a worker runs: the task, after its dependencies' outcomes (DEPS by name)."""
    return execute(payload, **deps)


def _groups(tasks: list[Task], done: dict[str, dict]) -> list[list[Task]]:
    """TASKS (in dependency order) grouped by (depth in the graph, resources): one
    Client.map per group, so the scheduler takes a few graph updates, not one a task."""
    depth: dict[str, int] = {}
    groups: dict[tuple, list[Task]] = {}
    for t in tasks:
        if t.key in done:
            continue
        depth[t.key] = 1 + max((depth.get(k, -1) for k in t.deps.values()), default=-1)
        groups.setdefault((depth[t.key], tuple(sorted(t.resources.items()))), []).append(t)
    return [groups[g] for g in sorted(groups, key=lambda g: g[0])]


def submit_all(c, tasks: list[Task], offered: dict | None, done: dict[str, dict]) -> dict:
    """Submit TASKS (in dependency order), each keyed by its content hash, with
    its own resources, its dependencies passed as futures; DONE holds outcomes
    that need no rerun (--resume). Returns task key -> future (or the finished outcome)."""
    futures: dict[str, object] = {t.key: done[t.key] for t in tasks if t.key in done}
    for group in _groups(tasks, done):
        deps = [{name: futures[key] for name, key in t.deps.items()} for t in group]
        got = c.map(run_task, [t.payload() for t in group], deps, key=[t.key for t in group],
                    resources=fit(group[0].resources, offered) or None, pure=False, retries=1)
        futures.update(zip((t.key for t in group), got))
    return futures


def wait_each(futures: dict, on_done: Callable[[str, dict | None, BaseException | None], None]) -> None:
    """Call ON_DONE(key, outcome, error) as each submitted future finishes. Futures
    that finished while ON_DONE recorded the last batch are fetched together (one
    gather, not a round trip to the worker each)."""
    from distributed import Future, as_completed
    pending = [f for f in futures.values() if isinstance(f, Future)]
    if not pending:
        return
    client = pending[0].client
    for batch in as_completed(pending).batches():
        for key, outcome, error in _fetch(client, batch):
            on_done(key, outcome, error)


def _fetch(client, batch: list) -> Iterator[tuple[str, dict | None, BaseException | None]]:
    """(key, outcome, error) of each finished future of BATCH."""
    ok = [f for f in batch if f.status == "finished"]
    try:
        got = dict(zip((f.key for f in ok), client.gather(ok))) if ok else {}
    except Exception:                     # lost since it finished: one at a time, below
        got = {}
    for fut in batch:
        if fut.key in got:
            yield fut.key, got[fut.key], None
            continue
        try:
            outcome = fut.result()
        except Exception as exc:          # a worker lost for good, a dependency that errored
            yield fut.key, None, exc
        else:
            yield fut.key, outcome, None
