"""Hardware profiles: named PCI devices, stored as TOML under
pvmatrix/data/hardware/ (or any TOML file with the same layout).

    name = "default"
    description = "..."
    [[device]]
    name = "Intel 82574L Gigabit Network Connection"
    vendor = 0x8086        # required
    device = 0x10d3        # required
    subvendor = 0x8086     # optional: unknown matches only aliases that do not constrain it
    subdevice = 0x0000
    class = 0x02           # base class, subclass and prog-if; required: class, subclass
    subclass = 0x00
    prog_if = 0x00
    qemu = "e1000e"        # optional: the QEMU device that emulates it (data/devices.toml;
                           # its ids fill the keys the entry leaves out; unknown: an error)

The records and the loader live in pvmatrix.catalog (kind "hardware").
"""

from __future__ import annotations

from pathlib import Path

from .. import catalog
from ..catalog import UNKNOWN, HardwareProfile, PciDevice

__all__ = ["UNKNOWN", "HardwareProfile", "PciDevice", "load_profile", "profile_names"]


def profile_names() -> list[str]:
    """The names of the shipped profiles."""
    return catalog.names("hardware")


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A shipped profile by name, or a profile TOML file by path."""
    return catalog.profile(name_or_path)
