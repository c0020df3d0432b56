"""The main job: every kernel of a spec, built (or found) and summarized."""

from __future__ import annotations

import sys

from tabulate import tabulate

from . import spec as specs
from .build import build
from .errors import PvmError


def run(path: str | None) -> int:
    """Build every kernel of the spec; a failed kernel is reported, the rest go on."""
    spec = specs.load(path)
    rows, failed = [], 0
    for k in spec.kernels:
        print(f"pvmatrix: [{len(rows) + 1}/{len(spec.kernels)}] {k.name}", file=sys.stderr)
        try:
            b = build(k.source, k.base, k.fragments, k.toolchain)
        except PvmError as exc:
            failed += 1
            rows.append((k.name, "", "", "build failed", "", str(exc)))
            continue
        unmet = ", ".join(u["symbol"].removeprefix("CONFIG_") for u in b.unmet) or "-"
        rows.append((k.name, b.version, b.toolchain,
                     "cached" if b.cached else f"built {b.build_s:.0f} s", unmet, str(b.dir)))
    print(tabulate(rows, headers=["kernel", "version", "toolchain", "build", "unmet options",
                                  "artifacts"]))
    return 1 if failed else 0
