#!/usr/bin/env python3
"""Boot benchmark: one Xen boot (dom0 + domU-pv + domU-pvh + hardware probes)
and one bare-metal boot of the builder's small 6.1 Xen kernel, on this
machine's accelerator (TCG here). Writes bench/results/boot.json.

The kernel, Xen and the dom0 userspace come from the pvmatrix cache (built or
fetched first if missing, outside the timed part). Timed: wall time of each
QEMU boot as the harness runs it, from QEMU start to its exit.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pvmatrix import build  # noqa: E402
from pvmatrix.boot import harness, qemu, userspace, xen  # noqa: E402
from pvmatrix.boot.kernel import from_build  # noqa: E402

SOURCE = "debian:linux-source-6.1@bookworm"
FRAGMENTS = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]
ROUNDS = int(os.environ.get("PVMATRIX_BENCH_ROUNDS", "1"))


def main() -> int:
    kernel = from_build(build.build(SOURCE, "tinyconfig", FRAGMENTS))
    userspace.dom0_initramfs(xen.hypervisor("4.17"))      # prepared, not timed
    accel = qemu.probe_accel()
    load_before = os.getloadavg()
    xen_runs, bare_runs = [], []
    for _ in range(ROUNDS):
        cells = harness.run_cells(kernel, ["dom0", "domU-pv", "domU-pvh"])
        xen_runs.append({c.role: c for c in cells})
        bare_runs.append(harness.run_cells(kernel, ["baremetal"])[0])
    failed = []             # a round with a cell that is not ok is reported, not timed
    for run in xen_runs + [{"baremetal": c} for c in bare_runs]:
        bad = [f"{r}: {c.verdict.status} ({c.verdict.reason})" for r, c in run.items()
               if not c.verdict.ok]
        if bad:
            failed.append({"boot": str(next(iter(run.values())).boot.dir), "cells": bad})
    good_xen = [r for r in xen_runs if all(c.verdict.ok for c in r.values())]
    good_bare = [c for c in bare_runs if c.verdict.ok]
    if not good_xen or not good_bare:
        sys.exit(f"boot benchmark: no round with every cell ok: {failed}")
    best = sorted(good_xen, key=lambda r: r["dom0"].boot.wall_s)[(len(good_xen) - 1) // 2]
    bare = sorted(good_bare, key=lambda c: c.boot.wall_s)[(len(good_bare) - 1) // 2]
    result = {
        "dom0_pv_pvh_probes_s": best["dom0"].boot.wall_s,      # median of the good rounds
        "baremetal_s": bare.boot.wall_s,
        "failed_rounds": failed,
        "peak_rss_mb": max([r["dom0"].boot.peak_rss_mb for r in xen_runs]
                           + [c.boot.peak_rss_mb for c in bare_runs]),
        "per_role_s": {
            "baremetal_probes_done": bare.seconds,
            "dom0_toolstack_ready": best["dom0"].seconds,
            "domU-pv": best["domU-pv"].seconds,
            "domU-pvh": best["domU-pvh"].seconds,
        },
        "peak_rss_mb_per_boot": {"xen": best["dom0"].boot.peak_rss_mb,
                                 "baremetal": bare.boot.peak_rss_mb},
        "all_runs_s": {"xen": [r["dom0"].boot.wall_s for r in xen_runs],
                       "baremetal": [c.boot.wall_s for c in bare_runs]},
        "accel": accel.name,
        "accel_why": accel.why,
        "kernel": kernel.label,
        "xen": "4.17",
        "guests": "sequential",
        "host_load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "date": time.strftime("%Y-%m-%d")},
        "targets": {"dom0_pv_pvh_probes_s": 60, "baremetal_s": 15},
    }
    out = HERE / "results" / "boot.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
