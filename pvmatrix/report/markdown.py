"""The published table in Markdown, then the evidence of every cell that did
not pass."""

from __future__ import annotations

import time

from tabulate import tabulate

from . import machineview
from .grid import Grid, build_grid, provenance_lines

MARK = {"pass": "✅", "fail": "❌", "broken": "⚠️", "blocked": "⛔", "skip": "➖", "not run": "⏸"}


def _cell(g: Grid, rec: dict | None) -> str:
    if rec is None:
        return ""
    return f"{MARK.get(rec['verdict']['status'], '')} {g.text(rec)}".replace("|", "\\|")


def _file(name: str, path: str, prefix: str = "") -> str:
    """A link to a file of the run (relative), or the path as code (a host's)."""
    return f"[{name}]({prefix}{path})" if not path.startswith("/") else f"{name} `{path}`"


def _machines(g: Grid) -> list[str]:
    """"For my machine": per machine of the spec, the kernels ranked as `which` ranks them."""
    views = machineview.views(g)
    if not views:
        return []
    out = ["", "## For my machine", "",
           f"Ranked as `pvmatrix which --hardware MACHINE` ranks them: first the kernels that "
           f"drive every storage and network device and pass {views[0].role}.", ""]
    for v in views:
        rows = [[p.rank, p.row + (" (fits)" if p.fits else ""), p.cover,
                 "; ".join(f"{l.kind} {l.name} at {', '.join(l.slots)}" for l in p.lacks) or "none",
                 "; ".join(f"{xen}: " + ", ".join(f"{MARK.get(b.status, '')} {b.role}" for b in bs)
                          for xen, bs in p.boots.items()) or "not booted"]
                for p in v.picks]
        out += [f"### {v.name}", "",
                tabulate([[str(c).replace("|", "\\|") for c in r] for r in rows],
                         headers=["#", "kernel", "devices", "no driver for", "boots"],
                         tablefmt="github", disable_numparse=True), ""]
    return out


def render(run, link_base: str = "") -> str:
    """The page; LINK_BASE is the run directory relative to where it is written."""
    prefix = (link_base.rstrip("/") + "/") if link_base else ""
    g = build_grid(run)
    m = g.meta
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(m.get("started") or 0))
    host = m.get("host") or {}
    out = [f"# pvmatrix run {m['run_id']}", "",
           f"Spec `{m['spec_name']}` (sha256 {m['spec_sha256'][:12]}), pvmatrix {m['tool_version']}, "
           f"started {started}, {m.get('state')}. Host: {host.get('cpus')} CPUs, "
           f"{host.get('mem_gib')} GiB, {host.get('qemu') or 'no QEMU'}, accel {host.get('accel')}.",
           ""]
    rows = [[k, g.versions.get(k, "")] + [_cell(g, g.get(k, c)) for c in g.columns] for k in g.kernels]
    out.append(tabulate(rows, headers=["kernel", "version", *g.columns], tablefmt="github", disable_numparse=True))
    out += ["", "Legend: " + ", ".join(f"{v} {k}" for k, v in MARK.items()), ""]
    counts = g.counts()
    out.append("Cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".")
    out += _machines(g)
    bad = [r for r in g.records if r["verdict"]["status"] not in ("pass", "skip")
           or any(x.disagree for x in g.checks.get(r["cell"]["id"], ()))]
    if bad:
        out += ["", "## Cells that did not pass", ""]
    for rec in bad:
        v = rec["verdict"]
        out.append(f"### {rec['cell']['id']}: {v['status']}")
        out += ["", v.get("reason", "").replace("\n", " "), ""]
        if rec.get("retries"):
            r = rec["retries"]
            out += [f"Retried: **{r['summary']}** ("
                    + ", ".join(f"#{a['attempt']} {a['status']}" for a in r["attempts"]) + ")", ""]
        ev = v.get("evidence") or []
        if ev:
            out.append("```")
            out += [f"{('L' + str(e['line'])) if e.get('line') else '--':>6} {e['text']}"
                    for e in ev[:12]]
            out.append("```")
        logs = {k: p for k, p in (rec.get("logs") or {}).items()
                if p and not k.startswith("qemu_script") and k != "boot_dir"}
        if logs:
            out += ["", "Logs: " + ", ".join(_file(k, p, prefix) for k, p in logs.items())]
        if rec.get("reproduce"):
            r = rec["reproduce"]
            out += ["", f"Reproduce: `{r['command']}`"
                    + (f" or {_file('plain QEMU script', r['qemu_script'], prefix)}"
                       if r.get("qemu_script") else "")]
        if prov := provenance_lines(rec):
            out += ["", "Provenance: " + "; ".join(f"{k} `{v}`" for k, v in prov)]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
