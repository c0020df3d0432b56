"""The container engine: Docker if one answers, else a private podman service.

Both are driven through the Python docker SDK. The podman service gets the
settings this kind of sandbox needs (runc, cgroupfs, ulimits not above the
current ones); see the project's platform notes.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from functools import lru_cache
from pathlib import Path

from .. import settings
from ..errors import HarnessFault
from ..paths import cache_dir

PODMAN_IDLE_S = 600


def ulimits() -> list:
    """nofile and nproc at or below this process's limits (both or none: see notes)."""
    import docker.types

    def cap(kind: int, want: int) -> int:
        soft, hard = resource.getrlimit(kind)
        limit = min(x for x in (soft, hard, want) if x != resource.RLIM_INFINITY)
        return limit

    return [docker.types.Ulimit(name="nofile", soft=cap(resource.RLIMIT_NOFILE, 16384),
                                hard=cap(resource.RLIMIT_NOFILE, 16384)),
            docker.types.Ulimit(name="nproc", soft=cap(resource.RLIMIT_NPROC, 8192),
                                hard=cap(resource.RLIMIT_NPROC, 8192))]


def _ping(url: str):
    import docker
    try:
        client = docker.DockerClient(base_url=url, timeout=600)
        client.ping()
        return client
    except Exception:
        return None


def _podman_conf(root: Path) -> Path:
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 16384)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], 8192)
    conf = root / "containers.conf"
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n')
    return conf


def _start_podman() -> str:
    if not shutil.which("podman"):
        raise HarnessFault("no container engine: no Docker daemon answers and podman is not "
                           "installed (run: apt-get install podman runc)")
    # one service per user, shared by every cache (a test's private cache included)
    root = (settings.current().runtime_dir or Path(f"/tmp/pvmatrix-{os.getuid()}")) / "engine"
    root.mkdir(parents=True, exist_ok=True)
    sock = root / "podman.sock"
    url = f"unix://{sock}"
    if _ping(url):
        return url
    env = settings.current().child_env(CONTAINERS_CONF=str(_podman_conf(root)))
    log = open(root / "podman-service.log", "ab")
    subprocess.Popen(["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
                      "system", "service", f"--time={PODMAN_IDLE_S}", url],
                     env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                     start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sock.exists() and _ping(url):
            return url
        time.sleep(0.2)
    raise HarnessFault(f"podman API service did not start; see {root / 'podman-service.log'}",
                       log=root / "podman-service.log")


@lru_cache(maxsize=1)
def _connect() -> tuple[str, object]:
    """(URL, docker SDK client): DOCKER_HOST, the default socket, or private podman."""
    url = settings.current().docker_host
    if url:
        found = _ping(url)
        if not found:
            raise HarnessFault(f"DOCKER_HOST={url} does not answer")
        return url, found
    default = "unix:///var/run/docker.sock"
    if Path("/var/run/docker.sock").exists():
        found = _ping(default)
        if found:
            return default, found
    url = _start_podman()
    return url, _ping(url)


def client():
    """A docker SDK client: DOCKER_HOST, the default socket, or private podman."""
    return _connect()[1]


def url() -> str:
    """The address of the engine client() talks to (for the container watcher)."""
    return _connect()[0]


@lru_cache(maxsize=1)
def is_podman() -> bool:
    try:
        return any("podman" in c.get("Name", "").lower()
                   for c in client().version().get("Components", []))
    except Exception:
        return False


def image_id(tag: str) -> str | None:
    """The engine's image id of TAG, remembered per tag (pvmatrix's tags are
    content tags, so the id is asked for once), or None when the engine cannot
    tell (gone, or the image pruned)."""
    import json
    memo = cache_dir("engine") / "image-ids.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if tag in known:
        return known[tag]
    try:
        found = client().images.get(tag).id
    except Exception:
        return None
    known[tag] = found
    memo.write_text(json.dumps(known, indent=1))
    return found
