"""JUnit XML for CI: a test suite per kernel, a test case per cell, every cell
listed. fail is a <failure> (a static no too: type "static", the analyzer's
evidence as its text), broken an <error> (not the kernel's fault), blocked /
skip / not run are <skipped> with the status and reason. `pvmatrix boot
--junit` writes its roles the same way (cases())."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

from .grid import build_grid

EVIDENCE_LINES = 12


@dataclass(frozen=True)
class Case:
    """One test case: a cell (or a role of `pvmatrix boot`) and its verdict."""
    suite: str                 # the kernel
    name: str                  # the cell id
    classname: str
    status: str
    reason: str = ""
    detail: str = ""
    evidence: tuple[str, ...] = ()
    seconds: float = 0.0
    retried: str = ""          # the retries' summary of a regression (matrix/retry.py)


def case_of(rec: dict) -> Case:
    """A recorded cell as a Case."""
    v, c = rec["verdict"], rec["cell"]
    return Case(c["kernel"], c["id"], f"{c['kernel']}.{c['stage']}", v["status"],
                v.get("reason", ""), v.get("detail", ""),
                tuple(e["text"] for e in (v.get("evidence") or [])[:EVIDENCE_LINES]),
                float((rec.get("durations") or {}).get("task_s") or 0),
                (rec.get("retries") or {}).get("summary") or "")


def _message(case: Case) -> str:
    if case.detail == "static":
        return f"static analysis: {case.reason}"
    return f"{case.retried}: {case.reason}" if case.retried else case.reason


def _testcase(suite: ET.Element, case: Case) -> str | None:
    """CASE under SUITE; the counter it adds to (failures, errors, skipped) or None."""
    el = ET.SubElement(suite, "testcase", classname=case.classname, name=case.name,
                       time=f"{case.seconds:.3f}")
    text = "\n".join(case.evidence)
    if case.status == "fail":
        ET.SubElement(el, "failure", message=_message(case), type=case.detail).text = text
        return "failures"
    if case.status == "broken":
        ET.SubElement(el, "error", message=case.reason, type=case.detail).text = text
        return "errors"
    if case.status != "pass":
        ET.SubElement(el, "skipped", message=f"{case.status}: {case.reason}").text = text or None
        return "skipped"
    return None


def document(name: str, cases: Iterable[Case]) -> str:
    """The JUnit XML of CASES, one <testsuite> per suite in the order first seen."""
    root = ET.Element("testsuites", name=name)
    suites: dict[str, ET.Element] = {}
    counts: dict[str, dict[str, float]] = {}
    for case in cases:
        if case.suite not in suites:
            suites[case.suite] = ET.SubElement(root, "testsuite", name=case.suite)
            counts[case.suite] = dict.fromkeys(("tests", "failures", "errors", "skipped", "time"), 0)
        n = counts[case.suite]
        n["tests"] += 1
        n["time"] += case.seconds
        if (kind := _testcase(suites[case.suite], case)) is not None:
            n[kind] += 1
    for suite, n in counts.items():
        for k, val in n.items():
            suites[suite].set(k, f"{val:.3f}" if k == "time" else str(int(val)))
    for k in ("tests", "failures", "errors"):
        root.set(k, str(sum(int(n[k]) for n in counts.values())))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render(run) -> str:
    g = build_grid(run)
    by_kernel = {k: i for i, k in enumerate(g.kernels)}
    records = sorted(g.records, key=lambda r: by_kernel.get(r["cell"]["kernel"], len(by_kernel)))
    return document(f"pvmatrix {g.meta['run_id']}", [case_of(r) for r in records])
