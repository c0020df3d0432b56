#!/usr/bin/env python3
"""Boot benchmark: per Xen release of the catalog, one Xen boot of the same
kernel with every plain Xen role (dom0 + PV domU + PVH domU and the hardware
probes), one bare-metal boot, and one boot under the default release with the
lifecycle roles too (save/restore, migration: what each adds to its plain
guest), on this machine's accelerator (TCG here).
Writes bench/results/boot.json.

    python3 bench/boot.py [--rounds N] [--xen RELEASE ...]
    python3 bench/boot.py --profiles [--rounds N]
    python3 bench/boot.py --hvm [--rounds N] [--xen RELEASE ...]

--profiles measures only the hardware axis's cost: a dom0 boot of Debian's 6.1
generic kernel (it drives every device) with the whole `qemu` profile against
one with the `default` profile, under the default release (goal: at most
PROFILE_GOAL times as long), and writes it into boot.json's "profiles",
leaving the rest of the file as it was.

--hvm measures only the HVM guest (issue 15): per release, Debian's 6.1
generic kernel as dom0 and as an HVM guest (boot disk, SeaBIOS, PV front-ends);
the guest's own seconds, from xl create to its init's last word (goal: at most
HVM_GOAL_S), into boot.json's "hvm".

The kernel (the builder's small Debian 6.1 Xen kernel), each release's Xen and
dom0 userspace come from the pvmatrix cache (built or fetched first if
missing, outside the timed part). Timed: wall time of each QEMU boot as the
harness runs it, from QEMU start to its exit; each role's own seconds as the
harness reports them. The goal: each release's Xen boot within GOAL_S under
TCG on 2 cores. Roles and releases come from the catalog, nothing is named here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pvmatrix import build, catalog  # noqa: E402
from pvmatrix.boot import harness, qemu, userspace, xen  # noqa: E402
from pvmatrix.boot.kernel import from_build  # noqa: E402

SOURCE = "debian:linux-source-6.1@bookworm"
FRAGMENTS = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]
GOAL_S = 60.0                 # per release: dom0 + PV + PVH with probes, TCG, 2 cores
GOAL_WHERE = "TCG on 2 cores"
LIFECYCLE_GOAL_S = 15.0       # what a save/restore or a migration adds to a guest
PROFILE_KERNEL = "debian:linux-image-6.1.0-50-amd64@bookworm"
PROFILES = ("default", "qemu")   # the baseline first
PROFILE_GOAL = 1.5               # the qemu profile's dom0 boot / the default one's
HVM_GOAL_S = 60.0               # issue 15: an HVM guest, xl create to its last word
HVM_ROLE = "domU-hvm"


@dataclass
class Release:
    """One Xen release's figures: the median good round, every round's wall."""
    wall_s: float | None              # the whole Xen boot (median of the good rounds)
    roles_s: dict[str, float | None]  # each role's own seconds in that round
    goal_met: bool
    peak_rss_mb: float | None
    all_runs_s: list[float]
    failed_rounds: list[dict] = field(default_factory=list)


def xen_roles() -> list[str]:
    """The Xen roles of a plain boot (dom0 and its PV and PVH guests); lifecycle
    roles (save, migrate) are timed apart (lifecycle()), and so are the modes
    (domU-hvm, dom0-pvh: another device model, another boot) and a guest booted
    on its own (domU-pv-passthrough)."""
    return [r for r in catalog.names("role") if (role := catalog.get("role", r)).xen
            and role.lifecycle is None and not role.dom0_packages and not role.xen_cmdline
            and not role.own_boot]


def lifecycle_roles() -> list[str]:
    return [r for r in catalog.names("role") if catalog.get("role", r).lifecycle]


def plain_of(role: str) -> str:
    """The plain guest role of ROLE's guest type (domU-pv for domU-pv-save)."""
    kind = catalog.get("role", role).guest_type
    return next(r for r in xen_roles() if catalog.get("role", r).guest_type == kind)


def lifecycle(cells: list[harness.Cell], goal_s: float = LIFECYCLE_GOAL_S) -> dict:
    """Per lifecycle role of one boot: its own seconds, its plain guest's, and
    what the save/restore or migration added (goal: GOAL_S or less)."""
    by_role = {c.role: c for c in cells}
    out = {}
    for role in lifecycle_roles():
        cell, plain = by_role.get(role), by_role.get(plain_of(role))
        added = (round(cell.seconds - plain.seconds, 2)
                 if cell and plain and cell.seconds is not None and plain.seconds is not None
                 else None)
        out[role] = {"ok": bool(cell and cell.verdict.ok), "role_s": cell.seconds if cell else None,
                     "plain_s": plain.seconds if plain else None, "added_s": added,
                     "goal_met": added is not None and added <= goal_s and cell.verdict.ok}
    return out


def failures(cells: list[harness.Cell]) -> dict | None:
    """A round with a cell that is not ok: reported, not timed."""
    bad = [f"{c.role}: {c.verdict.status} ({c.verdict.reason})" for c in cells if not c.verdict.ok]
    return {"boot": str(cells[0].boot.dir), "cells": bad} if bad else None


def median(rounds: list[list[harness.Cell]]) -> list[harness.Cell]:
    """The median round by its boot's wall time (the lower one of an even count)."""
    return sorted(rounds, key=lambda cells: cells[0].boot.wall_s)[(len(rounds) - 1) // 2]


def release(rounds: list[list[harness.Cell]], goal_s: float = GOAL_S) -> Release:
    """One release's figures from its rounds (each: the cells of one Xen boot)."""
    failed = [f for f in map(failures, rounds) if f]
    good = [cells for cells in rounds if not failures(cells)]
    walls = [cells[0].boot.wall_s for cells in rounds]
    if not good:
        return Release(None, {}, False, None, walls, failed)
    best = median(good)
    wall = best[0].boot.wall_s
    return Release(wall, {c.role: c.seconds for c in best}, wall <= goal_s,
                   max(cells[0].boot.peak_rss_mb for cells in rounds), walls, failed)


def host(accel: qemu.Accel, load_before: float) -> dict:
    return {"accel": accel.name, "accel_why": accel.why, "cpus": os.cpu_count(),
            "machine": platform.machine(), "host_kernel": platform.release(),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
            "load_avg_1m": {"before": round(load_before, 2),
                            "after": round(os.getloadavg()[0], 2)}}


def result(kernel: str, releases: dict[str, Release], bare: harness.Cell | None,
           host_facts: dict, lifecycles: dict | None = None) -> dict:
    """The JSON of bench/results/boot.json."""
    return {
        "goal": {"xen_boot_s": GOAL_S, "where": GOAL_WHERE,
                 "met": all(r.goal_met for r in releases.values())},
        "kernel": kernel,
        "roles": xen_roles(),
        "guests": "sequential",
        "releases": {name: asdict(r) for name, r in releases.items()},
        "baremetal": None if bare is None else {
            "wall_s": bare.boot.wall_s, "role_s": bare.seconds, "ok": bare.verdict.ok,
            "peak_rss_mb": bare.boot.peak_rss_mb},
        "lifecycle": None if lifecycles is None else {
            "xen": catalog.default("xen").name, "goal_added_s": LIFECYCLE_GOAL_S,
            "met": all(r["goal_met"] for r in lifecycles.values()), "roles": lifecycles},
        "host": host_facts,
    }


def profile_boot(kernel, profile: str, xen_version: str) -> harness.Cell:
    """One dom0 boot of KERNEL with the devices of hardware PROFILE."""
    return harness.run_cells(kernel, [catalog.host_role(xen=True).name], xen_version,
                             catalog.profile(profile).qemu_devices)[0]


def profiles(rounds: dict[str, list[harness.Cell]], goal: float = PROFILE_GOAL) -> dict:
    """boot.json's "profiles": per profile the median dom0 boot's wall (of the
    rounds whose dom0 passed with every device's probes), its devices that
    failed, and the ratio of the last profile to the first (goal: GOAL)."""
    out: dict = {"goal_ratio": goal, "kernel": PROFILE_KERNEL, "boots": {}}
    for name, cells in rounds.items():
        good = [c for c in cells if c.verdict.ok]
        best = median([[c] for c in good])[0] if good else None
        out["boots"][name] = {
            "wall_s": best.boot.wall_s if best else None,
            "dom0_s": best.seconds if best else None,
            "devices": len(best.devices) if best else None,
            "devices_failed": sorted(n for n, h in best.devices.items() if not h.get("ok"))
            if best else None,
            "all_runs_s": [c.boot.wall_s for c in cells],
            "failed_rounds": [f"{c.verdict.status}: {c.verdict.reason} ({c.boot.dir})"
                              for c in cells if not c.verdict.ok]}
    base, full = (out["boots"][n]["wall_s"] for n in (PROFILES[0], PROFILES[-1]))
    out["ratio"] = round(full / base, 2) if base and full else None
    out["met"] = out["ratio"] is not None and out["ratio"] <= goal
    return out


def measure_profiles(rounds: int, path: Path) -> dict:
    """Time PROFILES' dom0 boots, merge them into the boot.json at PATH."""
    from pvmatrix.boot.kernel import load
    kernel = load(PROFILE_KERNEL)
    name = catalog.default("xen").name
    userspace.dom0_initramfs(xen.hypervisor(name))       # prepared, not timed
    got = profiles({p: [profile_boot(kernel, p, name) for _ in range(rounds)] for p in PROFILES})
    got["xen"] = name
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, "profiles": got}, indent=2) + "\n")
    return got


def measure_hvm(rounds: int, releases: list[str], path: Path) -> dict:
    """Time the HVM guest role under each of RELEASES; merge into boot.json's "hvm"."""
    from pvmatrix.boot.kernel import load
    kernel = load(PROFILE_KERNEL)
    out: dict = {"goal_s": HVM_GOAL_S, "kernel": PROFILE_KERNEL, "releases": {}}
    for name in releases:
        userspace.dom0_initramfs(xen.hypervisor(name))   # prepared, not timed
        cells = [harness.run_cells(kernel, [catalog.host_role(xen=True).name, HVM_ROLE], name)[-1]
                 for _ in range(rounds)]
        good = sorted(c.seconds for c in cells if c.verdict.ok)
        out["releases"][name] = {
            "guest_s": good[len(good) // 2] if good else None,
            "all_runs": [{"status": c.verdict.status, "guest_s": c.seconds,
                          "reason": c.verdict.reason, "wall_s": c.boot.wall_s} for c in cells]}
    out["met"] = {n: r["guest_s"] is not None and r["guest_s"] <= HVM_GOAL_S
                  for n, r in out["releases"].items()}
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, "hvm": out}, indent=2) + "\n")
    return out


def measure(kernel, name: str, rounds: int) -> Release:
    userspace.dom0_initramfs(xen.hypervisor(name))       # prepared, not timed
    runs = [harness.run_cells(kernel, xen_roles(), name) for _ in range(rounds)]
    return release(runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1, help="Xen boots per release (median)")
    p.add_argument("--xen", nargs="+", default=catalog.names("xen"),
                   help="releases (default: every one the catalog has)")
    p.add_argument("--profiles", action="store_true",
                   help="only the default against the qemu hardware profile (dom0 boots)")
    p.add_argument("--hvm", action="store_true",
                   help="only the HVM guest under each release (--xen)")
    args = p.parse_args(argv)
    if args.hvm:
        got = measure_hvm(args.rounds, args.xen, HERE / "results" / "boot.json")
        print(json.dumps(got, indent=2))
        return 0
    if args.profiles:
        got = measure_profiles(args.rounds, HERE / "results" / "boot.json")
        print(json.dumps(got, indent=2))
        return 0 if got["ratio"] is not None else 1
    for name in args.xen:
        catalog.get("xen", name)                  # an unknown release: before any work
    kernel = from_build(build.build(SOURCE, "tinyconfig", FRAGMENTS))
    accel = qemu.probe_accel()
    load_before = os.getloadavg()[0]
    releases = {name: measure(kernel, name, args.rounds) for name in args.xen}
    bare = harness.run_cells(kernel, [catalog.host_role(xen=False).name])[0]
    lives = lifecycle(harness.run_cells(kernel, [*xen_roles(), *lifecycle_roles()]))
    out = result(kernel.label, releases, bare, host(accel, load_before), lives)
    path = HERE / "results" / "boot.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0 if all(r.wall_s is not None for r in releases.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
