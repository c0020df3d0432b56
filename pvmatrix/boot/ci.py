"""What `pvmatrix boot` tells a CI job: one result per requested role (pass,
fail, broken, not run, with the reason), printed as plain lines when stdout is
not a terminal, a final one-line summary per role, and the exit code from the
one table (exitcodes.py). A role the Xen release cannot run (data/xen.toml
`not_run`) is `not run` without a boot; a boot stopped by an error gives its
roles that error's status, and the other boots still run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .. import catalog, exitcodes
from ..errors import PvmError
from ..records import PASS, Verdict
from .verdicts import release_cannot

REASON_MAX = 200


@dataclass(frozen=True)
class RoleResult:
    """One requested role's outcome: the harness's cell, or why there is none."""
    role: str
    xen: str | None
    kernel: str
    verdict: Verdict
    seconds: float | None = None
    boot_s: float | None = None
    serial: str = ""                 # the boot's serial log, when it booted

    @classmethod
    def of(cls, cell) -> RoleResult:
        """From a harness Cell."""
        return cls(cell.role, cell.xen, cell.kernel, cell.verdict, cell.seconds,
                   cell.boot.wall_s, str(cell.boot.serial))

    @classmethod
    def from_dict(cls, data: dict) -> RoleResult:
        """From a boot's recorded cells.json entry (harness Cell.to_dict())."""
        boot = data.get("boot") or {}
        serial = f"{boot['dir']}/serial.log" if boot.get("dir") else ""
        return cls(data["role"], data.get("xen"), data["kernel"],
                   Verdict.from_dict(data["verdict"]), data.get("seconds"), boot.get("wall_s"),
                   serial)


def split(roles: list[str], xen: str | None) -> tuple[list[str], list[str]]:
    """ROLES as (to boot, the release cannot run): a role xen.toml says release
    XEN cannot run is not booted (a Xen binary given by path: every role boots)."""
    release = catalog.all("xen").get(xen or "")
    cannot = [r for r in roles if release and catalog.get("role", r).xen
              and catalog.not_run(release, r)]
    return [r for r in roles if r not in cannot], cannot


def not_run(roles: list[str], xen: str, kernel: str) -> list[RoleResult]:
    """ROLES that Xen release XEN cannot run here, each `not run` with xen.toml's why."""
    release = catalog.get("xen", xen)
    return [RoleResult(r, xen, kernel, release_cannot(xen, catalog.not_run(release, r)))
            for r in roles]


def stopped(roles: list[str], xen: str | None, kernel: str, exc: PvmError) -> list[RoleResult]:
    """ROLES of a boot that EXC stopped: its status (broken for the harness's
    fault, fail for the kernel's, not run), its message as the reason."""
    v = Verdict(exc.status, " ".join(str(exc).splitlines()), type(exc).__name__)
    return [RoleResult(r, xen if catalog.get("role", r).xen else None, kernel, v) for r in roles]


def _where(r: RoleResult) -> str:
    return f"{r.role} xen-{r.xen}" if r.xen else r.role


def summary_line(r: RoleResult) -> str:
    """ROLE [xen-X]: STATUS [(detail)]: REASON, on one line."""
    v = r.verdict
    detail = f" ({v.detail})" if v.status != PASS and v.detail else ""
    took = f" [{r.seconds:.1f} s]" if v.status == PASS and r.seconds is not None else ""
    reason = " ".join(v.reason.split())
    reason = reason if len(reason) <= REASON_MAX else reason[:REASON_MAX - 3] + "..."
    return f"{_where(r)}: {v.status}{detail}: {reason}{took}"


def plain_lines(results: Iterable[RoleResult]) -> list[str]:
    """The detail, for a log rather than a terminal: per role its kernel and
    times, and for one that did not pass its evidence and serial log."""
    out = []
    for r in results:
        times = ", ".join(f"{name} {s:.1f} s" for name, s in (("role", r.seconds),
                                                                ("boot", r.boot_s)) if s is not None)
        out.append(f"{_where(r)}: {r.verdict.status}, kernel {r.kernel}" + (f", {times}" if times else ""))
        if r.verdict.status != PASS:
            for e in r.verdict.evidence[:8]:
                out.append(f"  {'L' + str(e.line) if e.line else '--':>6} {e.text[:160]}")
            if r.serial:
                out.append(f"  serial log: {r.serial}")
    return out


def summary(results: list[RoleResult], strict: bool) -> list[str]:
    """The final lines: one per role, then the exit code and what it means."""
    code = exit_code(results, strict)
    meaning = next(c.name for c in exitcodes.TABLE if c.code == code)
    counts = {s: sum(r.verdict.status == s for r in results)
              for s in ("pass", "fail", "broken", "not run", "blocked", "skip")}
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return [summary_line(r) for r in results] + \
        [f"pvmatrix boot: {len(results)} role(s): {shown}; exit {code} ({meaning})"]


def exit_code(results: Iterable[RoleResult], strict: bool) -> int:
    """The exit code (exitcodes.for_cells): 1 when a role failed; with STRICT
    3 when one is broken, 4 when one is not run."""
    return exitcodes.for_cells((r.verdict.status for r in results), strict)
