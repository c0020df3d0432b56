"""The published table as one static HTML page (Jinja2 template
pvmatrix/data/templates/page.html.j2): a heatmap of kernel rows against Xen
release x role/device columns, filterable by suite, Xen release and role
(plain JS in the page: no network, works from file://), each cell linking to
its evidence (further down the page), its log and its reproducer, with its
history over the spec's last runs as a strip and a triage label on failures
(results/history.py), and "for my machine": the kernels ranked per real
machine of the spec (report/machineview.py)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import machineview
from .grid import anchor, build_grid, provenance_lines
from ..paths import DATA
from ..records import STATUSES
from ..results import history
from ..results.records import machine_of, safe_name

SUITE = re.compile(r"@([A-Za-z0-9.+-]+)$")


@dataclass
class Column:
    name: str
    group: str                 # the header above it: "Xen 4.17", "hardware", ...
    label: str
    xen: str = ""
    role: str = ""


@dataclass
class CellView:
    rec: dict
    status: str
    text: str
    anchor: str
    triage: str = ""
    strip: list[tuple[str, str]] = field(default_factory=list)
    log: str = ""
    repro: str = ""


@dataclass
class Row:
    kernel: str
    version: str
    suite: str
    cells: list[CellView | None]


def css(status: str | None) -> str:
    return "st-" + (status or "none").replace(" ", "-")


def _column(name: str, rec: dict) -> Column:
    c = rec["cell"]
    if c["stage"] in ("source", "build"):
        return Column(name, "kernel", "build")
    if c["stage"] == "analyze":
        if machine := machine_of(c):
            return Column(name, "machines", machine)
        return (Column(name, "static", name) if c.get("device") is None
                else Column(name, "hardware", c["device"]))
    if c.get("xen"):
        return Column(name, f"Xen {c['xen']}", c.get("role") or name, c["xen"], c.get("role") or "")
    return Column(name, "no Xen", c.get("role") or name, "", c.get("role") or "")


def suite_of(records: list[dict]) -> str:
    """The Debian suite a kernel came from (its package or source spec), or "-"."""
    for rec in records:
        m, i, p = rec.get("manifest") or {}, rec.get("inputs") or {}, rec.get("provenance") or {}
        if m.get("suite"):
            return m["suite"]
        for spec in (i.get("package"), i.get("source"), p.get("source")):
            if isinstance(spec, str) and (found := SUITE.search(spec)):
                return found.group(1)
    return "-"


def _link(prefix: str, path: str | None) -> str:
    return prefix + path if path and not path.startswith("/") else ""


def _view(rec: dict, text: str, past: history.Past | None, prefix: str) -> CellView:
    status = rec["verdict"]["status"]
    repro = rec.get("reproduce") or {}
    return CellView(rec, status, text, anchor(rec),
                    past.triage() if past else "", past.strip() if past else [],
                    _link(prefix, (rec.get("logs") or {}).get("serial")
                          or (rec.get("logs") or {}).get("serial_copy")
                          or (rec.get("logs") or {}).get("build")),
                    _link(prefix, repro.get("rerun_script") or repro.get("qemu_script")))


def pasts_of(run) -> dict[str, history.Past]:
    """Each cell's past: the spec's history with this run as it is now."""
    meta = run.meta
    entries = [e for e in history.load(run.dir.parent, meta["spec_name"]) if e.run_id != run.id]
    entries.append(history.Entry.of(meta, run.records()))
    entries.sort(key=lambda e: (e.started, e.run_id))
    return history.pasts(entries, run.id)


def _evidence(rec: dict, prefix: str) -> dict:
    v = rec["verdict"]
    lines = "\n".join(f"{('L' + str(e['line'])) if e.get('line') else '--':>6} {e['text']}"
                      + (f"   [{e['note']}]" if e.get("note") else "")
                      for e in (v.get("evidence") or [])[:20])
    logs = [(k, _link(prefix, str(p)), str(p)) for k, p in (rec.get("logs") or {}).items()
            if p and not k.startswith("qemu_script") and k not in ("boot_dir",)]
    repro = rec.get("reproduce") or {}
    return {"rec": rec, "anchor": anchor(rec), "lines": lines, "logs": logs, "provenance": provenance_lines(rec),
            "inputs": json.dumps(rec.get("inputs") or {}, indent=1, sort_keys=True),
            "repro": repro, "rerun": _link(prefix, repro.get("rerun_script")),
            "qemu": _link(prefix, repro.get("qemu_script")),
            "json": f"{prefix}cells/{safe_name(rec['cell']['id'])}.json"}


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(DATA / "templates")),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["css"] = css
    return env


def render(run, link_base: str = "") -> str:
    """The page; LINK_BASE is the run directory relative to where the page is written."""
    g = build_grid(run)
    m = g.meta
    prefix = (link_base.rstrip("/") + "/") if link_base else ""
    pasts = pasts_of(run)
    first = {col: next(r for (k, c), r in g.entries.items() if c == col) for col in g.columns}
    columns = [_column(col, first[col]) for col in g.columns]
    rows = []
    for k in g.kernels:
        recs = [r for r in g.records if r["cell"]["kernel"] == k]
        cells = [(_view(rec, g.text(rec), pasts.get(rec["cell"]["id"]), prefix) if rec else None)
                 for rec in (g.get(k, col) for col in g.columns)]
        rows.append(Row(k, g.versions.get(k, ""), suite_of(recs), cells))
    groups: list[tuple[str, int]] = []
    for col in columns:
        if groups and groups[-1][0] == col.group:
            groups[-1] = (col.group, groups[-1][1] + 1)
        else:
            groups.append((col.group, 1))
    order = {(k, c): i for i, (k, c) in enumerate((k, c) for k in g.kernels for c in g.columns)}
    evidence = [_evidence(r, prefix) for r in sorted(
        g.records, key=lambda r: (order.get((r["cell"]["kernel"], r["cell"]["column"]), len(order)),
                                  r["cell"]["id"]))]
    triaged: dict[str, int] = {}
    for row in rows:
        for cell in row.cells:
            if cell and cell.triage:
                key = cell.triage.split(" (")[0]
                triaged[key] = triaged.get(key, 0) + 1
    return _env().get_template("page.html.j2").render(
        meta=m, host=m.get("host") or {}, statuses=STATUSES, columns=columns, groups=groups,
        rows=rows, machines=machineview.views(g), counts={s: n for s, n in g.counts().items() if n}, evidence=evidence,
        triaged=triaged, runs=len(next(iter(pasts.values())).runs) if pasts else 1,
        suites=sorted({r.suite for r in rows}), xens=sorted({c.xen for c in columns if c.xen}),
        roles=list(dict.fromkeys(c.role for c in columns if c.role)),
        started=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(m.get("started") or 0)))
