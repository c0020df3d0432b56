"""The pipeline's shared vocabulary: one Status, one Verdict and one Evidence,
made by every stage (source, build, analyze, boot) and read by the matrix,
bisect, results and reports; and BootFacts, what a boot measured, which the
cell record carries (so it lives here, where results/ may import it, like
Verdict; boot/facts.py makes it). It imports nothing of pvmatrix, so any
package may import it.

Statuses (issue 7's taxonomy):
  pass     the kernel did what the cell asks, with evidence
  fail     the kernel or its config is at fault, with evidence
  broken   the harness or infrastructure failed (never blamed on the kernel)
  blocked  a cell it depends on did not pass (the reason names it)
  skip     not applicable (e.g. PVH on a kernel without the option), with why
  not run  the tool cannot run this cell yet (the reason says why); never a pass
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum


class Status(StrEnum):
    """What a cell ended in; a str, so records and comparisons see "pass" etc."""
    PASS = "pass"
    FAIL = "fail"
    BROKEN = "broken"
    BLOCKED = "blocked"
    SKIP = "skip"
    NOT_RUN = "not run"


# Short names for the members, for the many places that compare statuses.
PASS, FAIL, BROKEN, BLOCKED, SKIP, NOT_RUN = (Status.PASS, Status.FAIL, Status.BROKEN,
                                              Status.BLOCKED, Status.SKIP, Status.NOT_RUN)
STATUSES = tuple(Status)


@dataclass
class Evidence:
    """One line that shows why: from a log (LOG, LINE number) or a fact (LINE 0)."""
    text: str
    note: str = ""
    line: int = 0
    log: str = ""

    def to_dict(self) -> dict:
        return {"text": self.text, "note": self.note, "line": self.line, "log": self.log}

    @classmethod
    def from_dict(cls, data: dict) -> Evidence:
        return cls(data["text"], data.get("note", ""), data.get("line", 0), data.get("log", ""))


@dataclass
class Verdict:
    """A cell's status, why (REASON), the stage's own word (DETAIL, e.g. "panic",
    "oops", "timeout", "module", "cached") and the EVIDENCE. SECONDS: the
    role's own time, for a boot (kept out of the record: it has durations)."""
    status: Status
    reason: str = ""
    detail: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    seconds: float | None = None

    def __post_init__(self) -> None:
        self.status = Status(self.status)       # an unknown status fails here, not in a report

    @property
    def ok(self) -> bool:
        return self.status == Status.PASS

    def to_dict(self) -> dict:
        out = {"status": str(self.status), "reason": self.reason, "detail": self.detail,
               "evidence": [e.to_dict() for e in self.evidence]}
        if self.seconds is not None:
            out["seconds"] = self.seconds
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        return cls(data["status"], data.get("reason", ""), data.get("detail", ""),
                   [Evidence.from_dict(e) for e in data.get("evidence", [])],
                   data.get("seconds"))


COVERED = ("built-in", "module")     # the analyzer's statuses that say a driver is there


@dataclass(frozen=True)
class DeviceCheck:
    """One emulated device seen both ways, side by side: the analyzer's static
    coverage and what a host boot (dom0, bare metal) bound and probed.
    DISAGREE flags static "covered" with no driver bound, or the other way round."""
    device: str                 # the QEMU device (a profile's column)
    static: str                 # built-in | module | missing | unknown
    static_driver: str | None   # the module or built-in driver the analyzer named
    bound: str | None           # the driver bound at boot (None: none)
    booted: bool                # the boot probes passed (bound, disk read, link, frame)
    reason: str                 # what the probes saw, e.g. "e1000e bound, eth0 link up, ..."
    role: str                   # the boot it comes from
    line: int | None = None     # the probe=pci line in that boot's serial log
    disagree: bool = False

    @classmethod
    def of(cls, device: str, static: str, static_driver: str | None, bound: str | None,
           booted: bool, reason: str, role: str, line: int | None = None) -> DeviceCheck:
        return cls(device, static, static_driver, bound, booted, reason, role, line,
                   (static in COVERED) != (bound is not None))

    @property
    def text(self) -> str:
        """Both pieces of evidence in one line."""
        static = f"{self.static} ({self.static_driver})" if self.static_driver else self.static
        return (f"{self.device}: static {static}; {self.role} boot: {self.reason}"
                + (" [static and booted disagree]" if self.disagree else ""))


@dataclass(frozen=True)
class BootFacts:
    """What a boot measured for one cell (the `boot` of its outcome and record):
    QEMU's accelerator and peak memory, the devices the kernel saw (host roles:
    device -> driver, PCI, block...), the kernel's label, what stopped QEMU,
    and the boot's provenance (QEMU, Xen, dom0 userspace). DOM0: the matrix
    kernel that hosted a Xen boot. None: absent (older records), left out of
    the JSON, so a record is written back as it was read."""
    accel: str
    peak_rss_mb: float
    devices: dict[str, dict]
    kernel: str
    stopped_by: str | None = None
    timed_out: bool | None = None
    provenance: dict | None = None
    dom0: str | None = None
    checks: tuple[DeviceCheck, ...] | None = None   # host boots: each device, static vs booted

    def to_dict(self) -> dict:
        """The JSON: every field, but an optional one only when it is set."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if getattr(self, f.name) is not None or f.default is not None}
        if self.checks is not None:
            out["checks"] = [asdict(c) for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> BootFacts:
        """The facts from their JSON; an unknown or missing key is a TypeError."""
        checks = data.get("checks")
        return cls(**{**data, **({"checks": tuple(DeviceCheck(**c) for c in checks)}
                                 if checks is not None else {})})
