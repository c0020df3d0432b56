"""JUnit XML for CI: a test suite per kernel, a test case per cell. fail is a
<failure>, broken an <error> (not the kernel's fault), blocked / skip / not
run are <skipped> with the reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .grid import build_grid


def render(run) -> str:
    g = build_grid(run)
    root = ET.Element("testsuites", name=f"pvmatrix {g.meta['run_id']}")
    for kernel in g.kernels:
        recs = [r for r in g.records if r["cell"]["kernel"] == kernel]
        suite = ET.SubElement(root, "testsuite", name=kernel, tests=str(len(recs)))
        n = {"failures": 0, "errors": 0, "skipped": 0}
        for rec in recs:
            v, c = rec["verdict"], rec["cell"]
            case = ET.SubElement(suite, "testcase", classname=f"{kernel}.{c['stage']}",
                                 name=c["id"], time=f"{(rec.get('durations') or {}).get('task_s', 0):.3f}")
            text = "\n".join(e["text"] for e in (v.get("evidence") or [])[:12])
            if v["status"] == "fail":
                retried = (rec.get("retries") or {}).get("summary")
                msg = f"{retried}: {v.get('reason', '')}" if retried else v.get("reason", "")
                ET.SubElement(case, "failure", message=msg, type=v.get("detail", "")).text = text
                n["failures"] += 1
            elif v["status"] == "broken":
                ET.SubElement(case, "error", message=v.get("reason", ""), type=v.get("detail", "")).text = text
                n["errors"] += 1
            elif v["status"] != "pass":
                ET.SubElement(case, "skipped", message=f"{v['status']}: {v.get('reason', '')}")
                n["skipped"] += 1
        for k, val in n.items():
            suite.set(k, str(val))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
