#!/usr/bin/env python3
"""Ladder bisection benchmark: kernels booted against ceil(log2 N) + 2 over
trixie-backports' prebuilt kernels, and a second bisection that boots none.

In its own cache (bench/.cache by default), with the bisection's remembered
answers emptied first so that the first bisection is cold; packages already
downloaded stay (downloads are not what is measured). Then the same
bisection again: every answer must come from the first one. Writes the
"ladder" entry of bench/results/bisect.json (the commit bisection's fields,
from bench/bisect.py, are kept).

    python3 bench/bisect_ladder.py [--ladder L] [--cell dom0] [--xen 4.17] [--versions RANGE]
                                   [--key ladder]

When the two ends answer alike (no kernel of the range breaks the cell), the
entry says so: only the two ends are booted, which is within the bound too;
choose a cell or range that breaks with --cell, --xen, --versions. A ladder
with a real break: bookworm+bookworm-backports (6.1, then 6.12) for a PV guest
under Xen 4.14, written as another KEY:

    python3 bench/bisect_ladder.py --ladder debian:linux-image-amd64@bookworm+bookworm-backports \
        --cell domU-pv --xen 4.14 --key ladder_break
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("PVMATRIX_CACHE", str(HERE / ".cache"))
sys.path.insert(0, str(HERE.parent))

from pvmatrix.bisect import ladder as bisect_ladder, probe  # noqa: E402
from pvmatrix.bisect.probe import CellSpec  # noqa: E402
from pvmatrix.errors import UserError  # noqa: E402
from pvmatrix.paths import cache_root  # noqa: E402

LADDER = "debian:linux-image-amd64@trixie-backports"


def counting_boots() -> list[str]:
    """Every real boot from now on, by kernel (a fail is booted twice: one kernel)."""
    booted: list[str] = []
    real = probe._boot

    def counted(kernel, *args):
        booted.append(kernel.label)
        return real(kernel, *args)

    probe._boot = counted
    return booted


def bisect_once(ladder: str, cell: CellSpec, versions: str | None, booted: list[str]) -> dict:
    """One bisection: what it found, the kernels it booted, its wall time."""
    before, start = len(booted), time.monotonic()
    try:
        r = bisect_ladder.bisect(ladder, versions, cell, say=lambda m: print(m, file=sys.stderr))
        got = {"first_bad": r.first_bad, "last_good": r.last_good, "could_be": r.could_be,
               "rungs": len(r.rungs), "boot_bound": r.boot_bound,
               "steps": [{"abi": s.label, "answer": s.outcome, "status": s.status,
                          "remembered": s.boot_cached, "boot_s": round(s.boot_s, 1)}
                         for s in r.endpoints + r.steps]}
    except UserError as exc:          # the ends do not differ: nothing to find
        got = {"error": str(exc)}
    got["kernels_booted"] = len(set(booted[before:]))
    got["wall_s"] = round(time.monotonic() - start, 1)
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ladder", default=LADDER)
    ap.add_argument("--key", default="ladder", help="bisect.json's entry to write")
    ap.add_argument("--cell", default="dom0")
    ap.add_argument("--xen")
    ap.add_argument("--versions", help="a PEP 440 range of the ladder (default: every ABI)")
    args = ap.parse_args()
    cell = CellSpec.parse(args.cell, args.xen)
    shutil.rmtree(cache_root() / "bisect" / "verdicts", ignore_errors=True)   # cold answers
    booted = counting_boots()
    cold = bisect_once(args.ladder, cell, args.versions, booted)
    warm = bisect_once(args.ladder, cell, args.versions, booted)
    n = cold.get("rungs") or len(bisect_ladder.rungs(args.ladder, args.versions))
    bound = bisect_ladder.bound(n)
    entry = {
        "ladder": args.ladder,
        "versions": args.versions or "",
        "cell": str(cell),
        "rungs": n,
        "boot_bound": bound,
        "kernels_booted": cold["kernels_booted"],
        "within_bound": cold["kernels_booted"] <= bound,
        "ends_differ": "error" not in cold,
        "first_bad": cold.get("first_bad"),
        "last_good": cold.get("last_good"),
        "rerun_kernels_booted": warm["kernels_booted"],
        "rerun_same_answer": warm.get("first_bad") == cold.get("first_bad")
                             and warm.get("error") == cold.get("error"),
        "wall_s": cold["wall_s"],
        "rerun_wall_s": warm["wall_s"],
        "first": cold,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": os.getloadavg()[0]},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goal": "kernels_booted <= ceil(log2 rungs) + 2; rerun_kernels_booted == 0",
    }
    out = HERE / "results" / "bisect.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    results[args.key] = entry
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(entry, indent=2))
    return 0 if entry["within_bound"] and entry["rerun_kernels_booted"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
