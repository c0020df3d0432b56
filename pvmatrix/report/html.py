"""The published table as one static HTML page: rows = kernels, columns =
build, static Xen support, hardware devices and Xen roles; each cell coloured
by status and linking to its evidence further down the page (and to its JSON
record)."""

from __future__ import annotations

import json
import time
from html import escape

from .grid import anchor, build_grid, provenance_lines, short
from ..records import STATUSES
from ..results.records import safe_name

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table.matrix{border-collapse:collapse;margin:1em 0}
table.matrix th,table.matrix td{border:1px solid #999;padding:.35em .6em;text-align:center;font-size:.92em}
table.matrix th.kernel{text-align:left}
td a{color:inherit;text-decoration:none;display:block}
.st-pass{background:#b7e4b0}.st-fail{background:#f4a6a6}.st-broken{background:#f7d08a}
.st-blocked{background:#d9c2e9}.st-skip{background:#e8e8e8;color:#555}.st-not-run{background:#cfe0f5}
.st-none{background:#fff}
section.evidence{border-top:1px solid #ccc;margin-top:1em;padding-top:.4em}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:.85em}
.legend span{padding:.15em .5em;margin-right:.4em;border:1px solid #999}
td.flaky{background:repeating-linear-gradient(45deg,#f4a6a6,#f4a6a6 6px,#b7e4b0 6px,#b7e4b0 12px)}
table.prov td{text-align:left;font-size:.85em;padding:0 .6em 0 0}
"""


def _cls(status: str | None) -> str:
    return "st-" + (status or "none").replace(" ", "-")


def render(run, link_base: str = "") -> str:
    """The page; LINK_BASE is the run directory relative to where the page is written."""
    g = build_grid(run)
    m = g.meta
    host = m.get("host") or {}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(m.get("started") or 0))
    prefix = (link_base.rstrip("/") + "/") if link_base else ""
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>pvmatrix run {escape(m['run_id'])}</title><style>{STYLE}</style></head><body>",
         f"<h1>pvmatrix: kernels &times; hardware &times; Xen roles</h1>",
         f"<p>Run <code>{escape(m['run_id'])}</code> of spec <code>{escape(m['spec_name'])}</code>, "
         f"pvmatrix {escape(m['tool_version'])}, started {started}, {escape(str(m.get('state')))}. "
         f"Host: {host.get('cpus')} CPUs, {host.get('mem_gib')} GiB, "
         f"{escape(str(host.get('qemu') or 'no QEMU'))}, accel {escape(str(host.get('accel')))}.</p>",
         '<p class="legend">' + "".join(f'<span class="{_cls(s)}">{s}</span>' for s in STATUSES)
         + "</p>",
         '<table class="matrix" id="matrix"><thead><tr><th class="kernel">kernel</th><th>version</th>'
         + "".join(f'<th scope="col">{escape(c)}</th>' for c in g.columns) + "</tr></thead><tbody>"]
    for k in g.kernels:
        row = [f'<tr data-kernel="{escape(k)}"><th class="kernel" scope="row">{escape(k)}</th>'
               f"<td>{escape(g.versions.get(k, ''))}</td>"]
        for col in g.columns:
            rec = g.get(k, col)
            if rec is None:
                row.append('<td class="st-none"></td>')
                continue
            v = rec["verdict"]
            flaky = " flaky" if rec.get("flaky") else ""
            row.append(f'<td class="{_cls(v["status"])}{flaky}" data-cell="{escape(rec["cell"]["id"])}" '
                       f'data-status="{escape(v["status"])}" title="{escape(v.get("reason", ""))}">'
                       f'<a href="#{anchor(rec)}">{escape(short(rec))}</a></td>')
        h.append("".join(row) + "</tr>")
    h.append("</tbody></table>")
    counts = g.counts()
    h.append("<p>Cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".</p>")
    h.append("<h2>Evidence</h2>")
    order = {(k, c): i for i, (k, c) in enumerate((k, c) for k in g.kernels for c in g.columns)}
    for rec in sorted(g.records, key=lambda r: (order.get((r["cell"]["kernel"], r["cell"]["column"]),
                                                          len(order)), r["cell"]["id"])):
        h.append(_evidence(rec, prefix))
    h.append("</body></html>")
    return "\n".join(h) + "\n"


def _evidence(rec: dict, prefix: str) -> str:
    v, c = rec["verdict"], rec["cell"]
    lines = "\n".join(f"{('L' + str(e['line'])) if e.get('line') else '--':>6} {e['text']}"
                      + (f"   [{e['note']}]" if e.get("note") else "")
                      for e in (v.get("evidence") or [])[:20])
    logs = "".join(f'<li>{escape(k)}: <a href="{escape(prefix + str(p))}">{escape(str(p))}</a></li>'
                   if k == "serial_copy" else f"<li>{escape(k)}: <code>{escape(str(p))}</code></li>"
                   for k, p in (rec.get("logs") or {}).items() if not k.startswith("qemu_script"))
    inputs = json.dumps(rec.get("inputs") or {}, indent=1, sort_keys=True)
    retried = rec.get("retries")
    prov = "".join(f"<tr><td>{escape(k)}</td><td><code>{escape(val)}</code></td></tr>"
                   for k, val in provenance_lines(rec))
    repro = rec.get("reproduce") or {}
    return (f'<section class="evidence" id="{anchor(rec)}"><h3 class="{_cls(v["status"])}">'
            f'{escape(c["id"])}: {escape(v["status"])}</h3>'
            f"<p>{escape(v.get('reason', ''))}</p>"
            + (f'<p class="retries">Retried: <b>{escape(retried["summary"])}</b> ('
               + ", ".join(f"#{a['attempt']} {escape(a['status'])}" for a in retried["attempts"])
               + ")</p>" if retried else "")
            + (f"<pre>{escape(lines)}</pre>" if lines else "")
            + (f"<ul>{logs}</ul>" if logs else "")
            + (f"<p>Reproduce: <code>{escape(repro['command'])}</code>"
               + (f' or <a href="{escape(prefix + repro["qemu_script"])}">plain QEMU script</a>'
                  if repro.get("qemu_script") else "") + "</p>" if repro else "")
            + (f'<details><summary>provenance</summary><table class="prov">{prov}</table></details>'
               if prov else "")
            + f"<details><summary>inputs</summary><pre>{escape(inputs)}</pre></details>"
            + f'<p><a href="{escape(prefix)}cells/{safe_name(c["id"])}.json">record (JSON)</a></p>'
            + "</section>")
