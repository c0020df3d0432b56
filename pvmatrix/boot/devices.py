"""The emulated hardware of a boot: QEMU devices at fixed PCI addresses.

Each device gets its own slot (00:10.0, 00:11.0, ...) so that the probes'
"driver bound to 0000:00:10.0" is attributed to the device asked for without
a PCI id table. Storage controllers (and a USB host controller, through a
usb-storage device on its bus) get a 1 MiB disk whose sector 1 holds
"PVMDISK-<device>-<nonce>". Each NIC is the only port of a hub of its own (no
route anywhere) and QEMU dumps its frames to nic-<device>.pcap, where the
harness looks for the frame the probe sends carrying "PVMNET-<nonce>".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import catalog
from ..catalog import Passthrough, PciDevice
from ..errors import UserError
from .qemu import esc

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
    modules: tuple[str, ...] = ()  # what drives its attached child (usb-storage)
    tag: str = ""          # names its files when the QEMU device may be there twice

    @property
    def pci(self) -> str:
        return f"0000:00:{self.slot:02x}.0"

    @property
    def label(self) -> str:
        return self.tag or self.name

    @property
    def has_disk(self) -> bool:
        """Whether the device (or the child attached to it) carries a probe disk."""
        return "{drive}" in self.props + self.attach

    def disk_token(self, nonce: str) -> str:
        return f"PVMDISK-{self.name}-{nonce}"

    def pcap(self, workdir: Path) -> Path:
        """Where QEMU dumps a NIC's frames."""
        return workdir / f"nic-{self.label}.pcap"


def frame_token(nonce: str) -> str:
    """What the probe's frame out of each NIC carries (lib.sh: pvm_frame)."""
    return f"PVMNET-{nonce}"


def default_names() -> list[str]:
    """The QEMU devices of the default hardware profile."""
    return catalog.profile(DEFAULT_PROFILE).qemu_devices


def plan(names: list[str] | tuple[str, ...] | None = None) -> list[Device]:
    """NAMES (default: the default profile's) at slots of their own; an
    unknown QEMU device is an error naming the known ones."""
    out = []
    for i, name in enumerate(names or default_names()):
        spec = catalog.get("device", name)
        out.append(Device(name, spec.kind, FIRST_SLOT + i, spec.props, spec.attach, spec.pci,
                          spec.modules))
    return out


def passed_through(p: Passthrough) -> Device:
    """The device a guest role gets passed through, at its own slot (below the
    probed devices' slots, so a profile's devices never take it)."""
    if not 0 < p.slot < FIRST_SLOT:
        raise UserError(f"roles.toml: passthrough slot 0x{p.slot:x} must be between 0x1 and "
                        f"0x{FIRST_SLOT - 1:x} (the probed devices take 0x{FIRST_SLOT:x} on)")
    spec = catalog.get("device", p.device)
    return Device(p.device, spec.kind, p.slot, spec.props, spec.attach, spec.pci, spec.modules,
                  tag=f"passthrough-{p.device}")


def qemu_args(devs: list[Device], workdir: Path, nonce: str) -> list[str]:
    """-device/-drive options; disk images are written into WORKDIR."""
    args: list[str] = []
    for n, d in enumerate(devs):
        ident, drive = f"pvmdev{n}", f"pvmdisk{n}"
        fill = {"drive": drive, "id": ident, "n": n}
        if d.has_disk:
            img = workdir / f"disk-{d.label}.img"
            data = bytearray(1 << 20)
            token = d.disk_token(nonce).encode()
            data[512:512 + len(token)] = token
            img.write_bytes(bytes(data))
            args += ["-drive", f"if=none,id={drive},format=raw,file={esc(img)}"]
        props = f",{d.props.format(**fill)}" if d.props else ""
        if d.kind == "nic":
            props += ",netdev=" + ident   # a port on a hub of its own: no route anywhere
            args += ["-netdev", f"hubport,id={ident},hubid={10 + n}",
                     "-object", f"filter-dump,id=pvmdump{n},netdev={ident},"
                     f"file={esc(d.pcap(workdir))}"]
        args += ["-device", f"{d.name},id={ident},addr=0x{d.slot:x}{props}"]
        if d.attach:
            args += ["-device", d.attach.format(**fill)]
    return args
