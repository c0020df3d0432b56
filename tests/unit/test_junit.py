"""JUnit XML of recorded runs: every cell is a test case, with its status as
JUnit has it (fail a failure, a static no a failure with the analyzer's
evidence, broken an error, blocked / skip / not run skipped with the reason),
and the counts add up. Checked on every run published under results/ (real
records) and on the helper's run, which has a `not run` cell."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import REPO
from matrix_helpers import fake_run, small_spec
from pvmatrix.report import junit
from pvmatrix.results import store

PUBLISHED = store.all_runs(REPO / "results")
ELEMENT = {"fail": "failure", "broken": "error", "blocked": "skipped", "skip": "skipped",
           "not run": "skipped", "pass": None}


def check_document(text: str, records: list[dict]) -> dict[str, ET.Element]:
    """TEXT is JUnit XML listing each of RECORDS once, as its status says, with
    the attributes JUnit's schemas require and counts that add up."""
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    cases = {}
    for suite in root.findall("testsuite"):
        assert {"name", "tests", "failures", "errors"} <= set(suite.attrib)
        mine = suite.findall("testcase")
        assert int(suite.get("tests")) == len(mine)
        for kind, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(suite.get(kind)) == sum(c.find(tag) is not None for c in mine), kind
        for c in mine:
            assert c.get("name") not in cases and float(c.get("time")) >= 0
            assert len(list(c)) <= 1
            cases[c.get("name")] = c
    assert int(root.get("tests")) == len(cases) == len(records)
    for rec in records:
        v, case = rec["verdict"], cases[rec["cell"]["id"]]
        tag = ELEMENT[v["status"]]
        assert [e.tag for e in case] == ([tag] if tag else []), rec["cell"]["id"]
        if tag == "skipped":
            assert case[0].get("message") == f"{v['status']}: {v['reason']}"
        elif tag:
            assert v["reason"] in case[0].get("message") and case[0].get("type") == v["detail"]
            texts = [e["text"] for e in v.get("evidence") or []][:junit.EVIDENCE_LINES]
            # a device cell's booted checks follow its own evidence (report/grid's join)
            assert (case[0].text or "").startswith("\n".join(texts))
    return cases


@pytest.mark.parametrize("run", PUBLISHED, ids=[r.id for r in PUBLISHED])
def test_every_published_cell_is_a_test_case(run):
    check_document(junit.render(run), run.records())


def test_a_static_no_is_a_failure_with_the_analyzers_evidence():
    static = [(run, rec) for run in PUBLISHED for rec in run.records()
              if rec["verdict"]["detail"] == "static"]
    if not static:
        pytest.skip("no published run has a static no")
    run, rec = static[-1]
    failure = check_document(junit.render(run), run.records())[rec["cell"]["id"]].find("failure")
    assert failure.get("type") == "static"
    assert failure.get("message") == f"static analysis: {rec['verdict']['reason']}"
    assert rec["verdict"]["evidence"][0]["text"] in failure.text


def test_not_run_blocked_and_broken_cells_are_listed(tmp_path):
    run = fake_run(tmp_path / "results", small_spec(tmp_path, "junit"),
                   {"k1/hw/default/e1000e": "blocked"})
    records = run.records()
    assert {"not run", "blocked", "broken", "skip", "fail", "pass"} <= \
        {r["verdict"]["status"] for r in records}
    cases = check_document(junit.render(run), records)
    not_run = next(r for r in records if r["verdict"]["status"] == "not run")
    assert cases[not_run["cell"]["id"]].find("skipped").get("message").startswith("not run: ")
