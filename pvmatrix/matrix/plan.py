"""From a spec to the task graph: source -> build -> analyze -> boot.

Each kernel has a source task (a Debian package fetch for a prebuilt one),
a build task (source-built kernels only), one analyze task per hardware
profile and one per real machine (spec.machines), and per booted profile (spec.booted) one bare-metal boot and one Xen
boot per Xen version and boot group (dom0 and the domUs share that boot).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog, sources
from ..build import toolchains
from ..errors import NotSupported
from ..results.records import Cell, machine_cell_id
from .cells import HOSTED, Task
from .spec import KernelSpec, Spec
from ..analyze import machines
from ..analyze.hardware import load_profile

# What each kind of task holds while it runs (Dask worker resources). A boot
# holds one core: QEMU runs single-threaded TCG (boot/qemu.py), so a 2-core
# machine runs two boots side by side (a QEMU slot per core, scheduler.py).
RESOURCES = {
    "source": {},
    "build": {"CPU": 2, "MEM": 4},
    "analyze": {"CPU": 1, "MEM": 1},
    "boot_baremetal": {"CPU": 1, "MEM": 1, "qemu": 1},
    "boot_xen": {"CPU": 1, "MEM": 3, "qemu": 1},
    "boot_hosted": {"CPU": 1, "MEM": 3, "qemu": 1},
}


@dataclass
class Plan:
    spec: Spec
    tasks: list[Task]              # in dependency order

    @property
    def cells(self) -> list[Cell]:
        return [c for t in self.tasks for c in t.cells]

    def task(self, key: str) -> Task:
        return next(t for t in self.tasks if t.key == key)


def _devices(profile: str) -> list[tuple[str, str]]:
    """(column id, name) per device of a hardware profile."""
    return [(d.qemu or d.name, d.name) for d in load_profile(profile).devices]


def make_plan(spec: Spec, recheck: bool = False, confirm: bool = False) -> Plan:
    """The tasks of SPEC; RECHECK forces boots (and failed builds) to run again;
    CONFIRM boots the Xen roles the analyzer rules out (tasks.boot_xen)."""
    tasks: list[Task] = []
    kernel_task: dict[str, Task] = {}
    analysis: dict[tuple[str, str], Task] = {}
    many_hw = len(spec.hardware) > 1
    for k in spec.kernels:
        src = Task("source", k.name, "source",
                   {"source": k.source, "package": k.package}, {},
                   [Cell(f"{k.name}/source", "source", k.name, "source")], RESOURCES["source"])
        tasks.append(src)
        kernel_task[k.name] = src
        if not k.prebuilt:
            b = Task("build", k.name, "build",
                     {"base": k.base, "fragments": k.fragments, "toolchain": k.toolchain,
                      "recheck": recheck},
                     {"source": src.key}, [Cell(f"{k.name}/build", "build", k.name, "build")],
                     RESOURCES["build"])
            tasks.append(b)
            kernel_task[k.name] = b
        for p in spec.hardware:
            suffix = f" [{p}]" if many_hw else ""
            cells = [Cell(f"{k.name}/analyze/{p}", "analyze", k.name, "Xen (static)" + suffix,
                          hardware=p)]
            cells += [Cell(f"{k.name}/hw/{p}/{col}", "analyze", k.name, col + suffix,
                           hardware=p, device=name) for col, name in _devices(p)]
            a = Task("analyze", k.name, "analyze", {"profile": p},
                     {"kernel": kernel_task[k.name].key}, cells, RESOURCES["analyze"])
            tasks.append(a)
            analysis[(k.name, p)] = a
        tasks += _machine_tasks(spec, k, kernel_task[k.name])
    fallback = spec.dom0_fallback
    bare = catalog.host_role(xen=False).name
    xen_roles = [r for r in catalog.names("role") if r in spec.roles and catalog.get("role", r).xen]
    # only when set: a plan without it keeps its task keys
    more = {"confirm": True} if confirm else {}
    hosted: dict[tuple, Task] = {}
    if fallback:
        for p in spec.booted:
            for x, roles in ((x, g) for x in spec.xen for g in catalog.xen_boots(xen_roles)):
                if (t := _hosted_task(spec, p, x, roles, kernel_task, analysis,
                                      {"recheck": recheck, **more})):
                    tasks.append(t)
                    hosted[(p, x, tuple(roles))] = t
    for k in spec.kernels:
        for p in spec.booted:
            suffix = f" [{p}]" if many_hw else ""
            deps = {"kernel": kernel_task[k.name].key, "analysis": analysis[(k.name, p)].key}
            if bare in spec.roles:
                tasks.append(Task("boot", k.name, "boot_baremetal", {"profile": p, "recheck": recheck},
                                  dict(deps),
                                  [Cell(f"{k.name}/{bare}/{p}", "boot", k.name,
                                        bare + suffix, role=bare, hardware=p)],
                                  RESOURCES["boot_baremetal"]))
            if not xen_roles:
                continue
            for x, roles in ((x, g) for x in spec.xen for g in catalog.xen_boots(xen_roles)):
                xdeps = dict(deps)
                hostable = fallback and (fallback != k.name or guests_only(roles))
                if hostable:
                    xdeps["host"] = kernel_task[fallback].key
                    xdeps["host_analysis"] = analysis[(fallback, p)].key
                group = hosted.get((p, x, tuple(roles))) if hostable else None
                tasks.append(Task("boot", k.name, "boot_xen",
                                  {"profile": p, "xen": x, "roles": roles, "recheck": recheck,
                                   **more},
                                  {**xdeps, **({HOSTED: group.key} if group else {})},
                                  _xen_cells(k.name, roles, x, p, many_hw),
                                  RESOURCES["boot_xen"]))
    return Plan(spec, tasks)


def guests_only(roles: list[str]) -> bool:
    """Whether a Xen boot of ROLES has only guest roles (no row's dom0 cell)."""
    return all(catalog.get("role", r).is_guest for r in roles)


def _machine_tasks(spec: Spec, k: KernelSpec, kernel: Task) -> list[Task]:
    """One analyze task and cell per real machine of SPEC for kernel K: its
    coverage, "N/M devices covered" (the machine's devices travel in the args)."""
    roots = [spec.path.resolve().parent]
    out = []
    for ref in spec.machines:
        name = machines.label(ref)
        out.append(Task("analyze", k.name, "analyze_machine",
                        {"machine": name, "profile": machines.to_args(machines.load(ref, roots))},
                        {"kernel": kernel.key},
                        [Cell(machine_cell_id(k.name, name), "analyze", k.name, name, hardware=name)],
                        RESOURCES["analyze"]))
    return out


def _xen_cells(kernel: str, roles: list[str], x: str, p: str, many_hw: bool) -> list[Cell]:
    """The cells of KERNEL's Xen boot of ROLES under Xen X on profile P."""
    suffix = f" [{p}]" if many_hw else ""
    return [Cell(f"{kernel}/{r}/xen-{x}/{p}", "boot", kernel, f"{r} Xen {x}" + suffix,
                 role=r, xen=x, hardware=p) for r in roles]


def _hosted_task(spec: Spec, p: str, x: str, roles: list[str], kernel_task: dict[str, Task],
                 analysis: dict[tuple[str, str], Task], args: dict) -> Task | None:
    """The boot_hosted task of the guest ROLES of every row but the fallback (of
    every row, the fallback too, when ROLES are guests only: no row boots as dom0
    then, the fallback hosts all) under Xen X, on profile P: their cells ride in
    its args (it owns none), the kernels and analyses are its dependencies
    (hosted_kernel_I, hosted_analysis_I)."""
    rows = [k.name for k in spec.kernels if k.name != spec.dom0_fallback or guests_only(roles)]
    if not rows or not any(catalog.get("role", r).is_guest for r in roles):
        return None
    deps = {"host": kernel_task[spec.dom0_fallback].key,
            "host_analysis": analysis[(spec.dom0_fallback, p)].key}
    for i, name in enumerate(rows):
        deps[f"hosted_kernel_{i}"] = kernel_task[name].key
        deps[f"hosted_analysis_{i}"] = analysis[(name, p)].key
    guests = [{"kernel": name, "cells": [c.to_dict() for c in
                                         _xen_cells(name, roles, x, p, len(spec.hardware) > 1)]}
              for name in rows]
    return Task("boot", spec.dom0_fallback, "boot_hosted",
                {"profile": p, "xen": x, "roles": roles, **args, "guests": guests},
                deps, [], RESOURCES["boot_hosted"])


def toolchain_of(k: KernelSpec) -> str:
    """Which toolchain K's build will use, as the plan shows it: its name,
    compiler and suite; for "auto" of a version known only once fetched, so."""
    try:
        tc = toolchains.expected(k.toolchain, sources.named_version(k.source or ""))
    except NotSupported as exc:
        return str(exc)
    if tc is None:
        return "auto: by the kernel's version, once its source is fetched"
    return f"{tc.name} ({tc.compiler}, Debian {tc.suite})"
