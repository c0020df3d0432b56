"""Which driver, if any, covers each device of a hardware profile: module
aliases (fnmatch, as depmod/modprobe match them) and built-in drivers (config
symbol plus the shipped table of their PCI id patterns)."""

from __future__ import annotations

from dataclasses import dataclass, field
import re
from fnmatch import fnmatchcase

from .. import catalog
from .builtins import builtin_drivers
from .hardware import HardwareProfile, PciDevice
from .kconfig import KernelConfig
from .modinfo import ModInfo
from .modules import ModuleScan

BUILT_IN, MODULE, MISSING = "built-in", "module", "missing"
_HEX8 = re.compile(r"[0-9A-F]{8}")


@dataclass
class DriverMatch:
    driver: str
    form: str          # built-in | module
    pattern: str       # the alias pattern that matched
    evidence: str


@dataclass
class DeviceCoverage:
    """The verdict for one device."""
    device: PciDevice
    status: str                       # built-in | module | missing
    driver: str | None = None         # the most specific match of the winning form
    module_path: str | None = None    # relative to the modules root, for a module
    evidence: list[str] = field(default_factory=list)
    matches: list[DriverMatch] = field(default_factory=list)
    apart: str | None = None          # why no coverage question applies (a driverless class)

    @property
    def covered(self) -> bool:
        return self.status in (BUILT_IN, MODULE)


@dataclass(frozen=True)
class MachineCoverage:
    """A machine's devices under one kernel: those that count, and those apart."""
    counted: list[DeviceCoverage]
    apart: list[DeviceCoverage]

    @property
    def missing(self) -> list[DeviceCoverage]:
        return [d for d in self.counted if not d.covered]

    @property
    def summary(self) -> str:
        """"N/M devices covered" (and how many are listed apart)."""
        n, m = len(self.counted) - len(self.missing), len(self.counted)
        return f"{n}/{m} devices covered" + (f" ({len(self.apart)} apart)" if self.apart else "")


def driverless(device: PciDevice) -> str | None:
    """Why DEVICE poses no driver-coverage question, or None (data/driverless-classes.toml)."""
    found = catalog.all("driverless").get(device.pci_class_code)
    return f"{found.name} ({found.code}): {found.why}" if found else None


def machine(coverages: list[DeviceCoverage]) -> MachineCoverage:
    return MachineCoverage([c for c in coverages if not c.apart], [c for c in coverages if c.apart])


def cover(profile: HardwareProfile, config: KernelConfig | None,
          scan: ModuleScan | None) -> list[DeviceCoverage]:
    """Match every device of PROFILE against the kernel's drivers."""
    return [cover_device(d, config, scan) for d in profile.devices]


def cover_device(device: PciDevice, config: KernelConfig | None,
                 scan: ModuleScan | None) -> DeviceCoverage:
    alias = device.modalias
    matches = _module_matches(alias, scan) + _builtin_matches(alias, config, scan)
    for form in (BUILT_IN, MODULE):
        chosen = [m for m in matches if m.form == form]
        if chosen:
            best = max(chosen, key=lambda m: _specificity(m.pattern))
            path = None
            if form == MODULE and scan:
                path = next((m.path for m in scan.modules if m.name == best.driver), None)
            return DeviceCoverage(device, form, best.driver, path,
                                  [m.evidence for m in chosen], matches, driverless(device))
    why = [f"no module alias or built-in driver matches {alias}"]
    if scan is None:
        why.append("no modules tree to check")
    return DeviceCoverage(device, MISSING, evidence=why, apart=driverless(device))


def _module_matches(alias: str, scan: ModuleScan | None) -> list[DriverMatch]:
    if scan is None:
        return []
    index = _alias_index(scan)
    candidates = index.get(alias[5:22], []) + index.get(alias[5:13], []) + index.get("*", [])
    found: dict[str, DriverMatch] = {}
    for module, pattern in candidates:
        if module.name not in found and fnmatchcase(alias, pattern):
            found[module.name] = DriverMatch(module.name, MODULE, pattern,
                                             f"{module.path}: alias={pattern}")
    return list(found.values())


def _alias_index(scan: ModuleScan) -> dict[str, list[tuple[ModInfo, str]]]:
    """Alias patterns by their literal vendor and device fields ("VVVVVVVVdDDDDDDDD"),
    else their literal vendor field, else "*", so a device is tried against
    the patterns of its own id and vendor only: compiling all ~9000 patterns
    of a distribution kernel costs seconds, and a vendor's alone ~1000."""
    if getattr(scan, "_alias_index", None) is None:
        index: dict[str, list[tuple[ModInfo, str]]] = {}
        for module in scan.modules:
            for pattern in module.pci_aliases:
                vendor, device = pattern[5:13], pattern[14:22]
                key = "*"
                if pattern.startswith("pci:v") and _HEX8.fullmatch(vendor):
                    key = vendor
                    if pattern[13:14] == "d" and _HEX8.fullmatch(device):
                        key = pattern[5:22]
                index.setdefault(key, []).append((module, pattern))
        scan._alias_index = index
    return scan._alias_index


def _builtin_matches(alias: str, config: KernelConfig | None,
                     scan: ModuleScan | None) -> list[DriverMatch]:
    found = []
    in_tree = scan.by_name() if scan else {}
    for driver in builtin_drivers().values():
        state = config.state(driver.symbol) if config else "n"
        if state == "n" or driver.name in in_tree:
            continue   # absent, or its module was matched (or not) on its own aliases
        pattern = next((p for p in driver.pci_aliases if fnmatchcase(alias, p)), None)
        if pattern is None:
            continue
        if state == "y":
            listed = scan is not None and driver.name in scan.builtin
            found.append(DriverMatch(driver.name, BUILT_IN, pattern,
                                     f"{config.evidence(driver.symbol)}"
                                     + (" (listed in modules.builtin)" if listed else "")
                                     + f"; shipped alias table: {pattern}"))
        elif scan is None:   # =m but no modules tree to look in
            found.append(DriverMatch(driver.name, MODULE, pattern,
                                     f"{config.evidence(driver.symbol)} (no modules tree to check); "
                                     f"shipped alias table: {pattern}"))
    return found


def _specificity(pattern: str) -> int:
    """How many characters of PATTERN are literal: more means more specific."""
    return sum(1 for c in pattern if c not in "*?[]")
