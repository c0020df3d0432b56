"""The container watcher: a small process that outlives a killed pvmatrix just
long enough to remove its containers.

pvmatrix starts one watcher (start()) before its first container, handing it
the read end of a pipe whose write end only pvmatrix holds. When pvmatrix dies
in any way (kill -9 included) the pipe closes; the watcher then removes every
container labelled with pvmatrix's owner token, and exits. It also checks the
owner's pid and start time every few seconds, in case a forked child kept the
pipe open. The watcher runs in its own session: a Ctrl-C or a SIGTERM sent to
pvmatrix's process group does not reach it.

    python -m pvmatrix.build.watch FD URL OWNER-TOKEN
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time

from .. import settings
from ..paths import PACKAGE
from .owner import LABEL, Owner

POLL_S = 2.0
AGAIN_S = 2.0          # a second sweep: a create request in flight when the owner died
_started: dict[tuple[str, str], int] = {}   # (engine URL, owner token) -> the pipe's write end
_lock = threading.Lock()


def start(url: str, owner: Owner) -> None:
    """Start the watcher of OWNER's containers on the engine at URL (once per
    process and engine: a forked child is an owner of its own)."""
    with _lock:
        if (url, owner.token) in _started:
            return
        read, write = os.pipe()            # both non-inheritable: only the watcher gets READ
        package_root = str(PACKAGE.parent)
        env = settings.current().child_env()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        subprocess.Popen([sys.executable, "-m", "pvmatrix.build.watch", str(read), url, owner.token],
                         pass_fds=(read,), env=env, start_new_session=True, cwd="/",
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        os.close(read)
        _started[(url, owner.token)] = write


def wait_for_death(fd: int, owner: Owner, poll_s: float = POLL_S) -> None:
    """Return when FD reads EOF (its writer is gone) or OWNER is no longer alive."""
    while True:
        ready, _, _ = select.select([fd], [], [], poll_s)
        if ready and not os.read(fd, 4096):
            return
        if owner.alive() is False:
            return


def sweep(client, token: str) -> int:
    """Remove every container labelled with TOKEN; how many there were."""
    found = client.containers.list(all=True, filters={"label": f"{LABEL}={token}"})
    for c in found:
        try:
            c.remove(force=True)
        except Exception:
            pass
    return len(found)


def main(argv: list[str]) -> int:
    fd, url, token = int(argv[0]), argv[1], argv[2]
    owner = Owner.parse(token)
    if owner is None:
        return 2
    wait_for_death(fd, owner)
    import docker
    client = docker.DockerClient(base_url=url, timeout=120)
    sweep(client, token)
    time.sleep(AGAIN_S)
    sweep(client, token)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
