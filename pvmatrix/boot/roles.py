"""Roles as data (pvmatrix/data/roles.toml, read by the catalog): what each
matrix cell boots and which markers prove it worked."""

from __future__ import annotations

from .. import catalog
from ..catalog import Role

__all__ = ["Role", "all_roles", "get", "host", "guests"]


def all_roles() -> dict[str, Role]:
    return catalog.all("role")


def get(name: str) -> Role:
    return catalog.get("role", name)


def host(xen: bool) -> Role:
    """The role whose kernel QEMU boots directly: under Xen (dom0) or not (bare metal)."""
    return catalog.host_role(xen)


def guests() -> list[Role]:
    return [r for r in all_roles().values() if r.is_guest]
