"""One bisection step: build a kernel, run the one cell in question, and say
whether it is good, bad or cannot tell (skip).

A cell is named like a matrix cell: a role (``dom0``, ``domU-pv``,
``domU-pvh``, ``baremetal``), optionally as a full matrix cell id
(``KERNEL/ROLE/xen-X/PROFILE``, ``KERNEL/baremetal/PROFILE``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import PvmError
from ..paths import cache_dir

GOOD, BAD, SKIP = "good", "bad", "skip"


@dataclass(frozen=True)
class CellSpec:
    role: str
    xen: str = "4.17"
    hardware: str = "default"

    @classmethod
    def parse(cls, text: str, xen: str = "4.17", hardware: str = "default") -> "CellSpec":
        from ..boot import roles
        parts = text.split("/")
        role = next((p for p in parts if p in roles.all_roles()), None)
        if role is None:
            raise PvmError(f"cell {text!r}: names no role (one of {', '.join(roles.all_roles())}, "
                           "or a matrix cell id KERNEL/ROLE/xen-X/PROFILE)")
        rest = parts[parts.index(role) + 1:]
        for p in rest:
            if p.startswith("xen-"):
                xen = p.removeprefix("xen-")
            else:
                hardware = p
        return cls(role, xen, hardware)

    def __str__(self) -> str:
        return f"{self.role}" + (f"/xen-{self.xen}" if self.role != "baremetal" else "") + \
            f"/{self.hardware}"


@dataclass
class Step:
    """What one tried kernel gave: the cell's status and its evidence."""
    label: str                       # a commit, or a config's digest
    outcome: str                     # good / bad / skip
    status: str                      # the cell's own status (pass, fail, ...) or "build failed"
    reason: str
    evidence: list[str] = field(default_factory=list)
    artifact: str = ""
    built: bool = False              # False: the kernel came from the cache
    build_s: float = 0.0
    boot_s: float = 0.0
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def outcome_of(status: str) -> str:
    """A cell's status as a bisection answer: pass is good, a verdict against the
    kernel is bad, anything that tells nothing about the kernel is skip."""
    from ..matrix.cells import FAIL, PASS
    return GOOD if status == PASS else BAD if status == FAIL else SKIP


def _memo_path(key: str) -> Path:
    return cache_dir("bisect", "verdicts") / f"{key}.json"


def run_cell(built, cell: CellSpec, dom0: str | None = None) -> tuple[str, str, list[str], float]:
    """Boot BUILT (a build.Build) in CELL's role; DOM0 (a kernel as the boot
    harness loads it: an artifact dir, debian:PACKAGE) hosts a domU cell
    instead of the kernel itself. Returns (status, reason, evidence, seconds)."""
    from ..analyze.hardware import load_profile
    from ..boot import from_build, load_kernel, run_cells
    from ..matrix import outcomes
    from ..matrix.tasks import HARNESS_STATUS
    profile = load_profile(cell.hardware)
    names = [d.qemu for d in profile.devices if d.qemu]
    key = outcomes.digest("bisect-cell/1", built.key, dom0, str(cell),
                          profile.to_toml(), outcomes.code_digest("boot", "data/boot",
                                                                  "data/roles.toml"))
    if (memo := _memo_path(key)).exists():
        got = json.loads(memo.read_text())
        return got["status"], got["reason"], got["evidence"], 0.0
    built.fetch()                    # a remote artifact store: local files first
    kernel = from_build(built)
    if dom0 and cell.role.startswith("domU"):
        cells = run_cells(load_kernel(dom0), [cell.role], cell.xen, names, kernel, profile)
    else:
        cells = run_cells(kernel, [cell.role], cell.xen, names, None, profile)
    c = next(c for c in cells if c.role == cell.role)
    status = HARNESS_STATUS.get(c.verdict.status, "blocked" if "dom0" in c.verdict.reason
                                else "not run")
    evidence = [f"{e.text}" + (f" (serial.log:{e.line})" if e.line else "")
                for e in c.verdict.evidence[:4]]
    evidence.append(f"log: {c.boot.dir / 'serial.log'}")
    if status in ("pass", "fail"):
        memo.write_text(json.dumps({"status": status, "reason": c.verdict.reason,
                                    "evidence": evidence}))
    return status, c.verdict.reason, evidence, c.boot.wall_s


def try_kernel(label: str, make_build, cell: CellSpec, dom0: str | None = None) -> Step:
    """Build with MAKE_BUILD() (a build failure is a skip), then run CELL."""
    try:
        built = make_build()
    except PvmError as exc:
        return Step(label, SKIP, "build failed", str(exc), [str(exc)])
    status, reason, evidence, seconds = run_cell(built, cell, dom0)
    return Step(label, outcome_of(status), status, reason, evidence, built.key,
                not built.cached, built.build_s if not built.cached else 0.0, seconds)
