"""Hardware profiles: named PCI devices, stored as TOML under
pvmatrix/data/hardware/ (or any TOML file with the same layout).

    name = "default"
    description = "..."
    [[device]]
    name = "Intel 82574L Gigabit Network Connection"
    vendor = 0x8086        # required
    device = 0x10d3        # required
    subvendor = 0x8086     # optional: unknown matches only aliases that do not constrain it
    subdevice = 0x0000
    class = 0x02           # base class, subclass and prog-if; required: class, subclass
    subclass = 0x00
    prog_if = 0x00
    qemu = "e1000e"        # optional: the QEMU device that emulates it
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import PvmError
from ..paths import DATA

PROFILES = DATA / "hardware"
UNKNOWN = "X"   # fills a field the profile does not know: only "*" matches it


@dataclass(frozen=True)
class PciDevice:
    """One PCI function, as a modalias sees it."""
    name: str
    vendor: int
    device: int
    pci_class: int
    subclass: int
    subvendor: int | None = None
    subdevice: int | None = None
    prog_if: int | None = None
    qemu: str | None = None
    slot: str | None = None

    @property
    def ids(self) -> str:
        """vendor:device[ subvendor:subdevice], as lspci -nn writes them."""
        text = f"{self.vendor:04x}:{self.device:04x}"
        if self.subvendor is not None:
            text += f" {self.subvendor:04x}:{_hex(self.subdevice, 4)}"
        return text

    @property
    def modalias(self) -> str:
        """pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X (unknown fields are X...)."""
        return (f"pci:v{self.vendor:08X}d{self.device:08X}sv{_hex(self.subvendor, 8)}"
                f"sd{_hex(self.subdevice, 8)}bc{self.pci_class:02X}sc{self.subclass:02X}"
                f"i{_hex(self.prog_if, 2)}")

    def to_toml(self) -> str:
        lines = ["[[device]]", f"name = {_quote(self.name)}"]
        if self.slot:
            lines.append(f"slot = {_quote(self.slot)}")
        for key, width in (("vendor", 4), ("device", 4), ("subvendor", 4), ("subdevice", 4)):
            value = getattr(self, key)
            if value is not None:
                lines.append(f"{key} = 0x{value:0{width}x}")
        lines += [f"class = 0x{self.pci_class:02x}", f"subclass = 0x{self.subclass:02x}"]
        if self.prog_if is not None:
            lines.append(f"prog_if = 0x{self.prog_if:02x}")
        if self.qemu:
            lines.append(f"qemu = {_quote(self.qemu)}")
        return "\n".join(lines) + "\n"


@dataclass
class HardwareProfile:
    """A named set of PCI devices."""
    name: str
    description: str = ""
    devices: list[PciDevice] = field(default_factory=list)
    source: str = ""

    def to_toml(self) -> str:
        head = f"name = {_quote(self.name)}\ndescription = {_quote(self.description)}\n"
        return head + "".join("\n" + d.to_toml() for d in self.devices)

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "devices": [asdict(d) for d in self.devices]}


def profile_names() -> list[str]:
    """The names of the shipped profiles."""
    return sorted(p.stem for p in PROFILES.glob("*.toml") if p.stem != "builtin-drivers")


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A shipped profile by name, or a profile TOML file by path."""
    path = Path(name_or_path)
    if not path.exists():
        path = PROFILES / f"{name_or_path}.toml"
        if not path.exists() or path.stem == "builtin-drivers":
            raise PvmError(f"no hardware profile {name_or_path!r} (shipped: {', '.join(profile_names())};"
                           " or give a TOML file)")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PvmError(f"{path}: not a readable hardware profile ({exc})") from None
    devices = [_device(entry, path, i) for i, entry in enumerate(data.get("device", []))]
    return HardwareProfile(data.get("name", path.stem), data.get("description", ""), devices, str(path))


def _device(entry: dict, path: Path, index: int) -> PciDevice:
    try:
        return PciDevice(name=entry.get("name", f"device {index}"), vendor=entry["vendor"],
                         device=entry["device"], pci_class=entry["class"], subclass=entry["subclass"],
                         subvendor=entry.get("subvendor"), subdevice=entry.get("subdevice"),
                         prog_if=entry.get("prog_if"), qemu=entry.get("qemu"), slot=entry.get("slot"))
    except KeyError as exc:
        raise PvmError(f"{path}: device {index} lacks {exc.args[0]!r}") from None


def _hex(value: int | None, width: int) -> str:
    return UNKNOWN * width if value is None else f"{value:0{width}X}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
