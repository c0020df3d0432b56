"""`pvmatrix which --hardware DUMP`: which recorded kernel both drives a real
machine's storage and network devices and passes a role (dom0 by default),
answered from the runs under results/ (and their history) without booting.

A kernel is known by its identity (the records' `kernel_id`), whatever its
rows were called. Its static coverage of the machine comes from its own
files in the cache ($PVMATRIX_CACHE/debs/ID for a Debian package, the
folder of its packages unpacked together for a kernel split across several
(Debian 6.19 on: named by the parts' digests its source record lists),
artifacts/ID for a build): modules.alias (else the modules' own aliases) and
its config, scanned once per kernel identity into $PVMATRIX_CACHE/which/.

The published page's "for my machine" view ranks one run's kernels the same
way (in_run), their coverage read from the run's machine cells instead."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog
from ..analyze import coverage, machines
from ..analyze.hardware import HardwareProfile
from ..analyze.kconfig import KernelConfig, read_config
from ..analyze.modinfo import ModInfo
from ..analyze.modules import ModuleScan, read_builtin, scan_alias_file, scan_modules
from ..errors import PvmError, UserError
from ..kernel import in_dir
from ..paths import cache_dir, cache_root, write_whole
from ..results import history, store
from ..results.records import machine_of
from ..sources.facts import PackageFacts
from ..sources.packages import Prebuilt, unpacked_name

CLASSES = {0x01: "storage", 0x02: "network"}      # what a machine must have driven
SCAN_VERSION = 1                                   # of the cached per-kernel scan
INGESTED = ("source", "analyze")                   # the cells read besides the role's


@dataclass
class RoleVerdict:
    """One recorded verdict of the role for a kernel: the evidence shown."""
    run_id: str
    cell: str
    status: str
    reason: str
    xen: str | None
    started: float

    def line(self) -> str:
        xen = f" Xen {self.xen}" if self.xen else ""
        why = f": {self.reason[:100]}" if self.reason and self.status != "pass" else ""
        return f"{self.status}{xen} (run {self.run_id}, cell {self.cell}){why}"


@dataclass
class Kernel:
    """A recorded kernel (by identity) and what it says about the machine."""
    kernel_id: str
    names: list[str] = field(default_factory=list)       # its rows, the latest first
    release: str = ""
    verdicts: dict[str | None, RoleVerdict] = field(default_factory=dict)  # xen -> latest
    earlier: int = 0                                     # older passes (history, older runs)
    cover: coverage.MachineCoverage | None = None
    no_static: str = ""                                  # why there is no static coverage
    prebuilt: Prebuilt | None = None                     # its packages, from its source record

    @property
    def lacks(self) -> list[coverage.DeviceCoverage]:
        """The machine's storage and network devices the kernel has no driver for."""
        return [d for d in (self.cover.missing if self.cover else [])
                if d.device.pci_class in CLASSES]

    @property
    def passed(self) -> bool:
        return any(v.status == "pass" for v in self.verdicts.values())

    @property
    def ok(self) -> bool:
        return self.cover is not None and not self.lacks and self.passed

    def rank(self) -> tuple:
        covered = len(self.cover.counted) - len(self.cover.missing) if self.cover else -1
        booted = 0 if self.passed else 1 if not self.verdicts else 2
        latest = max((v.started for v in self.verdicts.values()), default=0)
        return (self.cover is None, len(self.lacks) + (not self.passed), -covered, booted, -latest)


@dataclass
class Answer:
    machine: HardwareProfile
    role: str
    xen: str | None
    kernels: list[Kernel]

    @property
    def fits(self) -> list[Kernel]:
        return sorted((k for k in self.kernels if k.ok), key=Kernel.rank)

    @property
    def misses(self) -> list[Kernel]:
        return sorted((k for k in self.kernels if not k.ok), key=Kernel.rank)


def which(dump: str, results: Path, role: str | None = None, xen: str | None = None) -> Answer:
    """The recorded kernels under RESULTS for the machine DUMP (an lspci dump, a
    /sys/bus/pci copy or a shipped machine's name) in ROLE (None: Xen's host
    role, dom0) under XEN (None: any)."""
    role = role or catalog.host_role(xen=True).name
    for flag, check in (("--role", lambda: catalog.get("role", role)),
                        ("--xen", lambda: xen is None or catalog.get("xen", xen)),
                        ("--hardware", lambda: machines.load(dump))):
        try:
            machine = check()
        except UserError as exc:
            raise UserError(f"{flag}: {exc}") from None
    kernels = recorded(results, role, xen)
    for k in kernels.values():
        try:
            scan, config = static(k.kernel_id, k.prebuilt)
            k.cover = coverage.machine(coverage.cover(machine, config, scan))
        except (PvmError, OSError) as exc:
            k.no_static = str(exc)
    return Answer(machine, role, xen, list(kernels.values()))


def recorded(results: Path, role: str, xen: str | None) -> dict[str, Kernel]:
    """Every kernel the runs under RESULTS analyzed, with its latest verdict of
    ROLE under each Xen release (XEN: that one only)."""
    kernels: dict[str, Kernel] = {}
    rows: dict[tuple[str, str], str] = {}            # (spec, row) -> kernel id, the latest
    for run in store.all_runs(results):
        _ingest(run.id, run.meta, run.records(parts=INGESTED + (role,)), kernels, rows, role, xen)
    _history(results, rows, kernels, role)
    return kernels


def _ingest(run_id: str, meta: dict, records: list[dict], kernels: dict[str, Kernel],
            rows: dict[tuple[str, str], str], role: str, xen: str | None) -> None:
    """One run's RECORDS into KERNELS: their rows, releases and verdicts of ROLE."""
    started = meta.get("started") or 0
    for rec in records:
        _packages(rec, kernels)
        c, kid = rec["cell"], (rec.get("inputs") or {}).get("kernel_id")
        if not kid:
            continue
        k = kernels.setdefault(kid, Kernel(kid))
        if c["kernel"] in k.names:
            k.names.remove(c["kernel"])
        k.names.insert(0, c["kernel"])
        rows[(meta.get("spec_name", ""), c["kernel"])] = kid
        if c["stage"] == "analyze" and c.get("device") is None and not k.release:
            k.release = rec["verdict"].get("reason", "").split(":")[0]
        if c["stage"] == "boot" and c.get("role") == role and xen in (None, c.get("xen")):
            v = rec["verdict"]
            old = k.verdicts.get(c.get("xen"))
            if old is not None and old.status == "pass":
                k.earlier += 1
            k.verdicts[c.get("xen")] = RoleVerdict(run_id, c["id"], v["status"],
                                                   v.get("reason", ""), c.get("xen"), started)


def in_run(run_id: str, meta: dict, records: list[dict], machine: str,
           role: str | None = None) -> Answer | None:
    """The answer for one run (a published page's "for my machine" view): its
    kernels for its machine column MACHINE, their coverage read from the run's
    machine cells (no cache needed), their verdicts of ROLE (None: dom0) from
    its boots. None when the run has no cell of MACHINE."""
    role = role or catalog.host_role(xen=True).name
    kernels: dict[str, Kernel] = {}
    _ingest(run_id, meta, records, kernels, {}, role, None)
    profile = None
    for rec in records:
        kid = (rec.get("inputs") or {}).get("kernel_id")
        if machine_of(rec["cell"]) != machine or kid not in kernels:
            continue
        profile = profile or machines.from_args(rec["task_def"]["args"]["profile"])
        if kernels[kid].cover is None:
            kernels[kid].cover = cover_of(rec, profile)
    if profile is None:
        return None
    for k in kernels.values():
        if k.cover is None:
            k.no_static = f"the run has no {machine} cell for it"
    return Answer(profile, role, None, [k for k in kernels.values() if k.names])


def cover_of(rec: dict, profile: HardwareProfile) -> coverage.MachineCoverage:
    """A machine cell's coverage of PROFILE, read back from the evidence
    machines.verdict gives it: a line per device, "DEVICE: why", noted
    missing, covered ("driver (status)") or apart."""
    said: dict[int, tuple[str, str]] = {}
    lines = [machines.device_line(coverage.DeviceCoverage(d, coverage.MISSING))
             for d in profile.devices]
    for e in rec["verdict"].get("evidence") or []:
        i = next((i for i, line in enumerate(lines)
                  if i not in said and e["text"].startswith(line + ": ")), None)
        if i is not None:
            said[i] = (e.get("note", ""), e["text"][len(lines[i]) + 2:])
    out = []
    for i, d in enumerate(profile.devices):
        note, why = said.get(i, ("missing", "the cell does not name it"))
        if note == "covered":
            driver, _, status = why.rpartition(" (")
            out.append(coverage.DeviceCoverage(d, status.rstrip(")"), driver))
        elif note == "apart":
            out.append(coverage.DeviceCoverage(d, coverage.MISSING, apart=why))
        else:
            out.append(coverage.DeviceCoverage(d, coverage.MISSING, evidence=why.split("; ")))
    return coverage.machine(out)


def _packages(rec: dict, kernels: dict[str, Kernel]) -> None:
    """A Debian kernel's packages, from the record of its source task (whose
    manifest names the kernel's identity and each part's digest)."""
    manifest = rec.get("manifest") or {}
    if rec["cell"]["stage"] != "source" or "package" not in manifest or "kernel_id" not in manifest:
        return
    k = kernels.setdefault(manifest["kernel_id"], Kernel(manifest["kernel_id"]))
    k.prebuilt = k.prebuilt or PackageFacts.from_dict(manifest).kernel


def _history(results: Path, rows: dict[tuple[str, str], str], kernels: dict[str, Kernel],
             role: str) -> None:
    """Older passes of the role the spec histories keep (their run folders
    pruned), counted for a row whose latest kept run is the same kernel."""
    folder = results / "history"
    kept = {r.id for r in store.all_runs(results)} if folder.is_dir() else set()
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for entry in history.load(results, path.stem):
            if entry.run_id in kept:
                continue
            for cell, status in entry.cells.items():
                parts = cell.split("/")
                kid = rows.get((path.stem, parts[0]))
                if kid and len(parts) > 1 and parts[1] == role and status == "pass":
                    kernels[kid].earlier += 1


# -- a kernel's static facts, once per identity -------------------------------

def kernel_tree(kernel_id: str, prebuilt: Prebuilt | None = None) -> Path:
    """Where the cache holds the files of the kernel KERNEL_ID, made of the
    packages PREBUILT when it is a Debian one (see the module doc)."""
    digest = kernel_id.removeprefix("sha256:")
    trees = [Path("debs") / digest]
    if prebuilt is not None:
        trees.append(Path("debs") / unpacked_name(prebuilt))
    for tree in [*trees, Path("artifacts") / digest]:
        if (cache_root() / tree).is_dir():
            return cache_root() / tree
    raise UserError(f"kernel {kernel_id[:23]}: its files are not in the cache "
                    f"({cache_root()}: debs/ or artifacts/)")


def static(kernel_id: str, prebuilt: Prebuilt | None = None) -> tuple[ModuleScan, KernelConfig | None]:
    """The kernel's PCI aliases and config, from the per-kernel cache file."""
    path = cache_dir("which") / f"{kernel_id.removeprefix('sha256:')}.json"
    try:
        data = json.loads(path.read_text())
        if data.get("version") != SCAN_VERSION:
            raise ValueError("another version")
    except (OSError, ValueError):
        data = _scan(kernel_tree(kernel_id, prebuilt))
        write_whole(path, json.dumps(data))
    scan = ModuleScan(Path(data["root"]), [ModInfo(f"{n} (modules.alias)", n, pci_aliases=a)
                                           for n, a in data["aliases"].items()],
                      set(data["builtin"]))
    config = KernelConfig(data["config_source"], data["config"]) if data["config"] else None
    return scan, config


def _scan(tree: Path) -> dict:
    files = in_dir(tree, str(tree))
    aliases: dict[str, list[str]] = {}
    builtin: set[str] = set()
    if files.modules is not None:
        alias_file = files.modules / "modules.alias"
        found = scan_alias_file(alias_file) if alias_file.is_file() else scan_modules(files.modules)
        aliases = {m.name: m.pci_aliases for m in found.modules if m.pci_aliases and not m.error}
        builtin = read_builtin(files.modules)
    config = read_config(files.config) if files.config else None
    return {"version": SCAN_VERSION, "root": str(files.modules or tree), "aliases": aliases,
            "builtin": sorted(builtin),
            "config_source": config.source if config else "",
            "config": {k: v for k, v in config.symbols.items() if v in ("y", "m")} if config else {}}


# -- the answer as text ---------------------------------------------------------

def wanted(machine: HardwareProfile) -> list:
    """MACHINE's storage and network devices that count (not listed apart)."""
    return [d for d in machine.devices
            if d.pci_class in CLASSES and coverage.driverless(d) is None]


def render(a: Answer, misses: int = 5) -> str:
    head = [f"machine {a.machine.name}: {len(a.machine.devices)} PCI functions, "
            f"{len(wanted(a.machine))} storage and network",
            f"role {a.role}" + (f" under Xen {a.xen}" if a.xen else "") + f"; "
            f"{len(a.kernels)} recorded kernel(s)", ""]
    out = head + [f"Kernels that drive every storage and network device and pass {a.role}:"]
    fits = a.fits
    out += [line for i, k in enumerate(fits, 1) for line in _kernel(i, k, a.role)] or ["  none"]
    out += ["", "Nearest misses:"]
    out += [line for i, k in enumerate(a.misses[:misses], 1) for line in _kernel(i, k, a.role)] \
        or ["  none"]
    return "\n".join(out)


@dataclass
class Lack:
    """A storage or network device a kernel has no driver for, in every slot it is in."""
    kind: str
    name: str
    pci_class: str
    ids: str
    slots: list[str]


def lacking(k: Kernel) -> list[Lack]:
    """K's lacks, the same device in several slots once."""
    alike: dict[tuple, list[str]] = {}
    for d in k.lacks:
        dev = d.device
        key = (CLASSES[dev.pci_class], dev.name, dev.pci_class_code, dev.ids)
        alike.setdefault(key, []).append(dev.slot or "?")
    return [Lack(*key, slots) for key, slots in alike.items()]


def _kernel(i: int, k: Kernel, role: str) -> list[str]:
    also = f"; also {', '.join(k.names[1:])}" if len(k.names) > 1 else ""
    cover = k.cover.summary if k.cover else f"static coverage unknown: {k.no_static}"
    lines = [f"  {i}. {k.names[0]} ({k.release or k.kernel_id[:19]}{also}): {cover}"]
    for lack in lacking(k):
        lines.append(f"     lacks a driver for {lack.kind} {lack.name} [{lack.pci_class}] "
                     f"[{lack.ids}] at {', '.join(lack.slots)}")
    if not k.verdicts:
        lines.append(f"     {role}: not booted")
    for v in sorted(k.verdicts.values(), key=lambda v: v.xen or ""):
        lines.append(f"     {role}: {v.line()}")
    if k.earlier:
        lines.append(f"     {role} passed in {k.earlier} earlier run(s) too")
    return lines
