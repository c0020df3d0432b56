"""The emulated hardware of a boot: QEMU devices at fixed PCI addresses.

Each device gets its own slot (00:10.0, 00:11.0, ...) so that the probes'
"driver bound to 0000:00:10.0" is attributed to the device asked for without
a PCI id table. Storage controllers get a 1 MiB disk whose sector 1 holds
"PVMDISK-<device>-<nonce>".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import catalog
from ..catalog import PciDevice

DEFAULT_PROFILE = "default"       # the hardware a boot gets when given none
FIRST_SLOT = 0x10


@dataclass(frozen=True)
class Device:
    """A catalog QEMU device placed at a PCI slot of one boot."""
    name: str              # QEMU device name
    kind: str              # nic / storage / other
    slot: int
    props: str = ""
    attach: str = ""
    ids: PciDevice | None = None   # the PCI function it presents, when known

    @property
    def pci(self) -> str:
        return f"0000:00:{self.slot:02x}.0"

    def disk_token(self, nonce: str) -> str:
        return f"PVMDISK-{self.name}-{nonce}"


def default_names() -> list[str]:
    """The QEMU devices of the default hardware profile."""
    return catalog.profile(DEFAULT_PROFILE).qemu_devices


def plan(names: list[str] | tuple[str, ...] | None = None) -> list[Device]:
    """NAMES (default: the default profile's) at slots of their own; an
    unknown QEMU device is an error naming the known ones."""
    out = []
    for i, name in enumerate(names or default_names()):
        spec = catalog.get("device", name)
        out.append(Device(name, spec.kind, FIRST_SLOT + i, spec.props, spec.attach, spec.pci))
    return out


def qemu_args(devs: list[Device], workdir: Path, nonce: str) -> list[str]:
    """-device/-drive options; disk images are written into WORKDIR."""
    args: list[str] = []
    for n, d in enumerate(devs):
        ident, drive = f"pvmdev{n}", f"pvmdisk{n}"
        fill = {"drive": drive, "id": ident, "n": n}
        if d.kind == "storage":
            img = workdir / f"disk-{d.name}.img"
            data = bytearray(1 << 20)
            token = d.disk_token(nonce).encode()
            data[512:512 + len(token)] = token
            img.write_bytes(bytes(data))
            args += ["-drive", f"if=none,id={drive},format=raw,file={str(img).replace(',', ',,')}"]
        props = f",{d.props.format(**fill)}" if d.props else ""
        if d.kind == "nic":
            props += ",netdev=" + ident   # a port on a hub of its own: no route anywhere
            args += ["-netdev", f"hubport,id={ident},hubid={10 + n}"]
        args += ["-device", f"{d.name},id={ident},addr=0x{d.slot:x}{props}"]
        if d.attach:
            args += ["-device", d.attach.format(**fill)]
    return args
