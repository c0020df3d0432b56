"""What a boot hands on for each cell it judged: BootFacts (the `boot` of a
task's outcome and of the cell record). The class is in pvmatrix/records.py,
because the cell record (results/) carries it and results/ imports no stage;
the boot stage makes it here, from a harness Cell."""

from __future__ import annotations

from ..records import BootFacts
from .harness import Cell

__all__ = ["BootFacts", "of"]


def of(cell: Cell, dom0: str | None = None) -> BootFacts:
    """CELL's boot facts; DOM0 names the kernel that hosted a Xen boot (the
    matrix's name for it: the harness knows only kernel labels)."""
    b = cell.boot
    return BootFacts(accel=b.accel, peak_rss_mb=b.peak_rss_mb, devices=cell.devices,
                     kernel=cell.kernel, stopped_by=b.stopped_by, timed_out=b.timed_out,
                     provenance=b.provenance, dom0=dom0)
