"""The "for my machine" view of a run (the page and the Markdown report): per
machine column of the spec (matrix.machines), the run's kernels ranked as
`pvmatrix which` ranks them (report/which.py): those that drive every storage
and network device and pass dom0 first, then the nearest misses; each with its
machine cell (the devices it lacks, linking to the cell's evidence) and its
Xen verdicts, every role per Xen release."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import which
from .grid import Grid, anchor
from ..results.records import machine_of


@dataclass
class Boot:
    """One boot cell of a kernel's row: a role under a Xen release (or none)."""
    role: str
    rec: dict
    text: str
    anchor: str

    @property
    def status(self) -> str:
        return self.rec["verdict"]["status"]


@dataclass
class Pick:
    """A kernel of the run for the machine, in `which` order."""
    rank: int
    fits: bool
    kernel: which.Kernel
    row: str
    cover: str                                   # "N/M devices covered (K apart)"
    lacks: list[which.Lack]
    cell: dict | None                            # the row's machine cell
    boots: dict[str, list[Boot]] = field(default_factory=dict)   # "Xen 4.17" -> roles

    @property
    def anchor(self) -> str:
        return anchor(self.cell) if self.cell else ""


@dataclass
class MachineView:
    name: str
    functions: int                               # PCI functions in its capture
    wanted: int                                  # storage and network, counted
    role: str                                    # the role the ranking asks for
    picks: list[Pick]


def machine_names(g: Grid) -> list[str]:
    """The run's machine columns, in the table's order."""
    return list(dict.fromkeys(m for r in g.records if (m := machine_of(r["cell"]))))


def views(g: Grid) -> list[MachineView]:
    """One view per machine column of the run (none when the spec names no machine)."""
    out = []
    for name in machine_names(g):
        a = which.in_run(g.meta.get("run_id", ""), g.meta, g.records, name)
        if a is not None:
            out.append(_view(g, name, a))
    return out


def _view(g: Grid, name: str, a: which.Answer) -> MachineView:
    picks = []
    for i, k in enumerate(a.fits + a.misses, 1):
        row = k.names[0]
        cover = k.cover.summary if k.cover else k.no_static
        picks.append(Pick(i, k.ok, k, row, cover, which.lacking(k), g.get(row, name),
                          _boots(g, row)))
    return MachineView(name, len(a.machine.devices), len(which.wanted(a.machine)), a.role, picks)


def _boots(g: Grid, row: str) -> dict[str, list[Boot]]:
    """ROW's boot cells, by Xen release (those without Xen as "no Xen")."""
    out: dict[str, list[Boot]] = {}
    for col in g.columns:
        rec = g.get(row, col)
        if rec is None or rec["cell"]["stage"] != "boot":
            continue
        c = rec["cell"]
        group = f"Xen {c['xen']}" if c.get("xen") else "no Xen"
        out.setdefault(group, []).append(Boot(c.get("role") or col, rec, g.text(rec), anchor(rec)))
    return out
