"""Which process owns a container: host, boot, pid and the pid's start time.

Every container pvmatrix starts carries its owner's token in a label, so that
a container whose pvmatrix died (kill -9, OOM) is recognized as an orphan:
by the owner's watcher (watch.py) at once, else by the next pvmatrix that
starts a container. A pid alone could have been reused; with its start time
(clock ticks since boot, /proc/PID/stat field 22) and the boot id it cannot.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LABEL = "org.pvmatrix.owner"


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    start: int

    @property
    def token(self) -> str:
        return f"{self.host}/{self.boot}/{self.pid}/{self.start}"

    @classmethod
    def parse(cls, token: str) -> Owner | None:
        parts = token.split("/")
        if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), int(parts[3]))

    def alive(self) -> bool | None:
        """Whether this owner still runs; None when it runs on another host
        (a shared engine: only that host can tell)."""
        here = me()
        if self.host != here.host:
            return None
        return self.boot == here.boot and start_time(self.pid) == self.start


def start_time(pid: int) -> int | None:
    """When PID started (clock ticks since boot), or None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return int(stat.rpartition(")")[2].split()[19])


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


@lru_cache(maxsize=None)
def _me(pid: int) -> Owner:
    return Owner(socket.gethostname().replace("/", "_"), _boot_id(), pid, start_time(pid) or 0)


def me() -> Owner:
    """This process (a forked child is its own owner)."""
    return _me(os.getpid())


def orphaned(labels: dict[str, str]) -> bool:
    """Whether a container with LABELS has an owner token whose process is gone.
    A container without a token (an older pvmatrix) or of another host is never
    taken for an orphan here."""
    owner = Owner.parse(labels.get(LABEL, ""))
    return owner is not None and owner.alive() is False
