"""Xen capabilities of one kernel, each with the evidence that decided it:
the Xen ELF notes say what the image can boot as, the config says which Xen
drivers and interfaces are there."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .kconfig import KernelConfig
from .modules import ModuleScan
from .notes import XENFEAT_DOM0, XenNotes

DOM0_BIT_FROM = (6, 5)   # SUPPORTED_FEATURES' dom0 bit is always set before 6.5

# name -> (title, config symbol, module name when built as a module)
COMPONENTS: dict[str, tuple[str, str, str | None]] = {
    "blkfront": ("block frontend (domU disks)", "XEN_BLKDEV_FRONTEND", "xen_blkfront"),
    "netfront": ("network frontend (domU NIC)", "XEN_NETDEV_FRONTEND", "xen_netfront"),
    "blkback": ("block backend (dom0)", "XEN_BLKDEV_BACKEND", "xen_blkback"),
    "netback": ("network backend (dom0)", "XEN_NETDEV_BACKEND", "xen_netback"),
    "xenfs": ("xenfs (/proc/xen)", "XENFS", "xenfs"),
    "evtchn": ("event channel device", "XEN_DEV_EVTCHN", "xen_evtchn"),
    "gntdev": ("grant table device", "XEN_GNTDEV", "xen_gntdev"),
    "privcmd": ("privcmd (hypercalls from userspace)", "XEN_PRIVCMD", "xen_privcmd"),
    "pcifront": ("PCI frontend (a device passed through to a PV domU)", "XEN_PCIDEV_FRONTEND",
                 "xen_pcifront"),
    "pciback": ("PCI backend (dom0 passes a device through)", "XEN_PCIDEV_BACKEND",
                "xen_pciback"),
    "hvc_console": ("hvc0 console", "HVC_XEN", None),
    "file_locking": ("file locking (libxl needs it)", "FILE_LOCKING", None),
}
TOOLSTACK_NEEDS = ["xenfs", "evtchn", "gntdev", "privcmd", "file_locking"]
# Linux answers the toolstack's "suspend" request (xl save / migrate) only with
# drivers/xen/manage.c's suspend handler, built under HIBERNATE_CALLBACKS (which
# x86's XEN_SAVE_RESTORE selects); xen_suspend is that handler's function.
SUSPEND_SYMBOL = "HIBERNATE_CALLBACKS"
SUSPEND_FUNCTION = "xen_suspend"


@dataclass
class Capability:
    """One yes/no/unknown answer about a kernel, with its evidence."""
    name: str                     # stable key, e.g. "pv_domu"
    title: str
    supported: bool | None        # None: the inputs cannot tell
    form: str | None = None       # built-in | module, for drivers
    evidence: list[str] = field(default_factory=list)


def parse_version(text: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def capabilities(notes: XenNotes | None, config: KernelConfig | None,
                 scan: ModuleScan | None, version: tuple[int, int] | None,
                 symbols: set[str] | None = None) -> list[Capability]:
    """Every capability, in a stable order (SYMBOLS: System.map's names, if read)."""
    comps = {name: component(name, config, scan) for name in COMPONENTS}
    pv, pvh = pv_domu(notes, config), pvh_domu(notes, config)
    dom0 = pv_dom0(notes, config, version)
    suspend = guest_suspend(config, symbols)
    return [pv, pvh, dom0, *comps.values(), toolstack(dom0, comps), suspend,
            suspendable(pv, suspend), suspendable(pvh, suspend),
            pvh_dom0(notes, config, version), pvhvm(config),
            joined("pv_domu_pcifront", "boots as PV domU and takes a passed-through PCI device",
                   [pv, comps["pcifront"]])]


# what Linux's arch/x86/xen/Kconfig asks of a PVH dom0: XEN_DOM0 depends on
# (XEN_PV && SWIOTLB_XEN) || (XEN_PVH && X86_64), so both must be set for PVH
PVH_DOM0_NEEDS = ("XEN_PVH", "XEN_DOM0")


def pvh_dom0(notes: XenNotes | None, config: KernelConfig | None,
             version: tuple[int, int] | None) -> Capability:
    """Boots as a PVH dom0 (Xen's dom0=pvh): the PVH entry, XEN_PVH and XEN_DOM0."""
    return _dom0(Capability("pvh_dom0", "boots as PVH dom0", None), pvh_domu(notes, config),
                 "a PVH dom0 is a PVH guest: no PVH entry", notes, config, version, PVH_DOM0_NEEDS)


def pvhvm(config: KernelConfig | None) -> Capability:
    """PV drivers in an HVM guest (PVHVM): evidence for domU-hvm, not a need of it.
    XEN_PVHVM is def_bool y with XEN; the prompt is XEN_PVHVM_GUEST (both must be y)."""
    cap = Capability("pvhvm", "PV-on-HVM (front-ends in an HVM guest)", None)
    if config is None:
        cap.evidence.append("no kernel config")
        return cap
    symbols = ("XEN_PVHVM", "XEN_PVHVM_GUEST")
    cap.supported = all(config.state(s) == "y" for s in symbols)
    cap.evidence += [config.evidence(s) for s in symbols]
    return cap


def guest_suspend(config: KernelConfig | None, symbols: set[str] | None) -> Capability:
    """Whether the guest answers the toolstack's suspend request (save, migrate)."""
    cap = Capability("guest_suspend", "suspends for xl save / migrate (drivers/xen/manage.c)", None)
    verdicts: list[bool] = []
    if config is not None:
        verdicts.append(config.state(SUSPEND_SYMBOL) == "y")
        cap.evidence += [config.evidence(SUSPEND_SYMBOL), config.evidence("XEN_SAVE_RESTORE")]
    if symbols is not None:
        verdicts.append(SUSPEND_FUNCTION in symbols)
        cap.evidence.append(f"System.map: {SUSPEND_FUNCTION} "
                            + ("present" if verdicts[-1] else "absent"))
    if verdicts:
        cap.supported = all(verdicts)
    else:
        cap.evidence.append("no kernel config and no System.map")
    return cap


def suspendable(guest: Capability, suspend: Capability) -> Capability:
    """GUEST (pv_domu / pvh_domu) that can also be saved and migrated."""
    return joined(f"{guest.name}_suspend", f"{guest.title}, saved / restored and migrated",
                  [guest, suspend])


def joined(name: str, title: str, parts: list[Capability]) -> Capability:
    """NAME: every one of PARTS (the first part's evidence last, the deciding first)."""
    cap = Capability(name, title, None)
    lacking = [p for p in parts if p.supported is False]
    if lacking:     # the deciding evidence first: reports keep only the first lines
        cap.supported = False
        cap.evidence = [f"lacks {p.name}: {'; '.join(p.evidence)}" for p in lacking]
    elif any(p.supported is None for p in parts):
        cap.evidence = [f"cannot tell {p.name}: {'; '.join(p.evidence)}"
                        for p in parts if p.supported is None]
    else:
        cap.supported = True
        cap.evidence = [f"{p.name}: {'; '.join(p.evidence)}" for p in [*parts[1:], parts[0]]]
    return cap


def pv_domu(notes: XenNotes | None, config: KernelConfig | None) -> Capability:
    cap = Capability("pv_domu", "boots as PV domU", None)
    _from_note(cap, notes, "ENTRY", config, "XEN_PV")
    return cap


def pvh_domu(notes: XenNotes | None, config: KernelConfig | None) -> Capability:
    cap = Capability("pvh_domu", "boots as PVH domU", None)
    _from_note(cap, notes, "PHYS32_ENTRY", config, "XEN_PVH")
    return cap


def _from_note(cap: Capability, notes: XenNotes | None, note: str,
               config: KernelConfig | None, symbol: str) -> None:
    if notes is not None:
        cap.supported = notes.has(note)
        cap.evidence.append(notes.describe(note) if cap.supported else f"no Xen note {note}")
    if config is not None:
        cap.evidence.append(config.evidence(symbol))
        if cap.supported is None:
            cap.supported = config.state(symbol) == "y"


def _dom0_verdicts(cap: Capability, notes: XenNotes | None, config: KernelConfig | None,
                   version: tuple[int, int] | None, symbols: tuple[str, ...]) -> list[bool]:
    """What says yes or no to a dom0 (PV or PVH): the SUPPORTED_FEATURES dom0 bit
    where the kernel's version makes it meaningful, and SYMBOLS being y; the
    evidence of each goes into CAP."""
    verdicts: list[bool] = []
    bit = notes.supported_feature(XENFEAT_DOM0) if notes else None
    if bit is not None and version and version >= DOM0_BIT_FROM:
        verdicts.append(bit)
        cap.evidence.append(f"Xen note SUPPORTED_FEATURES={notes.values['SUPPORTED_FEATURES']:#x}: "
                            f"dom0 bit {XENFEAT_DOM0} {'set' if bit else 'clear'}")
    elif bit is not None:
        cap.evidence.append(f"SUPPORTED_FEATURES dom0 bit ignored: always set before "
                            f"{DOM0_BIT_FROM[0]}.{DOM0_BIT_FROM[1]}"
                            + (f" (kernel {version[0]}.{version[1]})" if version else " (version unknown)"))
    if config is not None:
        verdicts += [config.state(s) == "y" for s in symbols]
        cap.evidence += [config.evidence(s) for s in symbols]
    return verdicts


def pv_dom0(notes: XenNotes | None, config: KernelConfig | None,
            version: tuple[int, int] | None) -> Capability:
    return _dom0(Capability("pv_dom0", "boots as PV dom0", None), pv_domu(notes, config),
                 "dom0 is a PV guest: no PV entry", notes, config, version, ("XEN_DOM0",))


def _dom0(cap: Capability, guest: Capability, no_entry: str, notes: XenNotes | None,
          config: KernelConfig | None, version: tuple[int, int] | None,
          symbols: tuple[str, ...]) -> Capability:
    """CAP, a dom0 of GUEST's kind: no when GUEST has no entry (NO_ENTRY said),
    else the dom0 bit and SYMBOLS (_dom0_verdicts)."""
    if guest.supported is False:
        cap.supported, cap.evidence = False, guest.evidence + [no_entry]
        return cap
    verdicts = _dom0_verdicts(cap, notes, config, version, symbols)
    if verdicts:
        cap.supported = all(verdicts)
    else:
        cap.evidence.append("no kernel config, and no dom0 bit to trust")
    return cap


def component(name: str, config: KernelConfig | None, scan: ModuleScan | None) -> Capability:
    title, symbol, module = COMPONENTS[name]
    cap = Capability(name, title, None)
    if config is None:
        cap.evidence.append("no kernel config")
        return cap
    state = config.state(symbol)
    cap.evidence.append(config.evidence(symbol))
    if state == "y":
        cap.supported, cap.form = True, "built-in"
    elif state == "m":
        cap.form = "module"
        if scan is None:
            cap.supported = True
            cap.evidence.append("no modules tree to check the module is there")
        else:
            found = scan.by_name().get(module or "")
            cap.supported = found is not None
            cap.evidence.append(f"module {found.path}" if found else f"module {module} not in the modules tree")
    else:
        cap.supported = False
    return cap


def toolstack(dom0: Capability, comps: dict[str, Capability]) -> Capability:
    cap = Capability("dom0_toolstack", "runs the xl toolstack as dom0", None)
    parts = [dom0] + [comps[n] for n in TOOLSTACK_NEEDS]
    missing = [p.name for p in parts if p.supported is False]
    unknown = [p.name for p in parts if p.supported is None]
    if missing:
        cap.supported = False
        cap.evidence.append("lacks " + ", ".join(missing))
    elif unknown:
        cap.evidence.append("cannot tell: " + ", ".join(unknown))
    else:
        cap.supported = True
        cap.evidence.append("has " + ", ".join(p.name for p in parts))
    return cap
