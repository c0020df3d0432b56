"""Run one script in a toolchain container: no network, no privileges.

The kernel source is untrusted code: it is mounted read-only, the output
directory is the only writable host path besides the ccache volume.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import engine

SRC, OUT, CCACHE = "/src", "/out", "/ccache"
LABEL = "org.pvmatrix.out"   # every container pvmatrix starts carries its output dir
# Appended to a script: the CPU time of everything it ran. `times` must run in
# the script's own shell (a pipe or $(...) would fork and report zeros).
CPU_REPORT = 'times > /tmp/.times; echo "@@pvmatrix-cpu $(tail -n 1 /tmp/.times)"\n'
_live: dict[str, object] = {}        # containers run() waits on, by id
_lock = threading.Lock()



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
        progress: Progress | None = None, network: bool = False) -> int:
    """Run SCRIPT with bash in IMAGE; stream its output to LOG; return the exit code."""
    client = engine.client()
    container = client.containers.run(
        image, ["bash", "-c", script], detach=True, working_dir=OUT,
        volumes=mounts.volumes(), environment=env,
        network_mode="host" if network else "none",
        cap_drop=["ALL"], security_opt=["no-new-privileges"],
        ulimits=engine.ulimits(), tmpfs={"/tmp": "exec"}, labels={LABEL: str(mounts.out)})
    with _lock:
        _live[container.id] = container
    try:
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


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except Exception:
        pass


@atexit.register
def remove_all() -> None:
    """Remove every container run() still waits on (Ctrl-C of a run whose tasks are
    in threads of this process: each run() then sees its container gone)."""
    with _lock:
        live = list(_live.values())
    for container in live:
        _remove(container)
