"""The emulated hardware of a boot: QEMU devices at fixed PCI addresses.

Each device gets its own slot (00:10.0, 00:11.0, ...) so that the probes'
"driver bound to 0000:00:10.0" is attributed to the device asked for without
a PCI id table. Storage controllers get a 1 MiB disk whose sector 1 holds
"PVMDISK-<device>-<nonce>".
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import PvmError
from ..paths import DATA

DEFAULT = ("e1000e", "ich9-ahci")
FIRST_SLOT = 0x10


@dataclass(frozen=True)
class Device:
    name: str              # QEMU device name
    kind: str              # nic / storage / other
    slot: int
    props: str = ""
    attach: str = ""

    @property
    def pci(self) -> str:
        return f"0000:00:{self.slot:02x}.0"

    def disk_token(self, nonce: str) -> str:
        return f"PVMDISK-{self.name}-{nonce}"


def _table() -> dict:
    return tomllib.loads((DATA / "boot" / "qemu-devices.toml").read_text())["device"]


def plan(names: list[str] | tuple[str, ...] = DEFAULT) -> list[Device]:
    table = _table()
    out = []
    for i, name in enumerate(names):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
            raise PvmError(f"not a QEMU device name: {name!r}")
        spec = table.get(name, {"kind": "other"})
        out.append(Device(name, spec["kind"], FIRST_SLOT + i, spec.get("props", ""),
                          spec.get("attach", "")))
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
