"""Dask distributed underneath the matrix: one code path from a laptop to a
farm. Each task is submitted as a future keyed by its content hash, declaring
the resources it holds (CPU, MEM in GiB, qemu, kvm); its dependencies are
passed as futures, and it returns a small outcome (never artifacts).

Embedded default: a LocalCluster with one worker holding this machine's
resources, in this process. With --scheduler tcp://HOST:8786 (or a scheduler file)
the same tasks go to `dask scheduler` / `dask worker --resources ...`.

Tasks go to the scheduler as one Client.map per (depth in the graph,
resources), not one submit each, and finished outcomes come back a batch per
gather: per task, Dask's own bookkeeping is what is left.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

from ..errors import HarnessFault, UserError
from ..settings import Settings, current, use
from . import tasks
from .cells import Task
from .outcomes import TaskOutcome
from ..boot.qemu import probe_accel

THREADS = 4          # concurrent tasks in the one local worker; resources do the limiting

# The embedded cluster's one worker lives in this process (threads, not a worker
# process): every task's real work is a child (podman, QEMU) or a process pool
# (the module scan), so the GIL does not limit it, while a worker process costs
# each `pvmatrix run` its fork and start (~0.1 s on 2 cores), a nanny, and a TCP
# round trip with pickling per task (bench/results/scale.json: local overhead
# 1.07 this way; 1.14-1.26 with a worker process). Its statistical profiler (a 10 ms sampling thread, for a
# dashboard it has not) is off.
EMBEDDED_CONFIG = {"distributed.worker.profile.enabled": False}
# No Dask memory limit on it: that limit counts this process alone, never the
# podman or QEMU children that hold the memory; the MEM resource and the children's
# own limits are what hold. Without one, results are kept in a plain dict, not a
# spill buffer weighing each one, and no memory is polled.
MEMORY_LIMIT = 0


def local_resources() -> dict[str, float]:
    """What this machine offers: cores, GiB of RAM, and QEMU (kvm when usable)."""
    return dict(_probe_resources())


@lru_cache(maxsize=1)
def _probe_resources() -> dict[str, float]:          # probing kvm takes ~50 ms: once a process
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cores = float(os.cpu_count() or 1)
    # a QEMU slot per core: each boot's TCG runs on one host thread
    res = {"CPU": cores, "MEM": float(int(mem)),
           "qemu": cores if shutil.which("qemu-system-x86_64") else 0.0}
    try:
        if probe_accel().name == "kvm":
            res["kvm"] = 1.0
    except Exception:
        pass
    return res


def scheduler_address(address: str) -> str:
    """ADDRESS itself, or the address inside the scheduler file ADDRESS names."""
    if not Path(address).is_file():
        return address
    try:
        found = json.loads(Path(address).read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"--scheduler {address}: not a Dask scheduler file") from None
    if not isinstance(found, str):
        raise UserError(f"--scheduler {address}: not a Dask scheduler file")
    return found


def check(address: str) -> None:
    """ADDRESS (or its file) names a scheduler that accepts connections: checked
    before a run is made, and a refused port fails now, not after the client's
    20 s of retries."""
    target = scheduler_address(address)
    url = urlsplit(target if "://" in target else f"tcp://{target}")
    try:
        host, port = url.hostname, url.port
    except ValueError:
        raise UserError(f"--scheduler {address}: not an address (tcp://HOST:PORT)") from None
    if url.scheme not in ("tcp", "tls") or not host or not port:
        return                       # another transport: the client says
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        raise HarnessFault(f"--scheduler {address}: cannot connect "
                           f"({exc.strerror or exc})") from None


@contextmanager
def client(address: str | None = None) -> Iterator[tuple[object, dict | None]]:
    """A dask.distributed Client: to ADDRESS (tcp://... or a scheduler file), else to
    an embedded LocalCluster. Yields (client, local resources or None)."""
    from distributed import Client
    if address:
        try:
            c = Client(address=scheduler_address(address), timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise HarnessFault(f"--scheduler {address}: cannot connect ({exc})") from None
        try:
            yield c, None
        finally:
            c.close()
        return
    cluster, res = _start_local()
    c = Client(cluster)
    try:
        yield c, res
    except BaseException:                 # Ctrl-C, a lost scheduler: the tasks here stop now
        tasks.abort()
        _close(c, cluster, wait=False)
        raise
    _close(c, cluster)


def _start_local() -> tuple[object, dict[str, float]]:
    """The embedded LocalCluster: one worker, in this process, with this machine's resources."""
    import dask
    from distributed import LocalCluster
    res = local_resources()
    tasks.ABORT.clear()
    with dask.config.set(EMBEDDED_CONFIG):
        cluster = LocalCluster(n_workers=1, threads_per_worker=THREADS, processes=False,
                               resources=res, memory_limit=MEMORY_LIMIT, dashboard_address=None,
                               silence_logs=logging.ERROR)
    return cluster, res


def _close(c, cluster, wait: bool = True) -> None:
    """Close the client and the embedded cluster; without WAIT, tasks still running
    (aborted, in daemon threads) are not waited for."""
    try:
        if not wait:
            for w in list(cluster.workers.values()):
                cluster.sync(w.close, executor_wait=False, timeout=5)
        c.close()
        cluster.close()
    except Exception as exc:              # nothing is lost: every outcome is recorded
        logging.getLogger(__name__).warning("closing the embedded Dask cluster: %s", exc)


def fit(wanted: dict[str, float], offered: dict[str, float] | None) -> dict[str, float]:
    """On the embedded cluster a task never asks for more than the machine has
    (a 1-core laptop still builds); on a real cluster it waits for such a worker.
    A resource the machine lacks entirely (e.g. qemu) stays, so the task waits."""
    if offered is None:
        return dict(wanted)
    return {k: (min(v, offered[k]) if offered.get(k) else v) for k, v in wanted.items()}


def run_task(payload: dict, deps: dict, settings: dict | None = None) -> dict:
    """What a worker runs: the task, after its dependencies' outcomes (DEPS by name),
    under the run's SETTINGS (Settings.to_payload: its store, its cache) over the
    worker's own. Outcomes cross Dask as plain dicts (TaskOutcome.to_dict)."""
    typed = {name: None if d is None else TaskOutcome.from_dict(d) for name, d in deps.items()}
    with use(Settings.from_payload(settings or {})):
        return tasks.execute(payload, **typed).to_dict()


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
    that need no rerun (--resume). Every task carries the settings in effect here.
    Returns task key -> future (or the finished outcome)."""
    futures: dict[str, object] = {t.key: done[t.key] for t in tasks if t.key in done}
    run_settings = current().to_payload()
    for group in _groups(tasks, done):
        deps = [{name: futures[key] for name, key in t.deps.items()} for t in group]
        got = c.map(run_task, [t.payload() for t in group], deps, key=[t.key for t in group],
                    resources=fit(group[0].resources, offered) or None, pure=False, retries=1,
                    settings=run_settings)
        futures.update(zip((t.key for t in group), got))
    return futures


def wait_each(futures: dict,
              on_done: Callable[[str, TaskOutcome | None, BaseException | None], None]) -> None:
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


def _fetch(client, batch: list) -> Iterator[tuple[str, TaskOutcome | None, BaseException | None]]:
    """(key, outcome, error) of each finished future of BATCH."""
    ok = [f for f in batch if f.status == "finished"]
    try:
        got = dict(zip((f.key for f in ok), client.gather(ok))) if ok else {}
    except Exception:                     # lost since it finished: one at a time, below
        got = {}
    for fut in batch:
        try:
            raw = got[fut.key] if fut.key in got else fut.result()
            outcome = TaskOutcome.from_dict(raw)
        except Exception as exc:          # a worker lost for good, a dependency that errored, no outcome
            yield fut.key, None, exc
        else:
            yield fut.key, outcome, None
