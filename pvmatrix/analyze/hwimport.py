"""Turn what a machine says about its PCI devices into a hardware profile:
`lspci -nn`, -nnk, -nnv, -vvnn, `lspci -nvmm` or -nnvmm, or a copy of
/sys/bus/pci (the directory, or its devices/ directory). Ids are kept as the
dump gives them; the driver a dump shows in use is kept as `bound`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UserError
from .hardware import HardwareProfile, PciDevice

# 00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH ... [8086:2922] (rev 02) (prog-if 01 [AHCI 1.0])
_NN_LINE = re.compile(r"^(?P<slot>(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) (?P<cname>.*?) "
                      r"\[(?P<cls>[0-9a-f]{4})\]: (?P<name>.*) \[(?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})\]"
                      r"(?P<rest>.*)$")
_SUBSYS = re.compile(r"^\s+Subsystem: .*\[(?P<sv>[0-9a-f]{4}):(?P<sd>[0-9a-f]{4})\]\s*$")
# a bridge's subsystem: its SSVID capability, the only place lspci shows it for one
_CAP_SUBSYS = re.compile(r"^\s+Capabilities: \[[0-9a-f]+\] Subsystem: .*\[(?P<sv>[0-9a-f]{4}):(?P<sd>[0-9a-f]{4})\]\s*$")
_BOUND = re.compile(r"^\s+Kernel driver in use: (?P<drv>\S+)")
_PROGIF = re.compile(r"\(prog-if (?P<pi>[0-9a-f]{2})")
# indented lines lspci prints without -v as well (-k, -D): anything else means a verbose dump
_TERSE = re.compile(r"^\s+(Subsystem|Kernel driver in use|Kernel modules|DeviceName):")
# -nnvmm: "Class:\tSATA controller [0106]"; -nvmm: "Class:\t0106"
_VMM_ID = re.compile(r"(?:^|\[)(?P<id>[0-9a-f]{2,4})\]?$")


def import_profile(source: Path, name: str | None = None) -> HardwareProfile:
    """A profile from an lspci output file or a /sys/bus/pci copy at SOURCE."""
    source = Path(source)
    if source.is_dir():
        devices, kind = from_sysfs(source), "sysfs"
    else:
        try:
            text = source.read_text(errors="replace")
        except OSError as exc:
            raise UserError(f"{source}: cannot read ({exc.strerror})") from None
        devices, kind = parse_lspci(text, str(source))
    if not devices:
        raise UserError(f"{source}: no PCI devices found (expected lspci -nn or -nvmm output, or a /sys/bus/pci copy)")
    label = name or source.stem
    return HardwareProfile(label, f"imported from {kind} ({source.name})", devices, str(source))


def parse_lspci(text: str, source: str = "lspci output") -> tuple[list[PciDevice], str]:
    """Devices from `lspci -nvmm` or `lspci -nn[v|k]` text, and which form it was."""
    if re.search(r"^Slot:\s", text, re.M):
        return _parse_vmm(text, source), "lspci -nvmm"
    return _parse_nn(text, source), "lspci -nn"


def _parse_nn(text: str, source: str) -> list[PciDevice]:
    """`lspci -nn`, -nnk, -nnv, -vvnn: lspci prints a prog-if only in a verbose
    dump and only when it is not 00 (or has a name), so there a missing one is 00;
    a terse dump does not say."""
    lines = text.splitlines()
    verbose = any(line[:1].isspace() and line.strip() and not _TERSE.match(line) for line in lines)
    devices: list[dict] = []
    for line in lines:
        match = _NN_LINE.match(line)
        if match:
            cls = int(match["cls"], 16)
            pi = _PROGIF.search(match["rest"])
            devices.append(dict(name=match["name"].strip(), slot=match["slot"], vendor=int(match["v"], 16),
                                device=int(match["d"], 16), pci_class=cls >> 8, subclass=cls & 0xFF,
                                prog_if=int(pi["pi"], 16) if pi else (0 if verbose else None)))
        elif devices and (sub := _SUBSYS.match(line) or _CAP_SUBSYS.match(line)):
            devices[-1].setdefault("subvendor", int(sub["sv"], 16))
            devices[-1].setdefault("subdevice", int(sub["sd"], 16))
        elif devices and (bound := _BOUND.match(line)):
            devices[-1]["bound"] = bound["drv"]
        elif line.strip() and not line[0].isspace() and re.match(r"^[0-9a-f]{2}:[0-9a-f]{2}\.", line):
            raise UserError(f"{source}: lspci line without numeric ids (run lspci with -nn): {line[:60]}")
    return [PciDevice(**d) for d in devices]


def _parse_vmm(text: str, source: str) -> list[PciDevice]:
    """`lspci -nvmm` or -nnvmm (names with the ids in brackets); lspci leaves
    out ProgIf when it is 00."""
    devices = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields = dict(line.split(":\t", 1) for line in block.splitlines() if ":\t" in line)
        try:
            cls = _vmm_id(fields["Class"])
            devices.append(PciDevice(
                name=_vmm_name(fields), slot=fields.get("Slot"), vendor=_vmm_id(fields["Vendor"]),
                device=_vmm_id(fields["Device"]), pci_class=cls >> 8, subclass=cls & 0xFF,
                subvendor=_opt(fields.get("SVendor")), subdevice=_opt(fields.get("SDevice")),
                prog_if=_opt(fields.get("ProgIf"), 0), bound=fields.get("Driver")))
        except (KeyError, ValueError) as exc:
            raise UserError(f"{source}: not lspci -nvmm output (numeric ids needed; "
                            f"device at {fields.get('Slot', '?')}: {exc})") from None
    return devices


def _vmm_id(text: str) -> int:
    match = _VMM_ID.search(text.strip())
    if not match:
        raise ValueError(f"no numeric id in {text!r}")
    return int(match["id"], 16)


def _vmm_name(fields: dict) -> str:
    """The device's name from -nnvmm ("Name [1234]"), else its slot."""
    name = re.sub(r"\s*\[[0-9a-f]{4}\]$", "", fields.get("Device", ""))
    return name if name and not re.fullmatch(r"[0-9a-f]{4}", name) else fields.get("Slot", "?")


def from_sysfs(root: Path) -> list[PciDevice]:
    """Devices from a copy of /sys/bus/pci (or of its devices/ directory)."""
    base = root / "devices" if (root / "devices").is_dir() else root
    devices = []
    for entry in sorted(base.iterdir()):
        if not (entry / "vendor").exists():
            continue
        try:
            read = {f: int((entry / f).read_text().strip(), 16)
                    for f in ("vendor", "device", "class", "subsystem_vendor", "subsystem_device")
                    if (entry / f).exists()}
            cls = read["class"]
            driver = entry / "driver"
            devices.append(PciDevice(name=entry.name, slot=entry.name, vendor=read["vendor"],
                                     device=read["device"], pci_class=cls >> 16, subclass=cls >> 8 & 0xFF,
                                     prog_if=cls & 0xFF, subvendor=read.get("subsystem_vendor"),
                                     subdevice=read.get("subsystem_device"),
                                     bound=os.path.basename(os.readlink(driver)) if driver.is_symlink() else None))
        except (KeyError, ValueError, OSError) as exc:
            raise UserError(f"{entry}: unreadable PCI device ({exc})") from None
    return devices


def _opt(text: str | None, default: int | None = None) -> int | None:
    return _vmm_id(text) if text else default
