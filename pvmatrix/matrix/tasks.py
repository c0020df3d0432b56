"""The work of each task, run on a Dask worker: source, build and analyze
through the builder and the analyzer; boots through the boot harness.

Every function takes the task (a plain dict) and the outcomes of its
dependencies, checks the outcome cache first, and returns a small outcome
(see outcomes.py). Nothing raises: an exception becomes a broken (or, when
the harness lacks something, a "not run") verdict on the task's cells.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path

from ..errors import PvmError
from ..paths import cache_dir
from . import outcomes
from ..results import provenance
from .cells import BLOCKED, FAIL, NOT_RUN, PASS, SKIP, BROKEN, Evidence, Verdict


# Set when the run these tasks belong to stops (Ctrl-C), by abort().
ABORT = threading.Event()


def abort() -> None:
    """Stop what the tasks running in this process wait on (containers, QEMU, the
    test delay), so that they end now rather than at interpreter exit."""
    from ..build import container
    from ..boot import qemu
    ABORT.set()
    container.remove_all()
    qemu.kill_all()


def _test_delay(stage: str) -> None:
    """Test hook: PVMATRIX_TASK_DELAY="analyze=30" makes analyze tasks slow (for Ctrl-C tests)."""
    for item in os.environ.get("PVMATRIX_TASK_DELAY", "").split(","):
        name, _, secs = item.partition("=")
        if name == stage and secs:
            ABORT.wait(float(secs))


def _attempt(task: dict) -> int:
    """Which attempt this is: 1 for a run's own, 2.. for retries of a regression."""
    retry = task["args"].get("retry")
    return retry if isinstance(retry, int) else 1


def _test_fail_deadline(task: dict) -> float | None:
    """Test hook, off by default: PVMATRIX_TEST_FAIL_ATTEMPTS="CELL=N[,CELL=all]" boots
    the task owning CELL with a 1 s deadline in attempts 1..N (or all), so the boot
    really times out there (a real fail, with the harness's own evidence)."""
    for item in filter(None, os.environ.get("PVMATRIX_TEST_FAIL_ATTEMPTS", "").split(",")):
        cell, _, upto = item.partition("=")
        if any(c["id"] == cell for c in task["cells"]) and \
                (upto == "all" or (upto.isdigit() and _attempt(task) <= int(upto))):
            return 1.0
    return None


def execute(task: dict, **deps: dict) -> dict:
    """Run TASK (its 'func' names a function of this module) after its DEPS."""
    start = time.monotonic()
    _test_delay(task["stage"])
    try:
        own = {k: v for k, v in deps.items() if not k.startswith("host")}   # a fallback is optional
        out = outcomes.blocked_by(task, own) or FUNCS[task["func"]](task, **deps)
    except Exception as exc:          # a task never raises: the cell says what went wrong
        out = outcomes.broken(task, exc)
    out["seconds"] = round(time.monotonic() - start, 3)
    try:
        out["provenance"] = provenance.of_task(task, deps, out)
    except Exception as exc:          # never lose a verdict over its provenance
        out["provenance"] = {"error": str(exc)}
    return out


# -- source ---------------------------------------------------------------

def _memo(name: str, key: str, make):
    path = cache_dir("matrix", name) / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    path.write_text(json.dumps(value))
    return value


def _deb_sha256(deb: Path) -> str:
    from ..sources import sha256_remembered
    return "sha256:" + sha256_remembered(deb)


def _package(spec: str) -> dict:
    """debian:linux-image-X[@SUITE]: the concrete package (a metapackage is
    followed to the kernel it depends on), downloaded, with its content id."""
    from ..sources import debian
    name, _, suite = spec.removeprefix("debian:").partition("@")
    suite = suite or "bookworm"
    stamp = cache_dir("apt", suite) / "updated"
    if not stamp.exists() or time.time() - stamp.stat().st_mtime > debian.LISTS_MAX_AGE_S:
        debian.depends(name, suite)          # refreshes the suite's lists (a new kernel?)
    lists = stamp.stat().st_mtime_ns if stamp.exists() else 0
    def concrete():
        deps = [d for d in debian.depends(name, suite) if d.startswith("linux-image-")]
        return deps[0] if deps and not re.search(r"\d+\.\d+", name) else name
    package = _memo("packages", f"{name}@{suite}:{lists}", concrete)
    deb = debian.download(package, suite)
    version = deb.name.split("_")[1] if deb.name.count("_") >= 2 else ""
    return {"package": package, "suite": suite, "deb": str(deb), "version": version,
            "kernel_id": _deb_sha256(deb), "kernel_path": str(deb),
            "boot_kernel": f"debian:{package}@{suite}"}


def source(task: dict) -> dict:
    args, cell_id = task["args"], task["cells"][0]["id"]
    try:
        if args["package"]:
            m = _package(args["package"])
            out = outcomes.new(task, m, {"package": args["package"], "resolved": m["package"],
                                         "deb": m["deb"], "identity": m["kernel_id"]})
            outcomes.cell(out, cell_id, Verdict(PASS, f"{m['package']} {m['version']}", "prebuilt",
                                                [Evidence(f"{m['deb']} ({m['kernel_id']})", "package")]),
                          logs={})
            return out
        from .. import sources
        src = sources.resolve(args["source"])
        m = {"source": src.spec, "identity": src.identity, "version": src.version,
             "tree": str(src.tree)}
    except PvmError as exc:
        return outcomes.all_cells(outcomes.new(task), task,
                                  Verdict(BROKEN, str(exc), "fetch", [Evidence(str(exc), "error")]))
    out = outcomes.new(task, m, {"source": src.spec, "identity": src.identity})
    outcomes.cell(out, cell_id, Verdict(PASS, f"Linux {src.version}", f"{src.kind} source",
                                        [Evidence(f"{src.spec}: {src.identity}", "identity")]))
    return out


# -- build ----------------------------------------------------------------

def build(task: dict, source: dict) -> dict:
    from .. import build as builder, configure
    from ..build import toolchains, engine
    args, src, cell_id = task["args"], source["manifest"], task["cells"][0]["id"]
    recipe = configure.load(args["base"], args["fragments"])
    tc = toolchains.pick(args["toolchain"], src["version"])
    key = outcomes.digest("build-fail/1", builder.recipe_key(src["identity"], recipe, tc.image))
    inputs = {"source": src["source"], "identity": src["identity"], "recipe": recipe.key,
              "base": args["base"], "fragments": args["fragments"], "toolchain": tc.name,
              "toolchain_image": tc.image}
    if not args["recheck"] and (hit := outcomes.load(key)):
        return hit                                   # a remembered failing build
    try:
        b = builder.build(src["source"], args["base"], args["fragments"], args["toolchain"])
    except PvmError as exc:
        text = str(exc)
        failed = re.search(r"^(build of|configuring) .* failed", text) is not None
        log = re.search(r"\(log: ([^)]+)\)", text)
        out = outcomes.all_cells(outcomes.new(task, inputs=inputs), task, Verdict(
            FAIL if failed else BROKEN, text, "build" if failed else "builder",
            [Evidence(text, "error", log=log.group(1) if log else "")]))
        out["cells"][cell_id]["logs"] = {"build": log.group(1)} if log else {}
        if failed and outcomes.keep(task):
            outcomes.save(key, out)
        return out
    m = b.brief()                     # digests and URLs: consumers fetch a remote store's files
    m.update(kernel_id=b.key, kernel_path=str(b.dir), boot_kernel=str(b.dir))
    inputs.update(artifact_key=b.key, config_sha256=b.config_sha256,
                  toolchain_image_id=engine.image_id(tc.image))
    out = outcomes.new(task, m, inputs)
    ev = [Evidence(f"{b.version} [{b.toolchain}] artifacts {b.key[:16]}", "artifacts")]
    ev += [Evidence(f"{u['symbol']}: wanted {u['wanted']}, got {u['got']} ({u['reason']})",
                    "option did not stick") for u in b.unmet]
    outcomes.cell(out, cell_id, Verdict(PASS, f"Linux {b.version}" + (
        f", {len(b.unmet)} option(s) did not stick" if b.unmet else ""),
        "cached" if b.cached else "built", ev),
        logs={"build": str(b.dir / "build.log")},
        durations={"build_s": b.build_s}, cached=b.cached)
    out["cached"] = b.cached
    return out


# -- analyze --------------------------------------------------------------

SHOWN_CAPS = (("pv_domu", "PV"), ("pvh_domu", "PVH"), ("pv_dom0", "dom0"))


def analyze(task: dict, kernel: dict) -> dict:
    from ..analyze import analyze as run_analysis
    from ..analyze.hardware import load_profile
    profile = load_profile(task["args"]["profile"])
    k = kernel["manifest"]
    key = outcomes.digest("analyze/1", k["kernel_id"], profile.to_toml(),
                          outcomes.code_digest("analyze", "data/hardware"))
    if not task["args"].get("recheck") and (hit := outcomes.load(key)):
        return hit
    from ..artifacts import localize
    a = run_analysis(localize(k, k["kernel_path"]), hardware=profile)
    caps = {c.name: {"supported": c.supported, "form": c.form, "evidence": c.evidence[:3]}
            for c in a.capabilities}
    devices = {d.device.qemu or d.device.name: {"status": d.status, "driver": d.driver}
               for d in a.devices}
    inputs = {"kernel_id": k["kernel_id"], "profile": profile.name,
              "profile_sha256": hashlib.sha256(profile.to_toml().encode()).hexdigest()}
    out = outcomes.new(task, {"release": a.release, "capabilities": caps, "devices": devices}, inputs)
    cells = task["cells"]
    shown = " ".join(label for name, label in SHOWN_CAPS
                     if caps.get(name, {}).get("supported")) or "no Xen"
    ev = [Evidence(f"{name}: {_yes(caps[name]['supported'])}: {'; '.join(caps[name]['evidence'])}",
                   "capability") for name, _ in SHOWN_CAPS if name in caps]
    ev += [Evidence(p, "problem") for p in a.problems[:5]]
    outcomes.cell(out, cells[0]["id"], Verdict(PASS, f"{a.release}: {shown}", shown, ev))
    for c, d in zip(cells[1:], a.devices):
        ok = d.status in ("built-in", "module")
        outcomes.cell(out, c["id"], Verdict(
            PASS if ok else FAIL,
            f"{d.driver} ({d.status})" if ok else f"no driver for {d.device.ids}",
            d.status, [Evidence(e, "coverage") for e in d.evidence[:6]]))
    if outcomes.keep(task):
        outcomes.save(key, out)
    return out


def _yes(value) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


# -- boot -----------------------------------------------------------------

HARNESS_STATUS = {"ok": PASS, "failed": FAIL, "panic": FAIL, "crashed": FAIL, "oops": FAIL,
                  "timeout": FAIL}
ROLE_NEEDS = {"dom0": "pv_dom0", "domU-pv": "pv_domu", "domU-pvh": "pvh_domu"}


def _harness_digest() -> str:
    return outcomes.code_digest("boot", "data/boot", "data/roles.toml")


def _boot_kernel(manifest: dict):
    from ..artifacts import localize
    from ..boot import load_kernel
    return load_kernel(localize(manifest, manifest["boot_kernel"]))


def _profile_devices(name: str):
    from ..analyze.hardware import load_profile
    profile = load_profile(name)
    return profile, [d.qemu for d in profile.devices if d.qemu]


def _from_harness(c, role_cell: dict, out: dict, extra_inputs: dict) -> None:
    """One harness Cell -> our verdict, evidence pointing into its serial log."""
    v = c.verdict
    status = HARNESS_STATUS.get(v.status)
    if status is None:        # "not run": dom0 failed or never started the guest
        status = BLOCKED if "dom0" in v.reason else NOT_RUN
    serial = str(c.boot.dir / "serial.log")
    ev = [Evidence(e.text, e.note, e.line, serial if e.line else "") for e in v.evidence]
    outcomes.cell(out, role_cell["id"], Verdict(status, v.reason, v.status, ev),
                  durations={"role_s": c.seconds, "boot_s": c.boot.wall_s},
                  logs={"serial": serial, "boot_dir": str(c.boot.dir),
                        **({"qemu_script": c.boot.script} if c.boot.script else {})},
                  boot={"accel": c.boot.accel, "peak_rss_mb": c.boot.peak_rss_mb,
                        "devices": c.devices, "kernel": c.kernel, "stopped_by": c.boot.stopped_by,
                        "timed_out": c.boot.timed_out, "provenance": c.boot.provenance,
                        **extra_inputs})


def boot_baremetal(task: dict, kernel: dict, analysis: dict) -> dict:
    profile, names = _profile_devices(task["args"]["profile"])
    k = kernel["manifest"]
    inputs = {"kernel_id": k["kernel_id"], "profile": profile.name, "harness": _harness_digest(),
              **_boot_env(task)}
    key = outcomes.digest("boot-baremetal/1", inputs, profile.to_toml())
    if not task["args"].get("recheck") and (hit := outcomes.load(key)):
        return hit
    from ..boot import run_cells
    cells = run_cells(_boot_kernel(k), ["baremetal"], device_names=names, profile=profile,
                      deadline_s=_test_fail_deadline(task))
    out = outcomes.new(task, inputs=inputs)
    for c in cells:
        _from_harness(c, task["cells"][0], out, {})
    if _keep(task):
        outcomes.save(key, out)
    return out


def _keep(task: dict) -> bool:
    """Cache a boot's outcome: not a retry's, never one made under the test hook."""
    return outcomes.keep(task) and _test_fail_deadline(task) is None


def _boot_env(task: dict) -> dict:
    """Inputs of a boot besides the kernels: QEMU's version (another QEMU is
    another measurement) and an active test hook (never mixed with real verdicts)."""
    from ..boot.qemu import version
    env = {"qemu": version()}
    if (hook := _test_fail_deadline(task)) is not None:
        env["test_hook"] = f"PVMATRIX_TEST_FAIL_ATTEMPTS: {hook:g} s deadline"
    return env


def _cannot(analysis: dict, role: str) -> str | None:
    """Why the analyzer says KERNEL cannot take ROLE, or None."""
    cap = analysis.get("manifest", {}).get("capabilities", {}).get(ROLE_NEEDS[role])
    if cap and cap["supported"] is False:
        return f"{ROLE_NEEDS[role]}: no ({'; '.join(cap['evidence'])})"
    return None


def boot_xen(task: dict, kernel: dict, analysis: dict, host: dict | None = None,
             host_analysis: dict | None = None) -> dict:
    args, cells = task["args"], {c["role"]: c for c in task["cells"]}
    profile, names = _profile_devices(args["profile"])
    out = outcomes.new(task)
    skip = {r: why for r in cells if (why := _cannot(analysis, r))}
    for r, why in skip.items():
        outcomes.cell(out, cells[r]["id"], Verdict(SKIP, why, f"no {ROLE_NEEDS[r]}",
                                                   [Evidence(why, "static analysis")]))
    guests = [r for r in cells if r != "dom0" and r not in skip]
    dom0, guest = kernel, None
    if "dom0" in skip or (not guests and "dom0" not in cells):
        if not guests:
            return out
        if host is not None and host_analysis is not None and \
                (host["status"] != PASS or host_analysis["status"] != PASS):
            bad = host if host["status"] != PASS else host_analysis
            for r in guests:
                outcomes.cell(out, cells[r]["id"], Verdict(
                    BLOCKED, f"dom0 fallback {host['kernel']} is {bad['status']}", "no dom0"))
            return out
        if host is None or host_analysis is None or _cannot(host_analysis, "dom0"):
            for r in guests:
                outcomes.cell(out, cells[r]["id"], Verdict(
                    BLOCKED, f"no dom0 for it: {skip.get('dom0', 'dom0 not in the roles')} and "
                             "no usable matrix.dom0_fallback", "no dom0"))
            return out
        dom0, guest = host, kernel
    wanted = (["dom0"] if dom0 is kernel and "dom0" in cells else []) + guests
    inputs = {"kernel_id": kernel["manifest"]["kernel_id"], "xen": args["xen"],
              "dom0_kernel": dom0["kernel"], "dom0_kernel_id": dom0["manifest"]["kernel_id"],
              "profile": profile.name, "roles": wanted, "harness": _harness_digest(),
              **_boot_env(task)}
    out["inputs"] = inputs
    key = outcomes.digest("boot-xen/1", inputs, profile.to_toml())
    if not args.get("recheck") and (hit := outcomes.load(key)):
        hit["cells"].update(out["cells"])
        return hit
    from ..boot import run_cells
    got = run_cells(_boot_kernel(dom0["manifest"]), wanted, args["xen"], names,
                    _boot_kernel(guest["manifest"]) if guest else None, profile,
                    deadline_s=_test_fail_deadline(task))
    by_role = {c.role: c for c in got}
    for r in wanted:
        if r in by_role:
            _from_harness(by_role[r], cells[r], out, {"dom0": dom0["kernel"]})
        else:
            outcomes.cell(out, cells[r]["id"], Verdict(NOT_RUN, "the boot harness returned no "
                                                       f"verdict for {r}", "harness"))
    if _keep(task):
        outcomes.save(key, out)
    return out


FUNCS = {"source": source, "build": build, "analyze": analyze,
         "boot_baremetal": boot_baremetal, "boot_xen": boot_xen}
