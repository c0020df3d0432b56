"""Run one script in a toolchain container: no network, no privileges.

The kernel source is untrusted code: it is mounted read-only, the output
directory is the only writable host path besides the ccache volume (one per
trust domain: see kbuild.ccache_dir). The script runs as an unprivileged user
(Identity: in a user namespace on a rootful podman), with every capability
dropped, no-new-privileges, and CPU, memory and process limits (Limits).

Each container is labelled with its output directory and its owner process
(owner.py). A container never outlives pvmatrix: the watcher (watch.py)
removes it when pvmatrix dies, the next pvmatrix removes those whose owner is
gone (reap), and a build that takes an output directory first removes any
container still writing to it (stop_writers).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import engine, owner, watch
from ..errors import HarnessFault

SRC, OUT, CCACHE = "/src", "/out", "/ccache"
LABEL = "org.pvmatrix.out"   # every container pvmatrix starts carries its output dir
# Appended to a script: the CPU time of everything it ran. `times` must run in
# the script's own shell (a pipe or $(...) would fork and report zeros).
CPU_REPORT = 'times > /tmp/.times; echo "@@pvmatrix-cpu $(tail -n 1 /tmp/.times)"\n'
_live: dict[str, object] = {}        # containers run() waits on, by id
_lock = threading.Lock()
# Rootful podman: the container's ids 0-65535 are host ids USERNS_BASE+0..65535, far
# above any real user's and above the subuid ranges useradd hands out.
USERNS_BASE, USERNS_SIZE, BUILD_ID = 1_610_612_736, 65536, 1000
MEM_PER_CPU_GIB = 2          # a build task declares CPU=2, MEM=4 (matrix/plan.py)
PIDS = 4096                  # a fork bomb stops here; make -jN needs a few dozen


@dataclass(frozen=True)
class Identity:
    """Who the script runs as: USER inside the container, the host ids that must
    own its writable mounts, and podman's user namespace mode (None: the engine's)."""
    user: str
    owner: tuple[int, int]
    userns: str | None = None


def identity(podman: bool, uid: int | None = None, gid: int | None = None) -> Identity:
    """The unprivileged identity of a build container for this process's user
    (UID/GID: this process's). Root: uid 1000 in a private user namespace on
    podman (host USERNS_BASE+1000), host uid USERNS_BASE+1000 on Docker (whose
    per-container namespaces are the daemon's choice). Anyone else: their own
    ids (rootless podman keeps them with keep-id)."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    if uid != 0:
        return Identity(f"{uid}:{gid}", (uid, gid), "keep-id" if podman else None)
    host = USERNS_BASE + BUILD_ID
    if podman:
        mapping = f"0:{USERNS_BASE}:{USERNS_SIZE}"
        return Identity(f"{BUILD_ID}:{BUILD_ID}", (host, host),
                        f"auto:uidmapping={mapping},gidmapping={mapping}")
    return Identity(f"{host}:{host}", (host, host))


@dataclass(frozen=True)
class Limits:
    """What a build container may use: CPUs (fractional), memory (GiB), processes."""
    cpus: float
    mem_gib: float
    pids: int = PIDS

    @classmethod
    def of(cls, resources: Mapping[str, float]) -> Limits:
        """The limits of a task that declares RESOURCES (CPU, MEM in GiB), CPUs no
        more than this machine has (the embedded cluster lets such a task run)."""
        cpus = min(float(resources.get("CPU") or os.cpu_count() or 1), os.cpu_count() or 1)
        return cls(cpus, float(resources.get("MEM") or MEM_PER_CPU_GIB * cpus))

    @classmethod
    def for_jobs(cls, jobs: int) -> Limits:
        """A build outside the matrix with make -jJOBS."""
        return cls.of({"CPU": jobs, "MEM": MEM_PER_CPU_GIB * jobs})

    @property
    def jobs(self) -> int:
        return max(1, round(self.cpus))

    def host_config(self) -> dict:
        return {"nano_cpus": int(self.cpus * 1e9), "mem_limit": f"{int(self.mem_gib * 1024)}m",
                "pids_limit": self.pids}


def own(path: Path, who: Identity) -> None:
    """Give PATH (recursively) to WHO's host ids when its top is not theirs already
    (a tree made by this process, or by a pvmatrix that built as root)."""
    uid, gid = who.owner
    st = path.stat()
    if (st.st_uid, st.st_gid) == (uid, gid):
        return
    done = subprocess.run(["chown", "-R", "-h", f"{uid}:{gid}", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise HarnessFault(f"cannot give {path} to the build user {uid}:{gid}: "
                           f"{done.stderr.strip()[:200]}")


@dataclass
class Mounts:
    tree: Path
    out: Path
    ccache: Path

    def volumes(self) -> dict:
        return {str(self.tree): {"bind": SRC, "mode": "ro"},
                str(self.out): {"bind": OUT, "mode": "rw"},
                str(self.ccache): {"bind": CCACHE, "mode": "rw"}}


class Progress:
    """Status of a long container job: a live line on a TTY, plain lines otherwise."""

    def __init__(self, label: str, every_s: float = 30.0):
        self.label, self.every_s = label, every_s
        self.start = self.last = time.monotonic()
        self.lines = 0
        self.tty = sys.stderr.isatty()

    def line(self, text: str) -> None:
        self.lines += 1
        now = time.monotonic()
        if self.tty and now - self.last >= 0.5:
            self.last = now
            status = f"\r\033[K{self.label}: {now - self.start:5.0f}s {text.strip()[:60]}"
            print(status, end="", file=sys.stderr, flush=True)
        elif not self.tty and now - self.last >= self.every_s:
            self.last = now
            print(f"pvmatrix: {self.label}: {now - self.start:.0f}s, {self.lines} log lines, "
                  f"at: {text.strip()[:80]}", file=sys.stderr, flush=True)

    def done(self) -> float:
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        return time.monotonic() - self.start


def run(image: str, script: str, mounts: Mounts, log: Path, env: dict[str, str],
        progress: Progress | None = None, network: bool = False,
        limits: Limits | None = None) -> int:
    """Run SCRIPT with bash in IMAGE as an unprivileged user within LIMITS (default:
    this machine's CPUs); stream its output to LOG; return the exit code."""
    client = engine.client()
    _reap_once()
    watch.start(engine.url(), owner.me())
    who = identity(engine.is_podman())
    for path in (mounts.out, mounts.ccache):
        own(path, who)
    container = _create(client, image, script, mounts, env, network, who, limits or Limits.of({}))
    with _lock:
        _live[container.id] = container
    try:
        container.start()
        with open(log, "ab") as fh:
            pending = b""
            for chunk in container.logs(stream=True, follow=True):
                fh.write(chunk)
                fh.flush()
                if progress:
                    pending += chunk
                    *whole, pending = pending.split(b"\n")
                    for text in whole:
                        progress.line(text.decode(errors="replace"))
        return int(container.wait().get("StatusCode", 1))
    finally:
        with _lock:
            _live.pop(container.id, None)
        _remove(container)


def _create(client, image: str, script: str, mounts: Mounts, env: dict[str, str], network: bool,
            who: Identity, limits: Limits):
    """A created (not started) container: through the low-level API, since the
    SDK's HostConfig takes no user namespace but "host"."""
    host_config = client.api.create_host_config(
        binds=mounts.volumes(), network_mode="host" if network else "none",
        cap_drop=["ALL"], security_opt=["no-new-privileges"], ulimits=engine.ulimits(),
        tmpfs={"/tmp": "exec"}, **limits.host_config())
    if who.userns:
        host_config["UsernsMode"] = who.userns
    made = client.api.create_container(
        image, ["bash", "-c", script], user=who.user, working_dir=OUT, environment=env,
        host_config=host_config, labels={LABEL: str(mounts.out), owner.LABEL: owner.me().token})
    return client.containers.get(made["Id"])


def _remove(container) -> None:
    """Remove CONTAINER, killing it first; podman sometimes reports a busy shm
    mount on the first try while the container is going: ask until it is gone."""
    for _ in range(3):
        try:
            container.remove(force=True)
            return
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                return
            time.sleep(0.5)


def reap(client, out: Path | None = None) -> list[str]:
    """Remove the containers (of output directory OUT, if given) whose owner
    process is gone; their ids."""
    filters = {"label": f"{LABEL}={out}" if out else owner.LABEL}
    gone = [c for c in client.containers.list(all=True, filters=filters)
            if owner.orphaned(c.labels)]
    for c in gone:
        _remove(c)
    return [c.id for c in gone]


@lru_cache(maxsize=1)
def _reap_once() -> None:
    """Orphans of earlier runs, once per process: they hold CPU and memory."""
    reap(engine.client())


def stop_writers(out: Path) -> int:
    """Remove every container still writing to OUT, an output directory whose
    lock the caller holds: their owner is dead (a live one holds the lock), even
    when they carry no owner token. How many there were."""
    found = engine.client().containers.list(all=True, filters={"label": f"{LABEL}={out}"})
    for c in found:
        _remove(c)
    return len(found)


@atexit.register
def remove_all() -> None:
    """Remove every container run() still waits on (Ctrl-C of a run whose tasks are
    in threads of this process: each run() then sees its container gone)."""
    with _lock:
        live = list(_live.values())
    for container in live:
        _remove(container)
