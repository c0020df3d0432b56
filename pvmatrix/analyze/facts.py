"""What an analyze task hands on (the `manifest` of its outcome): the kernel's
release, what it can do under Xen and which of the profile's devices it
drives. to_dict() is the JSON the outcome cache holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import Analysis

EVIDENCE_KEPT = 3         # a capability's first lines of evidence: the outcome stays small


@dataclass(frozen=True)
class CapabilityFact:
    supported: bool | None        # None: the inputs cannot tell
    form: str | None = None       # built-in | module, for drivers
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"supported": self.supported, "form": self.form, "evidence": self.evidence}


@dataclass(frozen=True)
class DeviceFact:
    status: str                   # built-in | module | missing
    driver: str | None = None

    def to_dict(self) -> dict:
        return {"status": self.status, "driver": self.driver}


@dataclass(frozen=True)
class AnalysisFacts:
    release: str
    capabilities: dict[str, CapabilityFact] = field(default_factory=dict)
    devices: dict[str, DeviceFact] = field(default_factory=dict)   # by QEMU name, else name

    @classmethod
    def of(cls, a: Analysis) -> AnalysisFacts:
        return cls(a.release,
                   {c.name: CapabilityFact(c.supported, c.form, c.evidence[:EVIDENCE_KEPT])
                    for c in a.capabilities},
                   {d.device.qemu or d.device.name: DeviceFact(d.status, d.driver)
                    for d in a.devices})

    def to_dict(self) -> dict:
        return {"release": self.release,
                "capabilities": {k: c.to_dict() for k, c in self.capabilities.items()},
                "devices": {k: d.to_dict() for k, d in self.devices.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> AnalysisFacts:
        return cls(data["release"],
                   {k: CapabilityFact(**c) for k, c in data.get("capabilities", {}).items()},
                   {k: DeviceFact(**d) for k, d in data.get("devices", {}).items()})
