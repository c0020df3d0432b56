"""Static analysis of a kernel: Xen capabilities and hardware coverage, read
from the kernel's own files before anything boots.

`analyze(KERNEL, hardware=PROFILE)` returns an `Analysis`; `Analysis.as_dict()`
is the stable JSON form (schema "pvmatrix.analyze/1"):

    {"schema": "pvmatrix.analyze/1",
     "kernel": {"input", "release", "version", "image", "vmlinux", "config",
                "config_source", "modules"},            # paths or null
     "xen_notes": {NAME: int | str},                     # ENTRY, PHYS32_ENTRY, FEATURES, ...
     "capabilities": [{"name", "title", "supported": true|false|null,
                       "form": "built-in"|"module"|null, "evidence": [str]}],
     "modules": {"scanned": int, "from_cache": int, "pci_aliases": int,
                 "unreadable": [{"path", "error"}]} | null,
     "hardware": {"profile", "devices": [{"name", "ids", "modalias", "qemu",
                  "status": "built-in"|"module"|"missing", "driver", "module",
                  "evidence": [str]}]} | null,
     "problems": [str]}                                  # inputs that could not be read

Capability names: pv_domu, pvh_domu, pv_dom0, blkfront, netfront, blkback,
netback, xenfs, evtchn, gntdev, privcmd, pcifront, pciback, hvc_console, file_locking,
dom0_toolstack, guest_suspend, pv_domu_suspend, pvh_domu_suspend, pvh_dom0, pvhvm,
pv_domu_pcifront. `supported` is null when the inputs cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PvmError, TruncatedFile, UserError
from . import bzimage
from .coverage import DeviceCoverage, cover
from .hardware import HardwareProfile, load_profile
from ..kernel import Kernel
from .inputs import locate
from .kconfig import KernelConfig, embedded_config, read_config
from .modules import ModuleScan, scan_modules
from .notes import XenNotes, read_xen_notes
from .verdicts import Capability, capabilities, parse_version
from .modinfo import read_module_elf

SCHEMA = "pvmatrix.analyze/1"


@dataclass
class Analysis:
    """Everything the static analysis found out about one kernel."""
    files: Kernel
    release: str = ""
    notes: XenNotes | None = None
    config: KernelConfig | None = None
    scan: ModuleScan | None = None
    capabilities: list[Capability] = field(default_factory=list)
    profile: HardwareProfile | None = None
    devices: list[DeviceCoverage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def capability(self, name: str) -> Capability:
        return next(c for c in self.capabilities if c.name == name)

    def device(self, name_or_qemu: str) -> DeviceCoverage:
        return next(d for d in self.devices if name_or_qemu in (d.device.name, d.device.qemu))

    def as_dict(self) -> dict:
        f = self.files
        return {
            "schema": SCHEMA,
            "kernel": {"input": f.label, "release": self.release,
                       "version": self.config.version if self.config else "",
                       "image": _str(f.image), "vmlinux": _str(f.vmlinux),
                       "config": _str(f.config),
                       "config_source": self.config.source if self.config else None,
                       "modules": _str(f.modules)},
            "xen_notes": dict(self.notes.values) if self.notes else {},
            "capabilities": [{"name": c.name, "title": c.title, "supported": c.supported,
                              "form": c.form, "evidence": c.evidence} for c in self.capabilities],
            "modules": None if self.scan is None else {
                "scanned": len(self.scan.modules), "from_cache": self.scan.from_cache,
                "pci_aliases": sum(len(m.pci_aliases) for m in self.scan.modules),
                "unreadable": [{"path": m.path, "error": m.error} for m in self.scan.unreadable]},
            "hardware": None if self.profile is None else {
                "profile": self.profile.name,
                "devices": [{"name": d.device.name, "ids": d.device.ids, "modalias": d.device.modalias,
                             "qemu": d.device.qemu, "status": d.status, "driver": d.driver,
                             "module": d.module_path, "evidence": d.evidence} for d in self.devices]},
            "problems": self.problems,
        }


def analyze(kernel: str | Path, hardware: str | Path | HardwareProfile | None = None,
            jobs: int = 2) -> Analysis:
    """Analyze KERNEL (artifact dir, .deb, debian:PACKAGE[@SUITE], directory, bzImage or vmlinux)."""
    files = locate(kernel)
    result = Analysis(files)
    elf = _read_elf(files, result)
    if elf is not None:
        try:
            result.notes = read_xen_notes(elf, str(files.image or files.vmlinux))
        except TruncatedFile:           # never a false static "no"
            raise
        except PvmError as exc:
            result.problems.append(str(exc))
    if files.modules:
        result.scan = scan_modules(files.modules, jobs=jobs)
        result.problems += [f"{files.modules / m.path}: unreadable module ({m.error})"
                            for m in result.scan.unreadable]
    result.config = _find_config(files, elf, result)
    if result.notes is None and result.config is None:
        raise UserError(f"{kernel}: not a readable kernel ({'; '.join(result.problems) or 'nothing found'})")
    if not result.release:
        result.release = (result.notes.build_salt if result.notes else "") or \
            (result.config.version if result.config else "")
    version = parse_version(result.release) or parse_version(result.config.version if result.config else "")
    result.capabilities = capabilities(result.notes, result.config, result.scan, version,
                                       _symbols(files, result))
    if hardware is not None:
        result.profile = hardware if isinstance(hardware, HardwareProfile) else load_profile(hardware)
        result.devices = cover(result.profile, result.config, result.scan)
    return result


def _read_elf(files: Kernel, result: Analysis) -> bytes | None:
    if files.image:
        try:
            image = bzimage.read_boot_image(files.image)
            result.release = image.release
            return bzimage.extract_vmlinux(files.image)
        except PvmError as exc:
            result.problems.append(str(exc))
    if files.vmlinux:
        try:
            return files.vmlinux.read_bytes()
        except OSError as exc:
            result.problems.append(f"{files.vmlinux}: cannot read ({exc.strerror})")
    return None


def _find_config(files: Kernel, elf: bytes | None, result: Analysis) -> KernelConfig | None:
    if files.config:
        try:
            return read_config(files.config)
        except PvmError as exc:
            result.problems.append(str(exc))
    try:
        if elf is not None and (found := embedded_config(elf, str(files.image or files.vmlinux))):
            return found
        if files.modules:
            for ko in sorted(files.modules.glob("kernel/kernel/configs.ko*")):
                if found := embedded_config(read_module_elf(ko), str(ko)):
                    return found
    except PvmError as exc:
        result.problems.append(str(exc))
    return None


MIN_SYMBOLS = 100   # any real kernel's System.map lists tens of thousands


def _symbols(files: Kernel, result: Analysis) -> set[str] | None:
    """The names System.map lists ("ADDRESS TYPE NAME" lines), if there is one."""
    if not files.system_map:
        return None
    try:
        text = files.system_map.read_text(errors="replace")
    except OSError as exc:
        result.problems.append(f"{files.system_map}: cannot read ({exc.strerror})")
        return None
    names = system_map_names(text)
    if len(names) < MIN_SYMBOLS:     # Debian's: "The real System.map is in the ...-dbg package"
        first = text.strip().splitlines()[0][:100] if text.strip() else "empty"
        result.problems.append(f"{files.system_map.name}: not a symbol table ({first})")
        return None
    return names


def system_map_names(text: str) -> set[str]:
    return {parts[2] for line in text.splitlines() if len(parts := line.split()) >= 3}


def _str(path: Path | None) -> str | None:
    return str(path) if path else None
