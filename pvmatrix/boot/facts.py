"""What a boot hands on for each cell it judged: BootFacts (the `boot` of a
task's outcome and of the cell record). The class is in pvmatrix/records.py,
because the cell record (results/) carries it and results/ imports no stage;
the boot stage makes it here, from a harness Cell."""

from __future__ import annotations

from ..analyze.facts import DeviceFact
from ..records import BootFacts, DeviceCheck
from .harness import Cell

__all__ = ["BootFacts", "checks", "of"]


def of(cell: Cell, dom0: str | None = None,
       static: dict[str, DeviceFact] | None = None) -> BootFacts:
    """CELL's boot facts; DOM0 names the kernel that hosted a Xen boot (the
    matrix's name for it: the harness knows only kernel labels). STATIC: the
    analyzer's coverage by device, set beside what a host boot bound."""
    b = cell.boot
    return BootFacts(accel=b.accel, peak_rss_mb=b.peak_rss_mb, devices=cell.devices,
                     kernel=cell.kernel, stopped_by=b.stopped_by, timed_out=b.timed_out,
                     provenance=b.provenance, dom0=dom0,
                     checks=checks(cell, static) if cell.devices and static is not None else None)


def checks(cell: Cell, static: dict[str, DeviceFact]) -> tuple[DeviceCheck, ...]:
    """Each device CELL's boot probed, with the analyzer's answer for it (STATIC,
    by QEMU name; "unknown" when the analysis has none)."""
    out = []
    for name, hw in cell.devices.items():
        s = static.get(name)
        out.append(DeviceCheck.of(name, s.status if s else "unknown", s.driver if s else None,
                                  hw.get("driver"), bool(hw.get("ok")),
                                  hw.get("reason") or ("bound" if hw.get("driver") else
                                                       "no driver bound"),
                                  cell.role, hw.get("evidence")))
    return tuple(out)
