"""The run as a table on a terminal (tabulate), with a line per cell that did
not pass."""

from __future__ import annotations

from tabulate import tabulate

from .grid import build_grid


def render(run) -> str:
    g = build_grid(run)
    rows = [[k, g.versions.get(k, "")] + [g.text(g.get(k, col)) for col in g.columns]
            for k in g.kernels]
    meta = g.meta
    lines = [f"run {meta['run_id']} (spec {meta['spec_name']}, pvmatrix {meta['tool_version']}, "
             f"{meta.get('state')})",
             tabulate(rows, headers=["kernel", "version", *g.columns], disable_numparse=True), ""]
    counts = g.counts()
    lines.append("cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for rec in g.records:
        v = rec["verdict"]
        if v["status"] not in ("pass", "skip") and rec["cell"]["stage"] != "source":
            lines.append(f"  {rec['cell']['id']}: {v['status']}: {v.get('reason', '')[:110]}")
    return "\n".join(lines)
