"""Real machines, for the matrix's machine columns and `pvmatrix which`: a
machine is a shipped capture (pvmatrix/data/machines/NAME.lspci-vvnn.txt), a
shipped hardware profile (pvmatrix/data/hardware), or an lspci dump / sysfs
copy the user names (in a spec: inside the spec's folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import catalog
from ..errors import UnknownName, UserError
from ..paths import DATA, confined
from ..records import Evidence, FAIL, PASS, Verdict
from .coverage import DeviceCoverage, MachineCoverage
from .hardware import HardwareProfile, PciDevice
from .hwimport import import_profile

MACHINES = DATA / "machines"
SUFFIX = ".lspci-vvnn.txt"


def names() -> list[str]:
    """The shipped machines: the captures, then the hardware profiles."""
    return sorted(p.name.removesuffix(SUFFIX) for p in MACHINES.glob(f"*{SUFFIX}")) + \
        catalog.names("hardware")


def label(ref: str) -> str:
    """The column a machine gets: its name, or its file's name up to the first dot."""
    return Path(ref).name.split(".")[0] or ref


def load(ref: str, roots: Sequence[Path] | None = None) -> HardwareProfile:
    """The machine REF: a shipped name, else a dump at that path (inside ROOTS,
    a spec's folder, if given; relative to it first)."""
    shipped = MACHINES / f"{ref}{SUFFIX}"
    if "/" not in ref and shipped.is_file():
        return import_profile(shipped, ref)
    if ref in catalog.names("hardware"):
        return catalog.get("hardware", ref)
    # a spec's relative path: from its folder, else from here
    path = next((p for p in [*(Path(r) / ref for r in roots or ()), Path(ref)] if p.exists()),
                Path(ref))
    if not path.exists():
        raise UnknownName("machine", ref, names(), "or give an lspci -nn/-vvnn/-nnvmm dump or a /sys/bus/pci copy")
    confined(path, roots, "machine", ref)
    return import_profile(path, label(ref))


def to_args(profile: HardwareProfile) -> dict:
    """PROFILE as plain data for a task (its worker needs no file)."""
    return profile.as_dict()


def from_args(data: dict) -> HardwareProfile:
    return HardwareProfile(data["name"], data.get("description", ""),
                           tuple(PciDevice(**d) for d in data["devices"]))


def device_line(d: DeviceCoverage) -> str:
    """One device as lspci names it: slot, name, class and ids."""
    dev = d.device
    return f"{dev.slot + ' ' if dev.slot else ''}{dev.name} [{dev.pci_class_code}] [{dev.ids}]"


def verdict(m: MachineCoverage) -> Verdict:
    """A machine column's cell: "N/M devices covered", the missing ones named
    (pass when none is missing); evidence: each missing device and why, each
    covered one's driver, and those listed apart."""
    missing = m.missing
    reason = m.summary + ("; missing: " + ", ".join(device_line(d) for d in missing)
                          if missing else "")
    ev = [Evidence(f"{device_line(d)}: {'; '.join(d.evidence[:2])}", "missing") for d in missing]
    ev += [Evidence(f"{device_line(d)}: {d.driver} ({d.status})", "covered")
           for d in m.counted if d.covered]
    ev += [Evidence(f"{device_line(d)}: {d.apart}", "apart") for d in m.apart]
    return Verdict(FAIL if missing else PASS, reason, m.summary, ev)
