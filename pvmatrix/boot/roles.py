"""Roles as data (pvmatrix/data/roles.toml): what each matrix cell boots and
which markers prove it worked."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import PvmError
from ..paths import DATA


@dataclass(frozen=True)
class Role:
    name: str
    xen: bool
    where: str                    # "host" or a guest name
    expect: tuple[str, ...]       # marker patterns, all required
    deadline_s: float
    init: str | None = None       # init script under data/boot/ (host roles)
    needs: str | None = None      # role that must be ok first
    guest_type: str | None = None  # "pv" / "pvh" (guest roles)
    memory_mb: int = 0            # QEMU memory (host roles)
    dom0_mb: int = 0
    guest_mb: int = 0
    toolstack_errors: tuple[str, ...] = field(default=())

    @property
    def is_guest(self) -> bool:
        return self.where != "host"


@lru_cache(maxsize=1)
def _data() -> dict:
    return tomllib.loads((DATA / "roles.toml").read_text())


def all_roles() -> dict[str, Role]:
    out = {}
    for name, r in _data()["role"].items():
        out[name] = Role(name=name, xen=r["xen"], where=r["where"], expect=tuple(r["expect"]),
                         deadline_s=float(r["deadline_s"]), init=r.get("init"),
                         needs=r.get("needs"), guest_type=r.get("guest_type"),
                         memory_mb=r.get("memory_mb", 0), dom0_mb=r.get("dom0_mb", 0),
                         guest_mb=r.get("guest_mb", 0),
                         toolstack_errors=tuple(r.get("toolstack_errors", ())))
    return out


def get(name: str) -> Role:
    roles = all_roles()
    if name not in roles:
        raise PvmError(f"unknown role {name!r} (known: {', '.join(roles)})")
    return roles[name]


def xen_versions() -> dict[str, dict]:
    return dict(_data()["xen"])


def xen_args() -> str:
    return _data()["xen_args"]["args"]
