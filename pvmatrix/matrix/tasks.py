"""The work of each task, run on a Dask worker: source, build and analyze
through the builder and the analyzer; boots through the boot harness.

Every function takes the task (a plain dict) and the outcomes of its
dependencies (outcomes.TaskOutcome, with their typed facts), checks the
outcome cache first, and returns a small TaskOutcome (scheduler.run_task
turns it into a dict for Dask). Nothing raises: an exception becomes the
verdict its class says (errors.status_of: a failed build is a fail, the
harness's fault broken, what cannot run here "not run") on the task's cells.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from dataclasses import dataclass

from .. import catalog, settings
from ..digest import code_digest
from ..errors import BuildFailed, PvmError, full_disk, status_of
from . import outcomes
from .outcomes import KernelFacts, TaskOutcome
from ..analyze.facts import AnalysisFacts
from ..build.facts import BuildFacts
from ..records import BLOCKED, FAIL, NOT_RUN, PASS, Evidence, Verdict
# modules, not names: tests swap boot.run_cells and builder.build for fakes
from .. import boot, build as builder, configure, sources
from ..analyze import analyze as run_analysis
from ..analyze import coverage, machines
from ..analyze.hardware import load_profile
from ..boot import facts as bootfacts, qemu
from ..boot.verdicts import release_cannot
from ..build import container, engine, toolchains
from ..sources import packages
from ..sources.facts import PackageFacts, SourceFacts


# Set when the run these tasks belong to stops (Ctrl-C), by abort(): a task that
# waits on something other than a container or QEMU waits on this too.
ABORT = threading.Event()


def abort() -> None:
    """Stop what the tasks running in this process wait on (containers, QEMU, ABORT),
    so that they end now rather than at interpreter exit."""
    ABORT.set()
    container.remove_all()
    qemu.kill_all()


def _keep(task: dict) -> bool:
    """Whether TASK's outcome may be cached: never once the run is stopping (a boot
    or build cut short by an interrupt says nothing of the kernel)."""
    return outcomes.keep(task) and not ABORT.is_set()


def _interrupted(task: dict) -> TaskOutcome:
    """TASK's cells when the run stopped while it ran: not run, nothing kept."""
    return outcomes.all_cells(outcomes.new(task), task, Verdict(
        NOT_RUN, "interrupted: the run was stopped while it ran", "interrupted"))


def execute(task: dict, **deps: TaskOutcome | None) -> TaskOutcome:
    """Run TASK (its 'func' names a function of this module) after its DEPS."""
    start = time.monotonic()
    try:
        own = {k: v for k, v in deps.items() if not k.startswith("host")}   # a fallback is optional
        out = outcomes.blocked_by(task, own) or FUNCS[task["func"]](task, **deps)
    except Exception as exc:          # a task never raises: the cell says what went wrong
        out = outcomes.broken(task, full_disk(exc, settings.current().cache_root()) or exc)
    out.seconds = round(time.monotonic() - start, 3)
    try:
        out.provenance = outcomes.provenance_of(task, deps, out)
    except Exception as exc:          # never lose a verdict over its provenance
        out.provenance = {"error": str(exc)}
    return out


# -- source ---------------------------------------------------------------

def source(task: dict) -> TaskOutcome:
    args, cell_id = task["args"], task["cells"][0]["id"]
    try:
        if args["package"]:        # debian:linux-image-X[@SUITE] (a metapackage is followed)
            p = packages.resolve_kernel(args["package"])
            out = outcomes.new(task, PackageFacts(p), {"package": args["package"], "resolved": p.name,
                                                       "deb": str(p.image.deb), "identity": p.digest})
            outcomes.cell(out, cell_id, Verdict(PASS, f"{p.name} {p.version}", "prebuilt",
                                                [Evidence(f"{q.deb} ({q.digest})", "package")
                                                 for q in p.parts]), logs={})
            return out
        src = sources.resolve(args["source"])
        facts = SourceFacts(src.spec, src.identity, src.version, str(src.tree))
    except PvmError as exc:
        return outcomes.all_cells(outcomes.new(task), task, Verdict(
            status_of(exc), str(exc), "fetch", [Evidence(str(exc), "error")]))
    out = outcomes.new(task, facts, {"source": src.spec, "identity": src.identity})
    outcomes.cell(out, cell_id, Verdict(PASS, f"Linux {src.version}", f"{src.kind} source",
                                        [Evidence(f"{src.spec}: {src.identity}", "identity")]))
    return out


# -- build ----------------------------------------------------------------

def build(task: dict, source: TaskOutcome) -> TaskOutcome:
    args, cell_id = task["args"], task["cells"][0]["id"]
    src: SourceFacts = source.facts
    recipe = configure.load(args["base"], args["fragments"])
    tc = toolchains.pick(args["toolchain"], src.version)
    key = outcomes.digest("build-fail/1", builder.recipe_key(src.identity, recipe, tc.image))
    inputs = {"source": src.source, "identity": src.identity, "recipe": recipe.key,
              "base": args["base"], "fragments": args["fragments"], "toolchain": tc.name,
              "toolchain_image": tc.image}
    if not args["recheck"] and (hit := outcomes.load(key, task)):
        return hit                                   # a remembered failing build
    try:
        b = builder.build(src.source, args["base"], args["fragments"], args["toolchain"],
                          limits=container.Limits.of(task.get("resources") or {}))
    except PvmError as exc:
        text, log, failed = str(exc), str(exc.log or ""), isinstance(exc, BuildFailed)
        out = outcomes.all_cells(outcomes.new(task, inputs=inputs), task, Verdict(
            status_of(exc), text, "build" if failed else "builder",
            [Evidence(text, "error", log=log)]))
        out.cells[cell_id].logs = {"build": log} if log else {}
        if failed and _keep(task):
            outcomes.save(key, out)
        return out
    inputs.update(artifact_key=b.key, config_sha256=b.config_sha256,
                  toolchain_image_id=engine.image_id(tc.image))
    # digests and URLs: consumers fetch a remote store's files
    out = outcomes.new(task, BuildFacts.of(b), inputs)
    ev = [Evidence(f"{b.version} [{b.toolchain}] artifacts {b.key[:16]}", "artifacts")]
    ev += [Evidence(f"{u['symbol']}: wanted {u['wanted']}, got {u['got']} ({u['reason']})",
                    "option did not stick") for u in b.unmet]
    outcomes.cell(out, cell_id, Verdict(PASS, f"Linux {b.version}" + (
        f", {len(b.unmet)} option(s) did not stick" if b.unmet else ""),
        "cached" if b.cached else "built", ev),
        logs={"build": str(b.dir / "build.log")},
        durations={"build_s": b.build_s}, cached=b.cached)
    out.cached = b.cached
    return out


# -- analyze --------------------------------------------------------------

SHOWN_CAPS = (("pv_domu", "PV"), ("pvh_domu", "PVH"), ("pv_dom0", "dom0"))


def analyze(task: dict, kernel: TaskOutcome) -> TaskOutcome:
    profile = load_profile(task["args"]["profile"])
    k: KernelFacts = kernel.facts
    key = outcomes.digest("analyze/1", k.kernel_id, profile.to_toml(),
                          code_digest("analyze", "catalog.py", "data/hardware",
                                               "data/devices.toml", "data/builtin-drivers.toml"))
    if not task["args"].get("recheck") and (hit := outcomes.load(key, task)):
        return hit
    a = run_analysis(k.here(k.kernel_path), hardware=profile)
    facts = AnalysisFacts.of(a)
    caps = facts.capabilities
    inputs = {"kernel_id": k.kernel_id, "profile": profile.name,
              "profile_sha256": hashlib.sha256(profile.to_toml().encode()).hexdigest()}
    out = outcomes.new(task, facts, inputs)
    cells = task["cells"]
    shown = " ".join(label for name, label in SHOWN_CAPS
                     if name in caps and caps[name].supported) or "no Xen"
    ev = [Evidence(f"{name}: {_yes(caps[name].supported)}: {'; '.join(caps[name].evidence)}",
                   "capability") for name, _ in SHOWN_CAPS if name in caps]
    ev += [Evidence(p, "problem") for p in a.problems[:5]]
    outcomes.cell(out, cells[0]["id"], Verdict(PASS, f"{a.release}: {shown}", shown, ev))
    for c, d in zip(cells[1:], a.devices):
        ok = d.status in ("built-in", "module")
        outcomes.cell(out, c["id"], Verdict(
            PASS if ok else FAIL,
            f"{d.driver} ({d.status})" if ok else f"no driver for {d.device.ids}",
            d.status, [Evidence(e, "coverage") for e in d.evidence[:6]]))
    if _keep(task):
        outcomes.save(key, out)
    return out


def analyze_machine(task: dict, kernel: TaskOutcome) -> TaskOutcome:
    """A real machine's coverage by the kernel: one cell, "N/M devices covered"."""
    profile = machines.from_args(task["args"]["profile"])
    k: KernelFacts = kernel.facts
    key = outcomes.digest("analyze-machine/1", k.kernel_id, profile.to_toml(),
                          code_digest("analyze", "catalog.py", "data/builtin-drivers.toml",
                                               "data/driverless-classes.toml"))
    if not task["args"].get("recheck") and (hit := outcomes.load(key, task)):
        return hit
    a = run_analysis(k.here(k.kernel_path), hardware=profile)
    out = outcomes.new(task, AnalysisFacts.of(a), {
        "kernel_id": k.kernel_id, "machine": profile.name,
        "profile_sha256": hashlib.sha256(profile.to_toml().encode()).hexdigest()})
    outcomes.cell(out, task["cells"][0]["id"], machines.verdict(coverage.machine(a.devices)))
    if _keep(task):
        outcomes.save(key, out)
    return out


def _yes(value) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


# -- boot -----------------------------------------------------------------

def harness_digest() -> str:
    """The boot harness's code and data: a verdict made by another harness is not reused."""
    return code_digest("boot", "catalog.py", "data/boot", "data/roles.toml",
                                "data/xen.toml", "data/devices.toml", "data/deaths.toml")


def _boot_kernel(facts: KernelFacts):
    return boot.load_kernel(facts.here(facts.boot_kernel))


def _profile_devices(name: str):
    profile = load_profile(name)
    return profile, profile.qemu_devices


def _from_harness(c: boot.Cell, role_cell: dict, out: TaskOutcome,
                  dom0: str | None = None, static: str | None = None,
                  analysis: TaskOutcome | None = None) -> None:
    """One harness Cell into OUT: its verdict (the role's seconds go to durations)
    and its boot facts (DOM0: the kernel that hosted a Xen boot). STATIC: why the
    analyzer ruled the role out (booted anyway by --confirm), kept in the verdict.
    ANALYSIS: the booted kernel's, whose device coverage is set beside the boot's
    (a disagreement is evidence on the verdict too)."""
    v = c.verdict
    if static:
        v = _confirmed(v, static)
    serial = str(c.boot.dir / "serial.log")
    facts: AnalysisFacts | None = analysis.facts if analysis is not None else None
    bf = bootfacts.of(c, dom0, facts.devices if facts is not None else None)
    ev = list(v.evidence) + [Evidence(x.text, "static and booted disagree", x.line or 0,
                                      serial if x.line else "")
                             for x in bf.checks or () if x.disagree]
    outcomes.cell(out, role_cell["id"], Verdict(v.status, v.reason, v.detail, ev),
                  durations={"role_s": c.seconds, "boot_s": c.boot.wall_s},
                  logs={"serial": serial, "boot_dir": str(c.boot.dir),
                        **({"qemu_script": c.boot.script} if c.boot.script else {})},
                  boot=bf)


def boot_baremetal(task: dict, kernel: TaskOutcome, analysis: TaskOutcome) -> TaskOutcome:
    profile, names = _profile_devices(task["args"]["profile"])
    k: KernelFacts = kernel.facts
    inputs = {"kernel_id": k.kernel_id, "profile": profile.name, "harness": harness_digest(),
              **_boot_env()}
    key = outcomes.digest("boot-baremetal/1", inputs, profile.to_toml())
    if not task["args"].get("recheck") and (hit := outcomes.load(key, task)):
        return hit
    cells = boot.run_cells(_boot_kernel(k), [task["cells"][0]["role"]], device_names=names,
                      profile=profile)
    if ABORT.is_set():
        return _interrupted(task)
    out = outcomes.new(task, inputs=inputs)
    for c in cells:
        _from_harness(c, task["cells"][0], out, analysis=analysis)
    if _keep(task):
        outcomes.save(key, out)
    return out


def _boot_env() -> dict:
    """Inputs of a boot besides the kernels: QEMU's version (another QEMU is
    another measurement)."""
    return {"qemu": qemu.version()}


STATIC = "static"      # the detail of a verdict the analyzer gave without a boot
STATIC_NOTE = "static analysis"


def _confirmed(v: Verdict, why: str) -> Verdict:
    """The boot's verdict V of a role the analyzer ruled out (WHY), booted by
    --confirm: the boot decides, and the static evidence comes first."""
    return Verdict(v.status, f"{v.reason} (booted by --confirm; the static analysis said {why})",
                   v.detail, [Evidence(why, STATIC_NOTE), *v.evidence])


def _static_fail(out: TaskOutcome, role_cell: dict, why: str) -> None:
    """A static "no" (WHY) into OUT: a fail with its evidence, not booted."""
    outcomes.cell(out, role_cell["id"], Verdict(FAIL, why, STATIC, [Evidence(why, STATIC_NOTE)]))


def _cannot(analysis: TaskOutcome, role: str) -> str | None:
    """Why the analyzer says KERNEL cannot take ROLE (lacks the capability it needs), or None."""
    need = catalog.get("role", role).capability
    facts: AnalysisFacts | None = analysis.facts
    cap = facts.capabilities.get(need) if need and facts else None
    if cap and cap.supported is False:
        return f"{need}: no ({'; '.join(cap.evidence)})"
    return None


@dataclass
class XenBoot:
    """What a kernel's Xen boot task still has to boot (cells decided without a
    boot are in its outcome already): WANTED roles of CELLS, with DOM0 as dom0
    and GUEST (the kernel, when DOM0 hosts it) as the guests' kernel, cached
    under KEY. DOM0_ANALYSIS: dom0's analysis (its device coverage)."""
    cells: dict[str, dict]
    wanted: list[str]
    dom0: TaskOutcome
    guest: TaskOutcome | None
    dom0_analysis: TaskOutcome
    static: dict[str, str]
    key: str


def _xen_boot(task: dict, out: TaskOutcome, kernel: TaskOutcome, analysis: TaskOutcome,
              host: TaskOutcome | None, host_analysis: TaskOutcome | None) -> XenBoot | None:
    """Decide TASK's cells that need no boot into OUT (not run, a static no,
    blocked), and what is left to boot, or None."""
    args, cells = task["args"], {c["role"]: c for c in task["cells"]}
    confirm = bool(args.get("confirm"))
    release = catalog.all("xen").get(args["xen"])
    cannot = {r: why for r in cells if release and (why := catalog.not_run(release, r))}
    for r, why in cannot.items():                 # the release cannot: no boot, never a pass
        outcomes.cell(out, cells.pop(r)["id"], release_cannot(args["xen"], why))
    if not cells:
        return None
    static = {r: why for r in cells if (why := _cannot(analysis, r))}
    ruled_out = {} if confirm else static    # --confirm boots them anyway
    for r, why in ruled_out.items():
        _static_fail(out, cells[r], why)
    # the task's host role (dom0-pvh boots on its own), else dom0: it hosts the guests
    host_role = next((r for r in cells if not catalog.get("role", r).is_guest),
                     catalog.host_role(xen=True).name)
    guests = [r for r in cells if catalog.get("role", r).is_guest and r not in ruled_out]

    def block(reason: str) -> None:
        """The guests not booted: blocked for REASON (a static no stays a fail)."""
        for r in guests:
            if r in static:
                _static_fail(out, cells[r], static[r])
            else:
                outcomes.cell(out, cells[r]["id"], Verdict(BLOCKED, reason, "no dom0"))
    dom0, guest = kernel, None
    # never boot as dom0 (to host its own guests) a kernel the analyzer rules out
    # as one, whether or not dom0 is among the roles; unless --confirm boots it
    # as dom0 (its role is a cell): then its guests run under it, blocked if it fails
    no_dom0 = None if confirm and host_role in cells else \
        static.get(host_role) or _cannot(analysis, host_role)
    # no dom0 cell wanted and a fallback given: the fallback hosts its guests (one
    # dom0 for every row's guests, booted once: hosted.py), itself included
    if no_dom0 or host_role not in cells and (host is not None or not guests):
        if not guests:
            return None
        if host is not None and host_analysis is not None and \
                not (host.passed and host_analysis.passed):
            bad = host if not host.passed else host_analysis
            return block(f"dom0 fallback {host.kernel} is {bad.status}")
        if host is None or host_analysis is None or _cannot(host_analysis, host_role):
            why = no_dom0 or f"{host_role} not in the roles"
            return block(f"no dom0 for it: {why} and no usable matrix.dom0_fallback")
        dom0, guest = host, kernel
    wanted = ([host_role] if dom0 is kernel and host_role in cells else []) + guests
    profile = load_profile(args["profile"])
    inputs = {"kernel_id": kernel.facts.kernel_id, "xen": args["xen"],
              "dom0_kernel": dom0.kernel, "dom0_kernel_id": dom0.facts.kernel_id,
              "profile": profile.name, "roles": wanted, "harness": harness_digest(),
              **_boot_env()}
    if confirm and static:     # a boot --confirm forced (without a static no it changes nothing)
        inputs["confirm"] = True
    out.inputs = inputs
    # by content: the dom0's id, not its row's name (a renamed row keeps its verdicts)
    key = outcomes.digest("boot-xen/2", {k: v for k, v in inputs.items() if k != "dom0_kernel"},
                          profile.to_toml())
    return XenBoot(cells, wanted, dom0, guest, analysis if dom0 is kernel else host_analysis,
                   static, key)


def _booted(task: dict, out: TaskOutcome, b: XenBoot, got: list[boot.Cell]) -> TaskOutcome:
    """The harness's cells GOT of B's boot into OUT (TASK's outcome), kept in the cache."""
    by_role = {c.role: c for c in got}
    for r in b.wanted:
        if r in by_role:
            _from_harness(by_role[r], b.cells[r], out, b.dom0.kernel, b.static.get(r),
                          b.dom0_analysis)
        else:
            outcomes.cell(out, b.cells[r]["id"], Verdict(NOT_RUN, "the boot harness returned no "
                                                         f"verdict for {r}", "harness"))
    if _keep(task):
        outcomes.save(b.key, _booted_only(out, b))
    return out


def _booted_only(out: TaskOutcome, b: XenBoot) -> TaskOutcome:
    """OUT with only the cells B booted, what its key (their roles) stands for. The
    cells decided without a boot (a role the release cannot run: `not run`, a
    static no) are decided again on a hit (_xen_boot, _as_hosted_by): kept, a
    `not run` among them would keep the whole boot out of the cache."""
    ids = {b.cells[r]["id"] for r in b.wanted}
    return dataclasses.replace(out, cells={k: c for k, c in out.cells.items() if k in ids})


def boot_xen(task: dict, kernel: TaskOutcome, analysis: TaskOutcome,
             host: TaskOutcome | None = None, host_analysis: TaskOutcome | None = None,
             hosted: TaskOutcome | None = None) -> TaskOutcome:
    """KERNEL's Xen roles in one boot, as dom0 with its own guests; or, when it
    cannot be dom0, its guests under HOST: their verdicts from HOSTED (the
    boot_hosted task that booted them with other kernels' guests) when it has them."""
    args = task["args"]
    out = outcomes.new(task)
    b = _xen_boot(task, out, kernel, analysis, host, host_analysis)
    if b is None:
        return out
    if not args.get("recheck") and (hit := outcomes.load(b.key, task)):
        return _as_hosted_by(hit, out, b.dom0.kernel)
    if b.guest is not None and hosted is not None and not args.get("retry") and \
            all(b.cells[r]["id"] in hosted.cells for r in b.wanted):
        for r in b.wanted:
            out.cells[b.cells[r]["id"]] = hosted.cells[b.cells[r]["id"]]
        out.cached = hosted.cached
        return out
    profile, names = _profile_devices(args["profile"])
    got = boot.run_cells(_boot_kernel(b.dom0.facts), b.wanted, args["xen"], names,
                         _boot_kernel(b.guest.facts) if b.guest else None, profile)
    if ABORT.is_set():
        return _interrupted(task)
    return _booted(task, out, b, got)


def boot_hosted(task: dict, host: TaskOutcome | None = None,
                host_analysis: TaskOutcome | None = None, **deps: TaskOutcome | None) -> TaskOutcome:
    """The guests of every kernel of args.guests that cannot be dom0, under HOST
    as dom0, in as few Xen boots as the harness allows (harness.run_hosted): each
    kernel is decided as its own boot_xen task would (_xen_boot), kept in the
    cache under that task's key, and skipped when the cache has it already. The
    outcome holds their cells (under their own tasks' cell ids) for those tasks."""
    args = task["args"]
    out = outcomes.new(task, inputs={"dom0_kernel": host.kernel if host else None})
    todo: list[tuple[dict, TaskOutcome, XenBoot]] = []
    for i, g in enumerate(args["guests"]):
        kernel, analysis = deps.get(f"hosted_kernel_{i}"), deps.get(f"hosted_analysis_{i}")
        if not (kernel and analysis and kernel.passed and analysis.passed):
            continue                  # its own task says why (blocked)
        sub = {**task, "kernel": g["kernel"], "cells": g["cells"]}
        kout = outcomes.new(sub)
        b = _xen_boot(sub, kout, kernel, analysis, host, host_analysis)
        if b is None or b.guest is None:
            continue                  # decided without a boot, or its own dom0
        if args.get("recheck") or outcomes.load(b.key, sub) is None:
            todo.append((sub, kout, b))
    if not todo:
        return out
    profile, names = _profile_devices(args["profile"])
    try:
        got = boot.run_hosted(_boot_kernel(host.facts),
                              [boot.Guest(_boot_kernel(b.guest.facts), b.wanted) for _, _, b in todo],
                              args["xen"], names, profile)
    except Exception as exc:          # the shared boot's error is each of its cells'
        for sub, _, b in todo:
            out.cells.update(outcomes.broken({**sub, "cells": [b.cells[r] for r in b.wanted]},
                                             exc).cells)
        return out
    if ABORT.is_set():
        return _interrupted(task)
    for (sub, kout, b), cells in zip(todo, got):
        out.cells.update(_booted(sub, kout, b, cells).cells)
    return out


def _as_hosted_by(hit: TaskOutcome, out: TaskOutcome, dom0: str) -> TaskOutcome:
    """A cached Xen boot (HIT) in this run's names: OUT's inputs and skipped cells,
    and DOM0 (the row hosting it now) in each booted cell's facts."""
    for c in hit.cells.values():
        if c.boot is not None and c.boot.dom0 is not None:
            c.boot = dataclasses.replace(c.boot, dom0=dom0)
    hit.inputs = out.inputs
    hit.cells.update(out.cells)
    return hit


# The task kinds: a task's "func" names one. Another kind (a test's fake) is one more entry.
FUNCS = {"source": source, "build": build, "analyze": analyze, "analyze_machine": analyze_machine,
         "boot_baremetal": boot_baremetal, "boot_xen": boot_xen, "boot_hosted": boot_hosted}
