"""Booting cells: one QEMU boot for bare metal, one shared Xen boot for dom0
and every requested domU role. Each requested role becomes a Cell whose
verdict comes from the serial log (see verdicts.py)."""

from __future__ import annotations


import json
import secrets
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from .. import settings
from .. import catalog
from ..errors import Interrupted, QemuDidNotStart, QemuKilled
from . import devices as devmod
from . import bootdisk, initramfs, pcap, provenance, qemu, reproduce, roles, rundirs, userspace
from ..kernel import Kernel
from .markers import Line, crash_signs, matches
from ..records import BLOCKED, BROKEN, Evidence, Verdict
from .verdicts import (EARLIER_STEP, BootOutcome, hardware, judge_device, judge_guest,
                       judge_host, judge_hosting, judge_passthrough, passthrough_facts)
from .xen import check as check_xen, hypervisor
from ..analyze.coverage import cover_device
from ..analyze.kconfig import read_config
from ..analyze.modules import scan_modules
from .cpio import concat

GUEST_SLACK_S = 20        # per boot: dom0's own shutdown, relaying logs
# Each guest kernel rides in dom0's initramfs, unpacked into a tmpfs of half of
# dom0's memory (its ELF up to initramfs.GUEST_ELF_MAX_MB, its initrd, an HVM
# guest's boot disk and dom0's copy of it): dom0 grows by this much per guest kernel past the first, and one
# hosted boot takes at most GUEST_KERNELS_MAX of them (more: another boot).
GUEST_KERNEL_MB = 64
GUEST_KERNELS_MAX = 8
# A guest that crashes is started once more (sequential mode), and passes as flaky:
# under QEMU's nested SVM a PVH guest sometimes triple-faults on a VM exit.
# The verdict says so, and the first attempt stays in the log.
RETRIES = 1
# the TCP port a lifecycle guest listens on for dom0's go-ahead after its save
# or migration (guest-init.sh: pvm.life=PORT)
LIFE_PORT = 7099


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
    guest: int = 0                 # a hosted boot: the guest kernel's number (Guest), from 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["boot"]["dir"] = str(self.boot.dir)
        d["verdict"] = self.verdict.to_dict()
        return d


def _say(msg: str) -> None:
    print(f"pvmatrix: {msg}", file=sys.stderr, flush=True)


def _host_done(line: Line) -> bool:
    """The host init's last word (stage=done), not a guest's."""
    return line.region == "host" and matches(line.fields, "stage=done")


def _host_crash(line: Line) -> bool:
    signs = crash_signs([line])
    return line.region == "host" and bool(signs["xen"] or signs["panic"] or signs["halt"])


def _device_modules(kernel: Kernel, devs: list[devmod.Device], profile) -> list[str] | None:
    """Modules to ship: all when the tree is small, else what drives the devices
    (by the analyzer's alias matching, when it is available)."""
    if not initramfs.selects_modules(kernel):
        return None
    names: list[str] = []
    try:
        if profile is None:       # plain device names: their PCI ids from the device catalog
            pci = [x.ids for x in devs if x.ids]
        else:
            pci = list(profile.devices)
        names += _driver_modules(kernel, pci)
        if any(x.kind == "storage" for x in devs):
            names += list(initramfs.STORAGE_CLASS_MODULES)
        names += [m for x in devs for m in x.modules]
    except Exception as exc:        # analyzer missing or failing: say so, ship less
        _say(f"module selection by alias unavailable ({exc}); shipping role modules only")
    return names


def _driver_modules(kernel: Kernel, pci: list) -> list[str]:
    """The module files of KERNEL the analyzer matches to the PCI devices PCI."""
    if kernel.modules is None:
        return []
    scan = scan_modules(kernel.modules)
    config = read_config(kernel.config) if kernel.config else None
    return [cov.module_path for d in pci if (cov := cover_device(d, config, scan)).module_path]


def _passthrough_modules(kernel: Kernel, devs: list[devmod.Device]) -> list[str]:
    """What drives the devices passed through to KERNEL's guests (shipped in the
    guest's initramfs, loaded there by modalias); none if it cannot be told."""
    try:
        return _driver_modules(kernel, [x.ids for x in devs if x.ids])
    except Exception as exc:        # analyzer missing or failing: the guest's probe says so
        _say(f"no driver module found for the passed-through device ({exc})")
        return []


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
        raise QemuDidNotStart(f"QEMU could not start (exit {run.exit_code}): {why}")


def _ended_by_kernel(run: qemu.Run, what: str, serial: Path) -> None:
    """A boot the harness stopped (an interrupt) or that QEMU ended by a signal or
    an error exit before the kernel said its last word (done or a death) says
    nothing of the kernel: Interrupted (not run) or QemuKilled (broken), never
    the kernel's fail. The kernel powering off, or panicking under -no-reboot,
    ends QEMU with status 0."""
    if run.interrupted:
        raise Interrupted(f"interrupted: {what} was stopped after {run.wall_s:.0f} s "
                          "(Ctrl-C, SIGTERM or SIGHUP)")
    if run.exit_code in (0, None) or run.stopped_by:
        return
    how = f"killed by {run.signal}" if run.signal else f"exited with status {run.exit_code}"
    why = "; ".join(run.stderr_tail[-2:])
    raise QemuKilled(f"QEMU was {how} after {run.wall_s:.0f} s of {what}, not by the kernel"
                     + (f" ({why})" if why else "") + f"; serial log: {serial}")


def baremetal_command(program: str, accel: qemu.Accel, role: roles.Role, image: Path,
                      initrd: Path, serial: Path, device_args: list[str]) -> list[str]:
    """The QEMU command line of a bare-metal boot of IMAGE."""
    return qemu.command(program, accel, role.memory_mb, serial, image, role.cmdline, str(initrd),
                        device_args)


def xen_command(program: str, accel: qemu.Accel, dom0: roles.Role, xen_binary: Path,
                xen_cmdline: str, dom0_image: Path, initrd: Path, serial: Path,
                device_args: list[str], iommu: catalog.Iommu | None = None) -> list[str]:
    """The QEMU command line of a Xen boot: Xen as the kernel, dom0 and its initrd as
    modules; IOMMU (a passthrough boot's, data/iommus.toml): its machine and device."""
    xen_args = f"{xen_cmdline} dom0_mem={dom0.dom0_mb}M,max:{dom0.dom0_mb}M"
    modules = f"{qemu.esc(dom0_image)} {qemu.esc(dom0.cmdline)},{qemu.esc(initrd)}"
    first = ["-device", iommu.device] if iommu and iommu.device else []
    return qemu.command(program, accel, dom0.memory_mb, serial, xen_binary, xen_args, modules,
                        first + device_args, machine=iommu.machine if iommu else "pc")


def boot_baremetal(kernel: Kernel, devs: list[devmod.Device], profile=None,
                   accel: qemu.Accel | None = None, deadline_s: float | None = None) -> Cell:
    """KERNEL booted directly; DEADLINE_S overrides the role's deadline."""
    role = roles.host(xen=False)
    accel = accel or qemu.probe_accel()
    qemu.check_memory(role.memory_mb, f"{role.name} boot of {kernel.label}")
    d = rundirs.new(role.name)
    nonce = secrets.token_hex(4)
    initrd = initramfs.probe(d / "initrd.gz", role.init, kernel, _device_modules(kernel, devs, profile))
    role = replace(role, cmdline=f"{role.cmdline} pvm.nonce={nonce}")   # lib.sh: pvm_nonce
    cmd = baremetal_command(qemu.checked_binary(), accel, role, kernel.image, initrd,
                            d / "serial.log", devmod.qemu_args(devs, d, nonce))
    script = reproduce.write(d / "qemu.sh", f"bare metal boot of {kernel.label}", cmd,
                             d / "serial.log", role.deadline_s,
                             [("host", p) for p in role.expect])
    _say(f"booting {kernel.label} on bare metal ({accel.name})")
    run = qemu.run(cmd, d / "serial.log", deadline_s or role.deadline_s,
                   stop=_host_done,
                   crash=_host_crash)
    _started(run)
    _ended_by_kernel(run, f"the bare-metal boot of {kernel.label}", d / "serial.log")
    boot = Boot(role.name, d, accel.name, run.wall_s, run.peak_rss_mb, run.timed_out,
                run.exit_code, run.stopped_by, _marks(run.lines, role.marks),
                provenance.qemu_facts(accel.name), str(script))
    outcome = BootOutcome(run.timed_out, run.exit_code, run.wall_s, run.stderr_tail)
    verdict = judge_host(role, run.lines, outcome)
    verdict.seconds = boot.marks.get(role.timed_by, run.wall_s)
    cell = Cell(role.name, kernel.label, None, [x.name for x in devs], verdict, verdict.seconds,
                boot, _hardware(run.lines, devs, nonce, d))
    _finish(d, [cell])
    return cell


def _hardware(lines: list[Line], devs: list[devmod.Device], nonce: str,
              workdir: Path) -> dict[str, dict]:
    """Per device: its probe facts, whether its disk was read and (a NIC) whether
    QEMU's dump of it holds the probe's frame, and its booted verdict (ok, reason)."""
    hw = hardware(lines, {x.name: x.pci for x in devs})
    for x in devs:
        h = hw[x.name]
        if x.has_disk:
            token = x.disk_token(nonce)
            h["disk_read"] = any(b["data"] == token for b in h["block"])
        if x.kind == "nic":
            _frame(h, x, workdir, devmod.frame_token(nonce))
        h["ok"], h["reason"] = judge_device(x.kind, x.has_disk, h)
    return hw


def _frame(hw: dict, dev: devmod.Device, workdir: Path, token: str) -> None:
    """Into HW (a NIC's probe facts): whether QEMU's dump of DEV holds a frame
    carrying TOKEN, and where (frame, frame_evidence)."""
    dump = dev.pcap(workdir)
    seen = pcap.carrying(dump, token)
    hw["frame"] = seen is not None
    hw["frame_evidence"] = (f"{dump.name} frame {seen.no} from {seen.source}" if seen
                            else f"no frame carrying {token} in {dump.name}")


def xen_host(wanted: list[str]) -> roles.Role:
    """The role Xen boots the kernel as: a host role among WANTED (dom0-pvh), else dom0."""
    hosts = [roles.get(r) for r in wanted if roles.get(r).xen and not roles.get(r).is_guest]
    return hosts[0] if hosts else roles.host(xen=True)


def xen_guests(host: roles.Role, wanted: list[str]) -> list[roles.Role]:
    """The guests a Xen boot starts: the requested guest roles and those HOST hosts."""
    names = [r for r in wanted if roles.get(r).is_guest] + list(host.hosts)
    return [roles.get(r) for r in dict.fromkeys(names)]


def xen_cmdline(release_cmdline: str, host: roles.Role, iommu: catalog.Iommu | None = None) -> str:
    """Xen's command line: the release's (data/xen.toml), the host role's additions
    and a passthrough boot's IOMMU's (data/iommus.toml)."""
    return " ".join(x for x in (release_cmdline, host.xen_cmdline,
                                iommu.xen_cmdline if iommu else "") if x)


def passed_through(guests: list[roles.Role]) -> dict[str, devmod.Device]:
    """The devices passed through to GUESTS, by guest name (roles.toml passthrough)."""
    return {g.where: devmod.passed_through(g.passthrough) for g in guests if g.passthrough}


def machine_devices(pts: dict[str, devmod.Device]) -> list[devmod.Device]:
    """The passed-through devices the machine has: each once, however many guests
    (a hosted boot's passthrough guest of each kernel) take it in turn."""
    return list(dict.fromkeys(pts.values()))


def boot_iommu(guests: list[roles.Role]) -> catalog.Iommu:
    """The machine of a boot with GUESTS: a passthrough guest's IOMMU (a boot of
    its own), else none (QEMU's pc machine, as every other boot)."""
    return catalog.get("iommu", next((g.passthrough.iommu for g in guests if g.passthrough),
                                     "none"))


def passthrough_token(nonce: str, guest: str) -> str:
    """The nonce a passthrough guest's frame carries: its own, apart from dom0's
    (dom0 may have sent one out of the same NIC before handing it over)."""
    return f"{nonce}-{guest}"


def mode_evidence(host: roles.Role, release: catalog.XenRelease, cmdline: str) -> list[Evidence]:
    """What a host role with a mode of its own (xen_cmdline) ran with: Xen's command
    line (e.g. dom0=pvh dom0-iommu=none) and Xen's support status of that mode."""
    if not host.xen_cmdline:
        return []
    ev = [Evidence(f"Xen command line: {cmdline}", "mode")]
    if status := dict(release.support).get(host.name):
        ev.append(Evidence(status, "Xen's support status"))
    return ev


def sized(dom0: roles.Role, guests: list[roles.Role], kernels: int = 1) -> roles.Role:
    """DOM0 with the memory its GUESTS need of it (a guest role's dom0_mb: an
    HVM guest's device model runs in dom0) and GUEST_KERNEL_MB for each guest
    kernel past the first (KERNELS of them), the machine grown by as much."""
    need = max([dom0.dom0_mb, *(g.dom0_mb for g in guests)]) \
        + GUEST_KERNEL_MB * max(0, kernels - 1)
    grow = need - dom0.dom0_mb
    return replace(dom0, dom0_mb=need, memory_mb=dom0.memory_mb + grow) if grow else dom0


@dataclass(frozen=True)
class Domain:
    """One guest dom0 runs: the guest roles riding on it (those sharing a guest
    name, roles.toml `where`), its boot first (the plain role), then each
    lifecycle role's step in order (roles.toml `order`)."""
    roles: tuple[roles.Role, ...]

    @property
    def name(self) -> str:
        return self.roles[0].where

    @property
    def guest_type(self) -> str | None:
        return self.roles[0].guest_type

    @property
    def steps(self) -> tuple[str, ...]:
        """Its lifecycle steps in order (LIFE_NAME in plan.env)."""
        return tuple(r.lifecycle for r in self.roles if r.lifecycle)

    @property
    def deadline_s(self) -> float:
        """Its time: each of its roles' (the boot, then each step's)."""
        return sum(r.deadline_s for r in self.roles)


def domains(guests: list[roles.Role]) -> list[Domain]:
    """GUESTS grouped into the domains dom0 runs, in order of first mention."""
    by_name: dict[str, list[roles.Role]] = {}
    for g in guests:
        by_name.setdefault(g.where, []).append(g)
    return [Domain(tuple(sorted(rs, key=lambda r: r.order))) for rs in by_name.values()]


@dataclass(frozen=True)
class Batch:
    """What a restored parked boot runs (hosted.py): the boot's description
    (WHAT), dom0's PLAN and the guests' FILES, the NONCE, the markers a reproducer
    checks (CHECKS), a whole boot's DEADLINE_S and the guests' own (GUESTS_S)."""
    what: str
    plan: dict[str, str]
    files: list[initramfs.GuestFiles]
    nonce: str
    checks: list[tuple[str, str]]
    deadline_s: float
    guests_s: float


# runs a Batch in a boot directory; returns the run (its lines the whole boot's)
# and the boot's reproducer; FACTS (provenance) may gain the snapshot's
Launch = Callable[[Path, Batch, dict], "tuple[qemu.Run, Path]"]


@dataclass
class Guest:
    """A guest kernel a Xen boot hosts (another kernel is dom0) and its guest roles."""
    kernel: Kernel
    roles: list[str]


def guest_loads(kernel: Kernel, wanted: list[str], host: roles.Role, guest_kernel: Kernel | None,
                hosted: list[Guest] | None) -> list[tuple[Kernel, list[roles.Role]]]:
    """Each guest kernel of a Xen boot with the guest roles it runs: the HOSTED
    kernels', else one kernel (GUEST_KERNEL, else dom0's own) with WANTED's."""
    if hosted:
        return [(g.kernel, [r for r in map(roles.get, g.roles) if r.is_guest]) for g in hosted]
    return [(guest_kernel or kernel, xen_guests(host, wanted))]


def named(loads: list[tuple[Kernel, list[roles.Role]]]) -> list[tuple[int, roles.Role]]:
    """Each guest of LOADS with its kernel's number (from 1). With several guest
    kernels a guest is named for its kernel (pv_2: kernel 2's domU-pv), so its
    console, its xl lines and its verdict are its kernel's own."""
    many = len(loads) > 1
    return [(i, replace(r, where=f"{r.where}_{i}") if many else r)
            for i, (_, rs) in enumerate(loads, 1) for r in rs]


def guest_dir(i: int, kernels: int) -> str:
    """Where dom0 finds guest kernel I's files (one of KERNELS): pvm/guest, or pvm/guest/I."""
    return "pvm/guest" if kernels == 1 else f"pvm/guest/{i}"


def _guest_files(d: Path, loads: list[tuple[Kernel, list[roles.Role]]],
                 slots: list[tuple[int, roles.Role]], pts: dict[str, devmod.Device],
                 hvm_cmdlines: dict[str, str]) -> list[initramfs.GuestFiles]:
    """Each guest kernel's files for dom0's initramfs: the kernel and a probe initrd
    with its roles' modules (SLOTS: its guests as named(LOADS) names them; an HVM
    guest: a boot disk with both and its command line from HVM_CMDLINES; PTS: the
    drivers of the devices passed through to its guests, shipped)."""
    out = []
    for i, (k, _) in enumerate(loads, 1):
        rs = [g for j, g in slots if j == i]
        if not rs:
            continue
        name = "guest-initrd.gz" if len(loads) == 1 else f"guest-initrd-{i}.gz"
        initrd = initramfs.probe(d / name, "guest-init.sh", k,
                                 list(dict.fromkeys(m for g in rs for m in g.modules)), load=True,
                                 ship=_passthrough_modules(k, [pts[g.where] for g in rs
                                                               if g.where in pts]))
        disks = tuple((g.where, bootdisk.build(d / f"boot-{g.where}.img", k.image, initrd,
                                               hvm_cmdlines[g.where]))
                      for g in rs if g.guest_type == "hvm")
        out.append(initramfs.GuestFiles(guest_dir(i, len(loads)), k, initrd, disks))
    return out


def host_fault(v: Verdict, host: str) -> Verdict:
    """A hosted guest's verdict V: blocked because the host dom0 (HOST) or Xen
    died is the harness's fault (broken), never its kernel's. Blocked by the
    guest's own earlier lifecycle step (its kernel failed that step) stays blocked."""
    if v.status != BLOCKED or v.detail == EARLIER_STEP:
        return v
    return Verdict(BROKEN, f"host dom0 {host}: {v.reason}", "host", v.evidence, v.seconds)


def boot_xen(kernel: Kernel, wanted: list[str], xen_version: str | None = None,
             devs: list[devmod.Device] | None = None, guest_kernel: Kernel | None = None,
             profile=None, accel: qemu.Accel | None = None, parallel: bool = False,
             deadline_s: float | None = None, hosted: list[Guest] | None = None,
             launch: "Launch | None" = None) -> list[Cell]:
    """One Xen boot: KERNEL as dom0 (or as the host role among WANTED, e.g. PVH
    dom0), then a domU per requested or hosted guest role; with HOSTED, the
    guest roles of each of those kernels in turn (each Cell says its Guest's
    number). DEADLINE_S overrides the boot's deadline. LAUNCH: the guests run
    on a restored parked boot instead (hosted.py), not on a boot of their own."""
    devs = devs if devs is not None else devmod.plan()
    dom0 = xen_host(wanted)
    loads = guest_loads(kernel, wanted, dom0, guest_kernel, hosted)
    slots = named(loads)
    guests = [g for _, g in slots]
    dom0 = sized(dom0, guests, len(loads))
    foreign = bool(hosted) or (guest_kernel is not None and guest_kernel is not kernel)
    accel = accel or qemu.probe_accel()
    qemu.check_memory(dom0.memory_mb, f"Xen boot of {kernel.label}")
    xen = hypervisor(xen_version)
    release = catalog.get("xen", xen.version)
    base = userspace.dom0_initramfs(xen, catalog.dom0_packages([dom0, *guests], release))
    d = rundirs.new("xen")
    nonce = secrets.token_hex(4)
    doms = domains(guests)
    pts, iommu = passed_through(guests), boot_iommu(guests)
    if iommu.profile:
        profile = catalog.profile(iommu.profile)
        devs = devmod.plan(profile.qemu_devices)
    dirs = {g.where: "/" + guest_dir(i, len(loads)) for i, g in slots} if len(loads) > 1 else None
    plan = boot_plan(dom0, guests, nonce, parallel, settings.current().xl_debug, dirs, pts)
    files = _guest_files(d, loads, slots, pts, hvm_cmdlines(guests, nonce, pts)) if guests else []
    guests_s = (max((x.deadline_s for x in doms), default=0) if parallel
                else sum(x.deadline_s for x in doms) * (1 + RETRIES))
    deadline = dom0.deadline_s + GUEST_SLACK_S + guests_s
    checks = [("host", p) for p in dom0.expect]
    checks += [(g.where, p.format(disk=f"PVMDISK-{g.where}-{nonce}")) for g in guests
               for p in g.expect]
    hosting = "".join(f", {x.name}" for x in doms) + (
        f" of {', '.join(k.label for k, _ in loads)}" if foreign else "")
    what = f"Xen {xen.version} boot with {kernel.label} as {dom0.name}{hosting}"
    facts = {**provenance.qemu_facts(accel.name), "xen": provenance.xen_build(xen),
             "dom0_userspace": provenance.userspace_image(base)}
    if launch is not None:
        run, script = launch(d, Batch(what, plan, files, nonce, checks, deadline,
                                      deadline_s or GUEST_SLACK_S + guests_s), facts)
    else:
        wanted_mods = _device_modules(kernel, devs, profile)
        if wanted_mods is not None:
            wanted_mods += list(dom0.modules) + [g.passthrough.backend for g in guests
                                                 if g.passthrough]
        overlay = initramfs.dom0_overlay(d / "overlay.cpio", kernel, files, plan, wanted_mods)
        initrd = initramfs_concat(base, overlay, d / "initrd.cpio")
        dom0_image = d / "dom0-kernel"       # decompressed here: Xen would do it under TCG
        initramfs.place_image(kernel, dom0_image)
        cmd = xen_command(qemu.checked_binary(), accel, dom0, xen.binary,
                          xen_cmdline(release.cmdline, dom0, iommu), dom0_image, initrd,
                          d / "serial.log", devmod.qemu_args(devs + machine_devices(pts), d, nonce),
                          iommu)
        script = reproduce.write(d / "qemu.sh", what, cmd, d / "serial.log",
                                 deadline, checks, {initrd: [base, overlay]})
        _say(f"booting Xen {xen.version} with {kernel.label} as {dom0.name}"
             + (f" and{hosting.removeprefix(',')}" if guests else "") + f" ({accel.name})")
        try:
            run = qemu.run(cmd, d / "serial.log", deadline_s or deadline,
                           stop=_host_done,
                           crash=_host_crash)
        finally:
            initrd.unlink(missing_ok=True)     # big; qemu.sh concatenates it again (overlay kept)
        _started(run)
        _ended_by_kernel(run, f"the Xen boot of {kernel.label}", d / "serial.log")
    boot = Boot("xen", d, accel.name, run.wall_s, run.peak_rss_mb, run.timed_out, run.exit_code,
                run.stopped_by, _marks(run.lines, dom0.marks), facts, str(script))
    outcome = BootOutcome(run.timed_out, run.exit_code, run.wall_s, run.stderr_tail)
    dom0_verdict = judge_host(dom0, run.lines, outcome, [g.where for g in guests])
    dom0_verdict.seconds = boot.marks.get(dom0.timed_by)
    chain = {x.name: x.roles for x in doms}
    verdicts = [judge_guest(g, run.lines, outcome, dom0_verdict,
                            {"disk": f"PVMDISK-{g.where}-{nonce}"}, chain[g.where]) for g in guests]
    verdicts = [_passthrough_verdict(v, g, pts[g.where], iommu, run.lines, nonce, d)
                if g.where in pts else v for g, v in zip(guests, verdicts)]
    cells = []
    if dom0.name in wanted:
        v = judge_hosting(dom0, dom0_verdict, {g.name: v for g, v in zip(guests, verdicts)})
        v.evidence += mode_evidence(dom0, release, xen_cmdline(release.cmdline, dom0))
        cells.append(Cell(dom0.name, kernel.label, xen.version, [x.name for x in devs], v,
                          v.seconds, boot, _hardware(run.lines, devs, nonce, d)))
    for (i, g), v in zip(slots, verdicts):
        if hosted or g.name in wanted:
            v = host_fault(v, kernel.label) if foreign else v
            cells.append(Cell(g.name, loads[i - 1][0].label, xen.version, [], v, v.seconds, boot,
                              guest=i if hosted else 0))
    _finish(d, cells)
    return cells


def _passthrough_verdict(v: Verdict, g: roles.Role, dev: devmod.Device, iommu: catalog.Iommu,
                         lines: list[Line], nonce: str, workdir: Path) -> Verdict:
    """Guest G's verdict V with what its passed-through DEV did in it: bound, link,
    and its frame in QEMU's dump of that NIC; the boot's IOMMU as evidence."""
    if v.ok:
        hw = passthrough_facts(lines, g.where, f"{dev.ids.vendor:04x}:{dev.ids.device:04x}")
        if hw is not None:
            _frame(hw, dev, workdir, devmod.frame_token(passthrough_token(nonce, g.where)))
        v = judge_passthrough(v, dev.name, hw)
    v.evidence.append(Evidence(f"{dev.name} at {dev.pci} on QEMU's {iommu.machine}: {iommu.note}",
                               "passthrough"))
    return v


def boot_plan(dom0: roles.Role, guests: list[roles.Role], nonce: str, parallel: bool,
              xl_debug: str = "", dirs: dict[str, str] | None = None,
              pts: dict[str, devmod.Device] | None = None) -> dict[str, str]:
    """dom0's plan.env: the guests to start (NAME:TYPE:N, one per domain() of
    GUESTS), each one's command line, lifecycle steps in order and deadline
    (CMDLINE_NAME, LIFE_NAME, DEADLINE_NAME), where its kernel's files are (DIRS:
    DIR_NAME; default /pvm/guest), a passed-through device's address and dom0's
    backend for it (PCI_NAME, PCIBACK_NAME; PTS: the devices by guest name), and
    the shared knobs."""
    pts = pts or {}
    doms = domains(guests)
    return {"NONCE": nonce, "PARALLEL": "1" if parallel else "0", "RETRIES": str(RETRIES),
            "GUEST_MB": str(max((g.guest_mb for g in guests), default=128)),
            "GUEST_DEADLINE": str(int(max((x.deadline_s for x in doms), default=0))),
            "XL_DEBUG": xl_debug,
            "GUESTS": " ".join(f"{x.name}:{x.guest_type}:{i}" for i, x in enumerate(doms, 1)),
            "MODULES": " ".join(dom0.modules),
            "LIFE_PORT": str(LIFE_PORT),
            **{f"CMDLINE_{g.where}": guest_cmdline(g, nonce, g.where in pts) for g in guests},
            **{f"LIFE_{x.name}": " ".join(x.steps) for x in doms if x.steps},
            **{f"DEADLINE_{x.name}": str(int(x.deadline_s)) for x in doms},
            **{f"DIR_{name}": path for name, path in (dirs or {}).items()},
            **{f"PCI_{w}": dev.pci for w, dev in pts.items()},
            **{f"PCIBACK_{g.where}": g.passthrough.backend for g in guests if g.where in pts}}


def guest_cmdline(g: roles.Role, nonce: str, passthrough: bool) -> str:
    """Guest G's command line; with a device passed through, pvm.pt=1 (probe it) and
    the nonce its frame carries (guest-init.sh)."""
    if not passthrough:
        return g.cmdline
    return f"{g.cmdline} pvm.pt=1 pvm.nonce={passthrough_token(nonce, g.where)}"


def hvm_cmdlines(guests: list[roles.Role], nonce: str,
                 pts: dict[str, devmod.Device]) -> dict[str, str]:
    """Each HVM guest's whole command line, by name: its boot disk holds it (a PV or
    PVH guest's is completed by dom0-init.sh's xl config: the same pvm.* words for
    the N-th guest, 10.99.N.2 with dom0 at 10.99.N.1)."""
    return {x.name: f"{guest_cmdline(x.roles[0], nonce, x.name in pts)} pvm.name={x.name} "
                    f"pvm.ip=10.99.{n}.2 pvm.peer=10.99.{n}.1"
            for n, x in enumerate(domains(guests), 1) if x.guest_type == "hvm"}


def initramfs_concat(base: Path, overlay: Path, dest: Path) -> Path:
    return concat([base, overlay], dest)


def _finish(d: Path, cells: list[Cell]) -> None:
    """Point each verdict's log lines at the serial log; write cells.json."""
    for c in cells:
        for e in c.verdict.evidence:
            e.log = str(d / "serial.log") if e.line else e.log
    (d / "cells.json").write_text(json.dumps([c.to_dict() for c in cells], indent=2, default=str))


def run_cells(kernel: Kernel, wanted: list[str], xen_version: str | None = None,
              device_names: list[str] | None = None, guest_kernel: Kernel | None = None,
              profile=None, parallel: bool = False, deadline_s: float | None = None) -> list[Cell]:
    """Every requested role of KERNEL: bare metal alone, Xen roles in one boot
    (DEADLINE_S, if given, overrides each boot's deadline)."""
    xen_roles = [r for r in wanted if roles.get(r).xen]   # unknown role: a clear error first
    if xen_roles:
        xen_version = check_xen(xen_version)             # and an unknown Xen, before any boot
    devs = devmod.plan(device_names or None)
    accel = qemu.probe_accel()
    cells = []
    if roles.host(xen=False).name in wanted:
        cells.append(boot_baremetal(kernel, devs, profile, accel, deadline_s))
    for boot_roles in catalog.xen_boots(xen_roles):   # dom0-pvh: a boot of its own
        cells += boot_xen(kernel, boot_roles, xen_version, devs, guest_kernel, profile, accel,
                          parallel, deadline_s)
    return cells


def kernels_per_boot(guests: list[Guest]) -> int:
    """How many of GUESTS' kernels one boot hosts: the least any of their roles
    allows (roles.toml kernels_per_boot), else GUEST_KERNELS_MAX."""
    return min([GUEST_KERNELS_MAX] + [n for g in guests for r in g.roles
                                      if (n := roles.get(r).kernels_per_boot)])
