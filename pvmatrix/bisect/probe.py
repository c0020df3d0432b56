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

from .. import catalog
from ..errors import EndsAlike, HarnessFault, KernelFault, NotSupported, UserError
from ..paths import cache_dir
from ..records import FAIL, PASS
from ..boot import from_build, load_kernel, run_cells
from ..analyze.hardware import load_profile
from ..matrix import outcomes
from ..matrix.tasks import harness_digest

GOOD, BAD, SKIP = "good", "bad", "skip"


@dataclass(frozen=True)
class CellSpec:
    role: str
    xen: str = field(default_factory=lambda: catalog.default("xen").name)
    hardware: str = "default"

    @classmethod
    def parse(cls, text: str, xen: str | None = None, hardware: str = "default") -> "CellSpec":
        parts = text.split("/")
        known = catalog.names("role")
        role = next((p for p in parts if p in known), None)
        if role is None:
            raise UserError(f"cell {text!r}: names no role (one of {', '.join(known)}, "
                            "or a matrix cell id KERNEL/ROLE/xen-X/PROFILE)")
        xen = xen or catalog.default("xen").name
        rest = parts[parts.index(role) + 1:]
        for p in rest:
            if p.startswith("xen-"):
                xen = p.removeprefix("xen-")
            else:
                hardware = p
        return cls(role, xen, hardware)

    def __str__(self) -> str:
        xen = f"/xen-{self.xen}" if catalog.get("role", self.role).xen else ""
        return f"{self.role}{xen}/{self.hardware}"


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
    boot_cached: bool = False        # the cell's answer came from an earlier boot

    def to_dict(self) -> dict:
        return asdict(self)


def outcome_of(status: str) -> str:
    """A cell's status as a bisection answer: pass is good, a verdict against the
    kernel is bad, anything that tells nothing about the kernel is skip."""
    return GOOD if status == PASS else BAD if status == FAIL else SKIP


def _memo_path(key: str) -> Path:
    return cache_dir("bisect", "verdicts") / f"{key}.json"


@dataclass
class CellRun:
    """What booting one kernel in the cell gave."""
    status: str
    reason: str
    evidence: list[str]
    seconds: float = 0.0
    cached: bool = False             # remembered from an earlier boot: none now


def _boot(kernel, cell: CellSpec, dom0: str | None, profile) -> CellRun:
    names = profile.qemu_devices
    if dom0 and catalog.get("role", cell.role).is_guest:
        cells = run_cells(load_kernel(dom0), [cell.role], cell.xen, names, kernel, profile)
    else:
        cells = run_cells(kernel, [cell.role], cell.xen, names, None, profile)
    c = next(c for c in cells if c.role == cell.role)
    evidence = [f"{e.text}" + (f" (serial.log:{e.line})" if e.line else "")
                for e in c.verdict.evidence[:4]]
    evidence.append(f"log: {c.boot.dir / 'serial.log'}")
    return CellRun(c.verdict.status.value, c.verdict.reason, evidence, c.boot.wall_s)


def _built_kernel(built):
    built.fetch()                    # a remote artifact store: local files first
    return from_build(built)


def run_cell(built, cell: CellSpec, dom0: str | None = None) -> CellRun:
    """Boot BUILT (a build.Build) in CELL's role (see run_kernel)."""
    return run_kernel(built.key, lambda: _built_kernel(built), cell, dom0)


def run_kernel(key: str, kernel_of, cell: CellSpec, dom0: str | None = None) -> CellRun:
    """Boot the kernel KERNEL_OF() gives (content id KEY) in CELL's role; DOM0 (a
    kernel as the boot harness loads it: an artifact dir, debian:PACKAGE) hosts
    a domU cell instead of the kernel itself. A fail is booted once more before
    it is believed (boots under TCG flake now and then): fail then pass is
    "flaky", which bisection skips. Pass and confirmed fail are remembered, by
    KEY, for every later bisection."""
    profile = load_profile(cell.hardware)
    key = outcomes.digest("bisect-cell/2", key, dom0, str(cell),
                          profile.to_toml(), harness_digest())
    if (memo := _memo_path(key)).exists():
        return CellRun(**{**json.loads(memo.read_text()), "seconds": 0.0, "cached": True})
    kernel = kernel_of()
    got = _boot(kernel, cell, dom0, profile)
    if got.status == "fail":
        again = _boot(kernel, cell, dom0, profile)
        got.seconds += again.seconds
        if again.status != "fail":
            return CellRun("flaky", f"{got.reason}; then {again.status} on a second boot (flaky)",
                           got.evidence + again.evidence, got.seconds)
    if got.status in ("pass", "fail"):
        memo.write_text(json.dumps({"status": got.status, "reason": got.reason,
                                    "evidence": got.evidence}))
    return got


def check_cell(cell: CellSpec) -> None:
    """A clear error for an unknown Xen version or hardware profile, before any build."""
    if catalog.get("role", cell.role).xen:
        catalog.get("xen", cell.xen)
    load_profile(cell.hardware)


def try_kernel(label: str, make_build, cell: CellSpec, dom0: str | None = None) -> Step:
    """Build with MAKE_BUILD() (a build failure is a skip), then run CELL. A harness
    fault or bad input stops the bisection: it tells nothing about the kernel."""
    try:
        built = make_build()
    except (KernelFault, NotSupported) as exc:
        return Step(label, SKIP, "build failed", str(exc), [str(exc)])
    return probe(label, built, cell, dom0)


def probe(label: str, built, cell: CellSpec, dom0: str | None = None) -> Step:
    """Run CELL on an already built kernel."""
    got = run_cell(built, cell, dom0)
    return Step(label, outcome_of(got.status), got.status, got.reason, got.evidence, built.key,
                not built.cached, built.build_s if not built.cached else 0.0, got.seconds,
                boot_cached=got.cached)


def probe_package(label: str, spec: str, cell: CellSpec, dom0: str | None = None) -> Step:
    """Run CELL on a prebuilt kernel package (debian:PACKAGE@SUITE): nothing is
    built; its boots are remembered by the package's content, as a build's are."""
    kernel = load_kernel(spec)
    got = run_kernel(kernel.identity or spec, lambda: kernel, cell, dom0)
    return Step(label, outcome_of(got.status), got.status, got.reason, got.evidence,
                kernel.identity, boot_s=got.seconds, note=spec, boot_cached=got.cached)


def check_end(step: Step, want: str, what: str, cell: CellSpec) -> None:
    """A bisection's end must answer as given (the good end good, the bad end bad)."""
    if step.outcome != want:
        fault = (HarnessFault if step.status == "broken"
                 else EndsAlike if (want, step.outcome) == (BAD, GOOD) else UserError)
        raise fault(f"the {want} {what} is not {want}: cell {cell} is {step.status} "
                    f"({step.reason[:200]})")


def to_dict(result) -> dict:
    """A bisection result (with endpoints and steps) as plain data."""
    d = dict(result.__dict__)
    d["endpoints"] = [s.to_dict() for s in result.endpoints]
    d["steps"] = [s.to_dict() for s in result.steps]
    return d
