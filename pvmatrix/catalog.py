"""Everything that varies, as data under pvmatrix/data/, read by one loader.

A kind names its file (one table per record) or its folder (one file per
record) and its record type. Every kind lists (`names`, `all`), and an
unknown name is one error, errors.UnknownName, listing the known ones:

    kind       data                   record
    toolchain  toolchains.toml        Toolchain        a Debian suite and its compiler
    suite      suites.toml            Suite            a Debian suite packages come from
                                                       (from `mirror()`: no host is data)
    xen        xen.toml               XenRelease       a Xen release (`default(kind)`)
    role       roles.toml             Role             what a matrix cell boots
    device     devices.toml           QemuDevice       a QEMU device: PCI ids and plumbing
    hardware   hardware/*.toml        HardwareProfile  a named set of PCI devices
    driver     builtin-drivers.toml   BuiltinDriver    PCI ids of drivers built in
    death      deaths.toml            Death            how a kernel or Xen announces a death
    driverless driverless-classes.toml DriverlessClass PCI classes with no coverage question
    iommu      iommus.toml            Iommu            the machine a passthrough boot gets
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from . import settings
from .aptsources import HOST_APT, host_mirror
from .errors import UnknownName, UserError
from .paths import DATA, confined
from .digest import short as short_sha256

UNKNOWN = "X"   # fills a PCI field a profile does not know: only "*" matches it


# -- records --------------------------------------------------------------

def _digest(*parts: str) -> str:
    return short_sha256("\0".join(parts))


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(".")[:2])


@dataclass(frozen=True)
class Suite:
    """A Debian suite pvmatrix fetches packages from (in the file's order), from
    the mirror in effect (`mirror()`)."""
    name: str
    components: str
    apt_options: str = ""            # apt-get options its images' updates need

    @property
    def base_image(self) -> str:
        """The content tag of the suite's bootstrapped base image: its mirror's
        content (a snapshot mirror is another archive)."""
        return f"pvmatrix/base:{self.name}-{_digest(self.name, mirror(), 'minbase')}"


@dataclass(frozen=True)
class Toolchain:
    """A build toolchain: one Debian suite and its compiler, for a kernel range."""
    name: str
    suite: str
    compiler: str
    packages: tuple[str, ...]
    min_version: str
    max_version: str

    @property
    def containerfile(self) -> str:
        return (DATA / "toolchain.Containerfile").read_text().format(
            base=get("suite", self.suite).base_image, packages=" ".join(self.packages),
            apt_options="".join(f"{o} " for o in get("suite", self.suite).apt_options.split()),
            name=self.name, compiler=self.compiler)

    @property
    def image(self) -> str:
        """Content tag: changes whenever the definition or its base changes."""
        return f"pvmatrix/toolchain:{self.name}-{_digest(self.containerfile)}"

    def covers(self, version: str) -> bool:
        v = _version_tuple(version)
        return _version_tuple(self.min_version) <= v < _version_tuple(self.max_version)


@dataclass(frozen=True)
class XenRelease:
    """A Xen release: Debian's hypervisor package, its toolstack, the dom0
    userspace's suite and Xen's command line (dom0_mem is added per boot)."""
    name: str
    package: str
    utils: str
    suite: str
    cmdline: str
    device_model: str = "qemu-system-xen"   # Debian's QEMU for Xen HVM guests, in that suite
    support: tuple[tuple[str, str], ...] = ()  # role -> Xen's SUPPORT.md status (evidence)
    not_run: tuple[tuple[str, str], ...] = ()  # role -> why this release cannot run it

    @property
    def order(self) -> tuple[int, ...]:
        return tuple(int(x) for x in self.name.split("."))


@dataclass(frozen=True)
class Passthrough:
    """A PCI device dom0 hands to a guest role (roles.toml `passthrough`): plugged
    in for that role's boot only, taken by dom0's backend (`xl pci-assignable-add`)
    and named in the guest's `pci = [...]`."""
    device: str                   # the QEMU device (devices.toml) plugged in for it
    slot: int                     # its PCI slot, below the probed devices' (0x10 on)
    backend: str                  # dom0's module that takes it (xen-pciback)
    iommu: str = "none"           # the boot's machine: an IOMMU of data/iommus.toml
    cannot: tuple[str, ...] = ()  # xl output saying this platform cannot: the cell is not run


@dataclass(frozen=True)
class Iommu:
    """The machine a passthrough boot gets (data/iommus.toml): QEMU's machine type,
    its emulated IOMMU (none: the plain machine every other boot has) and what
    Xen's command line adds for it."""
    name: str
    machine: str                  # QEMU's -machine
    device: str = ""              # QEMU's IOMMU device, placed before every other device
    xen_cmdline: str = ""         # added to the release's Xen command line
    note: str = ""                # what is known of it (evidence)
    profile: str = ""             # the machine's other devices (a hardware profile); "": the boot's


@dataclass(frozen=True)
class Role:
    """What a matrix cell boots, and which markers prove it worked."""
    name: str
    xen: bool
    where: str                    # "host" or a guest name
    expect: tuple[str, ...]       # marker patterns, all required
    deadline_s: float
    init: str | None = None       # init script under data/boot/ (host roles)
    needs: str | None = None      # role that must be ok first
    guest_type: str | None = None  # "pv" / "pvh" (guest roles)
    memory_mb: int = 0            # QEMU memory (host roles)
    dom0_mb: int = 0
    guest_mb: int = 0
    toolstack_errors: tuple[str, ...] = field(default=())
    capability: str | None = None   # static capability (analyze) the kernel needs
    cmdline: str = ""             # the role's kernel command line
    modules: tuple[str, ...] = ()  # modules its init loads
    milestones: tuple[tuple[str, str], ...] = ()   # (name, marker pattern) timed on the host
    timed_by: str | None = None   # the milestone that is the role's own time
    lifecycle: str | None = None  # "save" / "migrate": what dom0 does to the running guest
    order: int = 0                # a lifecycle step's place in its guest's chain (roles.toml)
    xen_cmdline: str = ""         # host roles: added to Xen's command line
    dom0_packages: tuple[str, ...] = ()  # extra dom0 userspace ({device_model}: the release's)
    hosts: tuple[str, ...] = ()   # host roles: guest roles started in its own boot, judged with it
    passthrough: Passthrough | None = None   # guest roles: a PCI device dom0 passes to it
    kernels_per_boot: int = 0     # guest roles: guest kernels one shared boot hosts (0: the harness's)

    @property
    def is_guest(self) -> bool:
        return self.where != "host"

    @property
    def own_boot(self) -> bool:
        """A guest role Xen boots on its own, under dom0: one with a device passed
        through (its device and its machine are nobody else's)."""
        return self.passthrough is not None

    @property
    def marks(self) -> dict[str, str]:
        return dict(self.milestones)

    @property
    def dom0_mode(self) -> str | None:
        """How dom0 runs in this role's boot: "PVH" for a host role Xen boots with
        dom0=pvh, else "PV" (guests run under the PV dom0); None off Xen."""
        if not self.xen:
            return None
        return "PVH" if not self.is_guest and "dom0=pvh" in self.xen_cmdline.split() else "PV"


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
    qemu: str | None = None       # the QEMU device (kind "device") that emulates it
    slot: str | None = None
    bound: str | None = None      # the driver the machine's own dump shows in use

    @property
    def pci_class_code(self) -> str:
        """Base class and subclass as lspci writes them, e.g. "0604"."""
        return f"{self.pci_class:02x}{self.subclass:02x}"

    @property
    def ids(self) -> str:
        """vendor:device[ subvendor:subdevice], as lspci -nn writes them."""
        text = f"{self.vendor:04x}:{self.device:04x}"
        if self.subvendor is not None:
            text += f" {self.subvendor:04x}:{_hex(self.subdevice, 4).lower()}"
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
        if self.bound:
            lines.append(f"bound = {_quote(self.bound)}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class QemuDevice:
    """A device QEMU emulates: how the boot harness plugs it in, and the PCI
    function it presents (None when not measured)."""
    name: str
    kind: str                     # nic / storage / other
    props: str = ""               # extra properties of the device ({drive}, {id}, {n})
    attach: str = ""              # a child device carrying the disk
    pci: PciDevice | None = None
    modules: tuple[str, ...] = ()  # what drives the child (no PCI alias names it)


@dataclass(frozen=True)
class HardwareProfile:
    """A named set of PCI devices."""
    name: str
    description: str = ""
    devices: tuple[PciDevice, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", tuple(self.devices))

    def to_toml(self) -> str:
        head = f"name = {_quote(self.name)}\ndescription = {_quote(self.description)}\n"
        return head + "".join("\n" + d.to_toml() for d in self.devices)

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "devices": [asdict(d) for d in self.devices]}

    @property
    def qemu_devices(self) -> list[str]:
        """The QEMU devices that emulate the profile's devices (those that have one)."""
        return [d.qemu for d in self.devices if d.qemu]


@dataclass(frozen=True)
class BuiltinDriver:
    """A driver's config symbol and the PCI id patterns of its device table."""
    name: str
    symbol: str            # without CONFIG_
    pci_aliases: tuple[str, ...]
    source: str = ""       # hand-kept (no module to read them from): where the ids come from


@dataclass(frozen=True)
class DriverlessClass:
    """A PCI class whose functions pose no driver-coverage question (listed
    apart from a machine's coverage, data/driverless-classes.toml)."""
    code: str              # base class and subclass, e.g. "0600"
    name: str
    why: str


@dataclass(frozen=True)
class Death:
    """One way a kernel or Xen announces a death on the console (data/deaths.toml)."""
    name: str
    kind: str              # panic, oops (the kernel's), xen, domain (on "(XEN)" lines)
    pattern: str           # a regular expression searched in a line's text
    source: str            # where the message is printed
    example: str


DEATH_KINDS = ("panic", "oops", "xen", "domain", "halt")
LIFECYCLES = ("save", "migrate")   # a guest role's lifecycle (roles.toml)


def _hex(value: int | None, width: int) -> str:
    return UNKNOWN * width if value is None else f"{value:0{width}X}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- record makers: (name, entry, context) -> record ------------------------
# context: the whole file for a file kind, the file's path for a folder kind.

def _suite(name: str, e: dict, f: dict) -> Suite:
    return Suite(name, e["components"], e.get("apt_options", ""))


def _toolchain(name: str, e: dict, f: dict) -> Toolchain:
    return Toolchain(name, e["suite"], e["compiler"],
                     tuple(f.get("common_packages", []) + [e["compiler"]] + e.get("packages", [])),
                     e["min_version"], e["max_version"])


def _xen(name: str, e: dict, f: dict) -> XenRelease:
    e = {**f.get("defaults", {}), **e}
    return XenRelease(name, e["package"], e["utils"], e["suite"], e["cmdline"],
                      e.get("device_model", "qemu-system-xen"),
                      tuple(e.get("support", {}).items()), tuple(e.get("not_run", {}).items()))


def _role(name: str, r: dict, f: dict) -> Role:
    return Role(name=name, xen=r["xen"], where=r["where"], expect=tuple(r["expect"]),
                deadline_s=float(r["deadline_s"]), init=r.get("init"), needs=r.get("needs"),
                guest_type=r.get("guest_type"), memory_mb=r.get("memory_mb", 0),
                dom0_mb=r.get("dom0_mb", 0), guest_mb=r.get("guest_mb", 0),
                toolstack_errors=tuple(r.get("toolstack_errors", ())),
                capability=r.get("capability"), cmdline=r.get("cmdline", ""),
                modules=tuple(r.get("modules", ())),
                milestones=tuple(r.get("milestones", {}).items()), timed_by=r.get("timed_by"),
                lifecycle=_lifecycle(name, r), order=_order(name, r, f), xen_cmdline=r.get("xen_cmdline", ""),
                dom0_packages=tuple(r.get("dom0_packages", ())), hosts=_hosts(name, r),
                passthrough=_passthrough(name, r), kernels_per_boot=r.get("kernels_per_boot", 0))


def _passthrough(name: str, r: dict) -> Passthrough | None:
    """A guest role's passed-through device: a QEMU device and an IOMMU the catalog knows."""
    p = r.get("passthrough")
    if p is None:
        return None
    if r["where"] == "host" or r.get("guest_type") != "pv":
        raise UserError(f"roles.toml: role {name}: passthrough is for a PV guest role")
    get("device", p["device"], hint=f"roles.toml: role {name}: passthrough")
    get("iommu", p.get("iommu", "none"), hint=f"roles.toml: role {name}: passthrough")
    return Passthrough(p["device"], int(p["slot"]), p["backend"], p.get("iommu", "none"),
                       tuple(p.get("cannot", ())))


def _iommu(name: str, e: dict, f: dict) -> Iommu:
    if e.get("profile"):
        get("hardware", e["profile"], hint=f"iommus.toml: iommu {name}: profile")
    return Iommu(name, e["machine"], e.get("device", ""), e.get("xen_cmdline", ""),
                 e.get("note", ""), e.get("profile", ""))


def _hosts(name: str, r: dict) -> tuple[str, ...]:
    """The guest roles a host role starts in its own boot (dom0-pvh: a PV and a PVH guest)."""
    hosts = tuple(r.get("hosts", ()))
    if hosts and r["where"] != "host":
        raise UserError(f"roles.toml: role {name}: only a host role hosts guests ({hosts})")
    return hosts


def _lifecycle(name: str, r: dict) -> str | None:
    """A guest role's lifecycle; a guest's name keys dom0's plan.env (CMDLINE_NAME,
    LIFE_NAME), so it must be a shell identifier."""
    life = r.get("lifecycle")
    if r["where"] != "host" and not r["where"].isidentifier():
        raise UserError(f"roles.toml: role {name}: guest name {r['where']!r} must be a shell "
                        "identifier (dom0's plan.env keys)")
    if life is not None and (life not in LIFECYCLES or r["where"] == "host"):
        raise UserError(f"roles.toml: role {name}: lifecycle {life!r} is not one of "
                        f"{', '.join(LIFECYCLES)} on a guest role")
    return life


def _order(name: str, r: dict, f: dict) -> int:
    """A lifecycle role's place in the chain of steps run on one guest: the roles
    sharing a guest name (`where`) are one guest, its plain role's boot first, then
    its lifecycle roles by `order`. They must agree on the guest and differ in step."""
    order = r.get("order", 0)
    if bool(r.get("lifecycle")) != bool(order) or not isinstance(order, int) or order < 0:
        raise UserError(f"roles.toml: role {name}: a lifecycle role needs an order (1, 2, ...) "
                        f"and only a lifecycle role has one (order {order!r})")
    for other, o in f.get("role", {}).items():
        if other == name or o.get("where") != r["where"] or r["where"] == "host":
            continue
        same = ("guest_type", "cmdline", "passthrough")
        if any(o.get(k) != r.get(k) for k in same) or r.get("passthrough"):
            raise UserError(f"roles.toml: role {name}: shares guest {r['where']!r} with {other} "
                            f"but not its {', '.join(same[:2])} (or passes a device through)")
        if bool(order) == bool(o.get("order")) and (not order or order == o.get("order")
                                                    or r.get("lifecycle") == o.get("lifecycle")):
            raise UserError(f"roles.toml: role {name}: shares guest {r['where']!r} with {other}: "
                            "one plain role and lifecycle roles of distinct steps and orders")
    return order


def _qemu_device(name: str, e: dict, f: dict) -> QemuDevice:
    pci = _pci(e, name, qemu=name) if "vendor" in e else None
    return QemuDevice(name, e["kind"], e.get("props", ""), e.get("attach", ""), pci,
                      tuple(e.get("modules", ())))


def _driver(name: str, e: dict, f: dict) -> BuiltinDriver:
    return BuiltinDriver(name, e["config"], tuple(e["aliases"]), e.get("source", ""))


def _driverless(code: str, e: dict, f: dict) -> DriverlessClass:
    return DriverlessClass(code.lower(), e["name"], e["why"])


def _death(name: str, e: dict, f: dict) -> Death:
    if e["kind"] not in DEATH_KINDS:
        raise UserError(f"deaths.toml: death {name}: kind {e['kind']!r} is not one of "
                        f"{', '.join(DEATH_KINDS)}")
    return Death(name, e["kind"], e["pattern"], e["source"], e["example"])


def _pci(e: dict, default_name: str, qemu: str | None) -> PciDevice:
    return PciDevice(name=e.get("name", default_name), vendor=e["vendor"], device=e["device"],
                     pci_class=e["class"], subclass=e["subclass"], subvendor=e.get("subvendor"),
                     subdevice=e.get("subdevice"), prog_if=e.get("prog_if"), qemu=qemu,
                     slot=e.get("slot"), bound=e.get("bound"))


PCI_KEYS = ("name", "vendor", "device", "subvendor", "subdevice", "class", "subclass", "prog_if")


def _profile_device(entry: dict, path: Path, index: int) -> PciDevice:
    """A profile's device; `qemu = NAME` brings that QEMU device's ids (the
    entry's own keys win). An unknown QEMU device is an error."""
    qemu = entry.get("qemu")
    base = {}
    if qemu is not None:
        get("device", qemu, hint=f"in {path}, device {index}")
        base = {k: v for k, v in _file("device")["device"][qemu].items() if k in PCI_KEYS}
    try:
        return _pci({**base, **entry}, f"device {index}", qemu)
    except KeyError as exc:
        raise UserError(f"{path}: device {index} lacks {exc.args[0]!r}") from None


def _profile(stem: str, data: dict, path: Path) -> HardwareProfile:
    devices = [_profile_device(e, path, i) for i, e in enumerate(data.get("device", []))]
    return HardwareProfile(data.get("name", stem), data.get("description", ""), devices, str(path))


# -- the loader -----------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    noun: str                     # how an error names it
    path: str                     # under DATA: a TOML file, or a folder of TOML files
    make: Callable[..., Any]
    table: str = ""               # a file kind's table of records


KINDS: dict[str, Kind] = {
    "toolchain": Kind("toolchain", "toolchains.toml", _toolchain, "toolchain"),
    "suite": Kind("Debian suite", "suites.toml", _suite, "suites"),
    "xen": Kind("Xen version", "xen.toml", _xen, "xen"),
    "role": Kind("role", "roles.toml", _role, "role"),
    "device": Kind("QEMU device", "devices.toml", _qemu_device, "device"),
    "hardware": Kind("hardware profile", "hardware", _profile),
    "driver": Kind("built-in driver", "builtin-drivers.toml", _driver, "driver"),
    "death": Kind("death message", "deaths.toml", _death, "death"),
    "driverless": Kind("driverless PCI class", "driverless-classes.toml", _driverless, "class"),
    "iommu": Kind("IOMMU", "iommus.toml", _iommu, "iommu"),
}


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise UnknownName("catalog kind", kind, KINDS)
    return KINDS[kind]


def read_toml(path: Path, what: str) -> dict:
    """A TOML file's data; unreadable or malformed is the input's fault."""
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: not a readable {what} ({exc})") from None


@lru_cache(maxsize=None)
def _file(kind: str) -> dict:
    k = _kind(kind)
    return read_toml(DATA / k.path, k.noun)


@lru_cache(maxsize=None)
def _records(kind: str) -> dict[str, Any]:
    k = _kind(kind)
    root = DATA / k.path
    if root.is_dir():
        return {p.stem: k.make(p.stem, read_toml(p, k.noun), p) for p in sorted(root.glob("*.toml"))}
    data = _file(kind)
    try:
        return {name: k.make(name, e, data) for name, e in data.get(k.table, {}).items()}
    except KeyError as exc:
        raise UserError(f"{root}: a {k.noun} lacks {exc.args[0]!r}") from None


def all(kind: str) -> dict[str, Any]:          # noqa: A001 (the catalog's own verb)
    """Every record of KIND by name, in the data's order."""
    return dict(_records(kind))


def names(kind: str) -> list[str]:
    return list(_records(kind))


def get(kind: str, name: str, hint: str = "") -> Any:
    """The record NAME of KIND, or UnknownName listing the known ones (and HINT)."""
    records = _records(kind)
    if name not in records:
        raise UnknownName(_kind(kind).noun, name, records, hint)
    return records[name]


def default(kind: str) -> Any:
    """The record a kind's file names as its `default` (e.g. the Xen release)."""
    return get(kind, _file(kind)["default"])


def mirror(etc: Path = HOST_APT) -> str:
    """The Debian archive mirror in effect: the settings' (--mirror, or the
    spec's key), else the one the host's apt sources under ETC use."""
    return settings.current().mirror or host_mirror(names("suite"), etc)


def host_role(xen: bool) -> Role:
    """The role whose kernel QEMU boots directly: under Xen (it hosts the guest
    roles) or on bare metal. The first in roles.toml; another Xen host role
    (dom0-pvh) is a boot of its own with the guests it `hosts`."""
    return next(r for r in _records("role").values() if not r.is_guest and r.xen == xen)


def xen_host_roles() -> list[Role]:
    """Every role Xen boots as dom0 (dom0, dom0-pvh), the main one first."""
    return [r for r in _records("role").values() if not r.is_guest and r.xen]


def xen_boots(xen_roles: Sequence[str]) -> list[list[str]]:
    """The Xen boots XEN_ROLES take: dom0 with the guest roles in one, and each
    other host role (dom0-pvh, which starts the guests it `hosts`) and each guest
    with a device passed through (under dom0) in its own."""
    others = [r.name for r in xen_host_roles()[1:]]
    others += [r.name for r in _records("role").values() if r.is_guest and r.own_boot]
    boots = [[r for r in xen_roles if r not in others]] + [[r] for r in xen_roles if r in others]
    return [b for b in boots if b]


def dom0_packages(roles: Sequence[Role], release: XenRelease) -> tuple[str, ...]:
    """The extra dom0 userspace packages ROLES need under RELEASE (none: the plain image)."""
    names = (p.format(device_model=release.device_model) for r in roles for p in r.dom0_packages)
    return tuple(sorted(set(names)))


def not_run(release: XenRelease, role: str) -> str | None:
    """Why RELEASE cannot run ROLE (xen.toml `not_run`), or None."""
    return dict(release.not_run).get(role)


def profile(name_or_path: str | Path, roots: Sequence[Path] | None = None) -> HardwareProfile:
    """A shipped hardware profile by name, or a profile TOML file by path; with
    ROOTS (a spec's), the file must lie inside one of them."""
    path = Path(name_or_path)
    if path.is_file() and not (DATA / "hardware" / f"{name_or_path}.toml").is_file():
        confined(path, roots, "hardware profile", str(name_or_path))
        return _profile(path.stem, read_toml(path, "hardware profile"), path)
    return get("hardware", str(name_or_path), hint="or give a TOML file")


# -- listing (`pvmatrix list`) ----------------------------------------------

Row = Callable[[object], tuple]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _xen_row(x: XenRelease) -> tuple:
    mark = " (default)" if x.name == default("xen").name else ""
    return (x.name + mark, x.package, x.utils, x.suite, x.cmdline)


# what `pvmatrix list` takes -> (catalog kind, headers, row of a record)
TABLES: dict[str, tuple[str, list[str], Row]] = {
    "roles": ("role", ["role", "xen", "where", "needs", "capability", "cmdline", "modules",
                       "deadline s"],
              lambda r: (r.name, _yes(r.xen), r.where, r.needs or "-", r.capability or "-",
                         r.cmdline, " ".join(r.modules) or "-", f"{r.deadline_s:g}")),
    "xen": ("xen", ["xen", "package", "toolstack", "dom0 suite", "Xen command line"], _xen_row),
    "toolchains": ("toolchain", ["toolchain", "suite", "compiler", "kernels", "image"],
                   lambda t: (t.name, t.suite, t.compiler, f"{t.min_version} - {t.max_version}",
                              t.image)),
    "hardware": ("hardware", ["profile", "devices", "description"],
                 lambda p: (p.name, len(p.devices), p.description)),
    "suites": ("suite", ["suite", "components"], lambda s: (s.name, s.components)),
    "devices": ("device", ["device", "kind", "ids", "PCI function"],
                lambda d: (d.name, d.kind, d.pci.ids if d.pci else "-",
                           d.pci.name if d.pci else "-")),
    "drivers": ("driver", ["driver", "config", "PCI aliases"],
                lambda d: (d.name, f"CONFIG_{d.symbol}", len(d.pci_aliases))),
    "deaths": ("death", ["death", "kind", "pattern", "example"],
               lambda d: (d.name, d.kind, d.pattern, d.example)),
}


def table(what: str) -> str:
    """The catalog WHAT (a key of TABLES) as a plain-text table (`pvmatrix list WHAT`)."""
    from tabulate import tabulate
    kind, headers, row = TABLES[what]
    return tabulate([row(r) for r in all(kind).values()], headers=headers)
