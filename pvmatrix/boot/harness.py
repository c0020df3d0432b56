"""Booting cells: one QEMU boot for bare metal, one shared Xen boot for dom0
and every requested domU role. Each requested role becomes a Cell whose
verdict comes from the serial log (see verdicts.py)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import PvmError
from . import devices as devmod
from . import initramfs, provenance, qemu, reproduce, roles, rundirs, userspace
from .kernel import Kernel
from .markers import Line, crash_signs, matches
from .verdicts import BootOutcome, Verdict, hardware, judge_guest, judge_host
from .xen import hypervisor

GUEST_SLACK_S = 20        # per boot: dom0's own shutdown, relaying logs
# A guest that crashes is started once more (sequential mode), and passes as flaky:
# under QEMU's nested SVM a PVH guest sometimes triple-faults on a VM exit.
# The verdict says so, and the first attempt stays in the log.
RETRIES = 1


@dataclass
class Boot:
    """One QEMU run: where its files are and what it cost."""
    kind: str                  # "baremetal" or "xen"
    dir: Path
    accel: str
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    timed_out: bool = False
    exit_code: int | None = None
    stopped_by: str = ""
    marks: dict[str, float] = field(default_factory=dict)   # milestones, s since start
    provenance: dict = field(default_factory=dict)   # QEMU version, Xen build, dom0 userspace
    script: str = ""           # qemu.sh: the boot as a plain shell script (reproduce.py)

    @property
    def serial(self) -> Path:
        return self.dir / "serial.log"


@dataclass
class Cell:
    """One matrix cell: a role of a kernel under a Xen version on some hardware."""
    role: str
    kernel: str
    xen: str | None
    hardware: list[str]
    verdict: Verdict
    seconds: float | None          # the role's own time (see README: Booting)
    boot: Boot
    devices: dict[str, dict] = field(default_factory=dict)   # host roles: device -> driver...

    def to_dict(self) -> dict:
        d = asdict(self)
        d["boot"]["dir"] = str(self.boot.dir)
        return d


def _say(msg: str) -> None:
    print(f"pvmatrix: {msg}", file=sys.stderr, flush=True)


def _host_crash(line: Line) -> bool:
    signs = crash_signs([line])
    return line.region == "host" and bool(signs["xen"] or signs["panic"])


def _device_modules(kernel: Kernel, devs: list[devmod.Device], profile) -> list[str] | None:
    """Modules to ship: all when the tree is small, else what drives the devices
    (by the analyzer's alias matching, when it is available)."""
    if kernel.modules is None or initramfs.tree_mb(kernel) <= initramfs.SELECT_ABOVE_MB:
        return None
    names: list[str] = []
    try:
        from ..analyze.coverage import cover_device
        from ..analyze.hardware import load_profile, profile_names
        from ..analyze.kconfig import read_config
        from ..analyze.modules import scan_modules
        scan = scan_modules(kernel.modules)
        config = read_config(kernel.config) if kernel.config else None
        if profile is None:       # plain device names: their PCI ids from any shipped profile
            known = {d.qemu: d for n in profile_names() for d in load_profile(n).devices if d.qemu}
            pci = [known[x.name] for x in devs if x.name in known]
        else:
            pci = list(profile.devices)
        for d in pci:
            cov = cover_device(d, config, scan)
            if cov.module_path:
                names.append(cov.module_path)
        if any(x.kind == "storage" for x in devs):
            names += list(initramfs.STORAGE_CLASS_MODULES)
    except Exception as exc:        # analyzer missing or failing: say so, ship less
        _say(f"module selection by alias unavailable ({exc}); shipping role modules only")
    return names


def _marks(lines: list[Line], patterns: dict[str, str]) -> dict[str, float]:
    out = {}
    for name, pat in patterns.items():
        hit = next((ln for ln in lines if ln.region == "host" and matches(ln.fields, pat)
                    and ln.seen_s is not None), None)
        if hit:
            out[name] = hit.seen_s
    return out


def _started(run: qemu.Run) -> None:
    """A QEMU that exits with an error before the guest wrote a line never
    started: the harness's fault (broken), not the kernel's."""
    if run.exit_code not in (0, None) and not any(ln.text.strip() for ln in run.lines):
        why = "; ".join(run.stderr_tail[-2:]) or "no message"
        raise PvmError(f"QEMU could not start (exit {run.exit_code}): {why}")


def boot_baremetal(kernel: Kernel, devs: list[devmod.Device], profile=None,
                   accel: qemu.Accel | None = None, deadline_s: float | None = None) -> Cell:
    """KERNEL booted directly; DEADLINE_S overrides the role's deadline."""
    role = roles.get("baremetal")
    accel = accel or qemu.probe_accel()
    qemu.check_memory(role.memory_mb, f"baremetal boot of {kernel.label}")
    d = rundirs.new("baremetal")
    nonce = secrets.token_hex(4)
    initrd = initramfs.probe(d / "initrd.gz", role.init, kernel, _device_modules(kernel, devs, profile))
    cmd = qemu.command(accel, role.memory_mb, d / "serial.log", kernel.image,
                       "console=ttyS0,115200 panic=1 rdinit=/init", str(initrd),
                       devmod.qemu_args(devs, d, nonce))
    script = reproduce.write(d / "qemu.sh", f"bare metal boot of {kernel.label}", cmd,
                             d / "serial.log", role.deadline_s,
                             [("host", p) for p in role.expect])
    _say(f"booting {kernel.label} on bare metal ({accel.name})")
    run = qemu.run(cmd, d / "serial.log", deadline_s or role.deadline_s,
                   stop=lambda ln: matches(ln.fields, "stage=done") and ln.region == "host",
                   crash=_host_crash)
    _started(run)
    boot = Boot("baremetal", d, accel.name, run.wall_s, run.peak_rss_mb, run.timed_out,
                run.exit_code, run.stopped_by, _marks(run.lines, {"init": "stage=init",
                                                                  "done": "stage=done"}),
                provenance.qemu_facts(accel.name), str(script))
    outcome = BootOutcome(run.timed_out, run.exit_code, run.wall_s, run.stderr_tail)
    verdict = judge_host(role, run.lines, outcome)
    verdict.seconds = boot.marks.get("done", run.wall_s)
    cell = Cell("baremetal", kernel.label, None, [x.name for x in devs], verdict, verdict.seconds,
                boot, _hardware(run.lines, devs, nonce))
    _finish(d, [cell])
    return cell


def _hardware(lines: list[Line], devs: list[devmod.Device], nonce: str) -> dict[str, dict]:
    hw = hardware(lines, {x.name: x.pci for x in devs})
    for x in devs:
        if x.kind == "storage":
            token = x.disk_token(nonce)
            hw[x.name]["disk_read"] = any(b["data"] == token for b in hw[x.name]["block"])
    return hw


def boot_xen(kernel: Kernel, wanted: list[str], xen_version: str = "4.17",
             devs: list[devmod.Device] | None = None, guest_kernel: Kernel | None = None,
             profile=None, accel: qemu.Accel | None = None, parallel: bool = False,
             deadline_s: float | None = None) -> list[Cell]:
    """One Xen boot: KERNEL as dom0, then a domU per requested guest role
    (DEADLINE_S overrides the boot's deadline)."""
    devs = devs if devs is not None else devmod.plan()
    dom0 = roles.get("dom0")
    guests = [roles.get(r) for r in wanted if roles.get(r).is_guest]
    guest_kernel = guest_kernel or kernel
    accel = accel or qemu.probe_accel()
    qemu.check_memory(dom0.memory_mb, f"Xen boot of {kernel.label}")
    xen = hypervisor(xen_version)
    base = userspace.dom0_initramfs(xen)
    d = rundirs.new("xen")
    nonce = secrets.token_hex(4)
    guest_deadline = max((g.deadline_s for g in guests), default=0)
    plan = {"NONCE": nonce, "PARALLEL": "1" if parallel else "0", "RETRIES": str(RETRIES),
            "GUEST_MB": str(max((g.guest_mb for g in guests), default=128)),
            "GUEST_DEADLINE": str(int(guest_deadline)),
            "XL_DEBUG": os.environ.get("PVMATRIX_XL_DEBUG", ""),
            "GUESTS": " ".join(f"{g.where}:{g.guest_type}:{i}" for i, g in enumerate(guests, 1))}
    guest_initrd = None
    if guests:
        guest_initrd = initramfs.probe(d / "guest-initrd.gz", "guest-init.sh", guest_kernel,
                                       list(initramfs.GUEST_MODULES))
    wanted_mods = _device_modules(kernel, devs, profile)
    if wanted_mods is not None:
        wanted_mods += list(initramfs.DOM0_MODULES)
    overlay = initramfs.dom0_overlay(d / "overlay.cpio", kernel, guest_kernel, guest_initrd, plan,
                                     wanted_mods)
    initrd = initramfs_concat(base, overlay, d / "initrd.cpio")
    dom0_image = d / "dom0-kernel"       # decompressed here: Xen would do it under TCG
    dom0_image.write_bytes(initramfs.elf_image(kernel))
    xen_args = f"{roles.xen_args()} dom0_mem={dom0.dom0_mb}M,max:{dom0.dom0_mb}M"
    dom0_args = "console=hvc0 earlyprintk=xen loglevel=5 panic=1"
    modules = f"{qemu.esc(dom0_image)} {qemu.esc(dom0_args)},{qemu.esc(initrd)}"
    cmd = qemu.command(accel, dom0.memory_mb, d / "serial.log", xen.binary, xen_args, modules,
                       devmod.qemu_args(devs, d, nonce))
    deadline = dom0.deadline_s + GUEST_SLACK_S + (guest_deadline if parallel
                                                  else guest_deadline * len(guests) * (1 + RETRIES))
    checks = [("host", p) for p in dom0.expect]
    checks += [(g.where, p.format(disk=f"PVMDISK-{g.where}-{nonce}")) for g in guests
               for p in g.expect]
    script = reproduce.write(d / "qemu.sh", f"Xen {xen.version} boot with {kernel.label} as dom0"
                             + "".join(f", {g.name}" for g in guests), cmd, d / "serial.log",
                             deadline, checks, {initrd: [base, overlay]})
    facts = {**provenance.qemu_facts(accel.name), "xen": provenance.xen_build(xen),
             "dom0_userspace": provenance.userspace_image(base)}
    _say(f"booting Xen {xen.version} with {kernel.label} as dom0"
         + (f" and {', '.join(g.name for g in guests)}" if guests else "") + f" ({accel.name})")
    try:
        run = qemu.run(cmd, d / "serial.log", deadline_s or deadline,
                       stop=lambda ln: matches(ln.fields, "stage=done") and ln.region == "host",
                       crash=_host_crash)
    finally:
        initrd.unlink(missing_ok=True)     # big; qemu.sh concatenates it again (overlay kept)
    _started(run)
    marks = {"dom0_init": "stage=init", "toolstack": "check=xl-list", "done": "stage=done"}
    boot = Boot("xen", d, accel.name, run.wall_s, run.peak_rss_mb, run.timed_out, run.exit_code,
                run.stopped_by, _marks(run.lines, marks), facts, str(script))
    outcome = BootOutcome(run.timed_out, run.exit_code, run.wall_s, run.stderr_tail)
    dom0_verdict = judge_host(dom0, run.lines, outcome, [g.where for g in guests])
    dom0_verdict.seconds = boot.marks.get("toolstack")
    cells = []
    if "dom0" in wanted:
        cells.append(Cell("dom0", kernel.label, xen.version, [x.name for x in devs], dom0_verdict,
                          dom0_verdict.seconds, boot, _hardware(run.lines, devs, nonce)))
    for g in guests:
        subst = {"disk": f"PVMDISK-{g.where}-{nonce}"}
        v = judge_guest(g, run.lines, outcome, dom0_verdict, subst)
        cells.append(Cell(g.name, guest_kernel.label, xen.version, [], v, v.seconds, boot))
    _finish(d, cells)
    return cells


def initramfs_concat(base: Path, overlay: Path, dest: Path) -> Path:
    from .cpio import concat
    return concat([base, overlay], dest)


def _finish(d: Path, cells: list[Cell]) -> None:
    (d / "cells.json").write_text(json.dumps([c.to_dict() for c in cells], indent=2, default=str))


def run_cells(kernel: Kernel, wanted: list[str], xen_version: str = "4.17",
              device_names: list[str] | None = None, guest_kernel: Kernel | None = None,
              profile=None, parallel: bool = False, deadline_s: float | None = None) -> list[Cell]:
    """Every requested role of KERNEL: bare metal alone, Xen roles in one boot
    (DEADLINE_S, if given, overrides each boot's deadline)."""
    for name in wanted:
        roles.get(name)                       # unknown role: a clear error first
    devs = devmod.plan(device_names or list(devmod.DEFAULT))
    accel = qemu.probe_accel()
    cells = []
    if "baremetal" in wanted:
        cells.append(boot_baremetal(kernel, devs, profile, accel, deadline_s))
    xen_roles = [r for r in wanted if roles.get(r).xen]
    if xen_roles:
        cells += boot_xen(kernel, xen_roles, xen_version, devs, guest_kernel, profile, accel,
                          parallel, deadline_s)
    return cells
