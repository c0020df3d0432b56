"""Dask distributed underneath the matrix: one code path from a laptop to a
farm. Each task is submitted as a future keyed by its content hash, declaring
the resources it holds (CPU, MEM in GiB, qemu, kvm); its dependencies are
passed as futures, and it returns a small outcome (never artifacts).

Embedded default: a LocalCluster with one worker process holding this
machine's resources. With --scheduler tcp://HOST:8786 (or a scheduler file)
the same tasks go to `dask scheduler` / `dask worker --resources ...`.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..errors import PvmError
from .cells import Task

THREADS = 4          # concurrent tasks in the one local worker; resources do the limiting


def local_resources() -> dict[str, float]:
    """What this machine offers: cores, GiB of RAM, and QEMU (kvm when usable)."""
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
    from distributed import Client, LocalCluster
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
    import dask
    res = local_resources()
    # tasks start process pools (the analyzer's module scan): the worker must not be daemonic
    dask.config.set({"distributed.worker.daemon": False})
    cluster = LocalCluster(n_workers=1, threads_per_worker=THREADS, processes=True,
                           resources=res, dashboard_address=None,
                           silence_logs=logging.ERROR, worker_dashboard_address=None)
    c = Client(cluster)
    try:
        yield c, res
    finally:
        c.close()
        cluster.close()


def fit(wanted: dict[str, float], offered: dict[str, float] | None) -> dict[str, float]:
    """On the embedded cluster a task never asks for more than the machine has
    (a 1-core laptop still builds); on a real cluster it waits for such a worker.
    A resource the machine lacks entirely (e.g. qemu) stays, so the task waits."""
    if offered is None:
        return dict(wanted)
    return {k: (min(v, offered[k]) if offered.get(k) else v) for k, v in wanted.items()}


def submit_all(c, tasks: list[Task], offered: dict | None, done: dict[str, dict]) -> dict:
    """Submit TASKS (in dependency order); DONE holds outcomes that need no rerun
    (--resume). Returns task key -> future (or the finished outcome)."""
    from .tasks import execute
    futures: dict[str, object] = {}
    for t in tasks:
        if t.key in done:
            futures[t.key] = done[t.key]
            continue
        deps = {name: futures[key] for name, key in t.deps.items()}
        futures[t.key] = c.submit(execute, t.payload(), key=t.key, resources=fit(t.resources, offered),
                                  pure=False, retries=1, **deps)
    return futures


def wait_each(futures: dict, on_done: Callable[[str, dict | None, BaseException | None], None]) -> None:
    """Call ON_DONE(key, outcome, error) as each submitted future finishes."""
    from distributed import Future, as_completed
    pending = [f for f in futures.values() if isinstance(f, Future)]
    for fut in as_completed(pending):
        try:
            on_done(fut.key, fut.result(), None)
        except Exception as exc:          # a worker lost for good, a dependency that errored
            on_done(fut.key, None, exc)
