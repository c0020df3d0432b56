"""Reports of a recorded run in every format; the HTML page rendered in a real
headless Chromium (screenshot, and the DOM has the expected coloured cells)."""

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from conftest import pvmatrix
from matrix_helpers import fake_run, small_spec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    spec = small_spec(tmp, "fake")
    return tmp / "results", fake_run(tmp / "results", spec)


def report(results, run, fmt, *extra):
    done = pvmatrix("report", run.id, "--format", fmt, "--results", str(results), *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_terminal(recorded):
    out = report(*recorded, "terminal")
    lines = out.splitlines()
    header = next(ln for ln in lines if ln.startswith("kernel"))
    assert header.split()[:4] == ["kernel", "version", "build", "Xen"]
    k1 = next(ln for ln in lines if ln.startswith("k1 "))
    assert "6.1.1" in k1 and "built" in k1 and "fail: panic" in k1
    assert "k1/dom0/xen-4.17/default: fail: Kernel panic" in out


def test_markdown(recorded):
    out = report(*recorded, "markdown")
    assert out.startswith("# pvmatrix run ")
    table = [ln for ln in out.splitlines() if ln.startswith("|")]
    assert table[0].startswith("| kernel") and "dom0 Xen 4.17" in table[0]
    assert len(table) == 4                       # header, rule, 2 kernels
    assert "❌ fail: panic" in table[2]
    assert "### k1/dom0/xen-4.17/default: fail" in out
    assert "L812 Kernel panic - not syncing: VFS: Unable to mount root" in out


def test_json(recorded):
    data = json.loads(report(*recorded, "json"))
    assert data["schema"] == "pvmatrix.report/1" and data["run"]["state"] == "complete"
    assert {c["verdict"]["status"] for c in data["cells"]} == {"pass", "fail", "skip", "broken", "not run"}


def test_junit_separates_failure_from_error(recorded):
    root = ET.fromstring(report(*recorded, "junit"))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["k1"].get("failures") == "1" and suites["k1"].get("errors") == "0"
    assert suites["k2"].get("failures") == "1" and suites["k2"].get("errors") == "1"
    assert suites["k2"].get("skipped") == "2"
    failure = root.find(".//testcase[@name='k1/dom0/xen-4.17/default']/failure")
    assert "Kernel panic" in failure.get("message")
    assert root.find(".//testcase[@name='k2/domU-pv/xen-4.17/default']/error") is not None


class Cells(HTMLParser):
    """Collects the table's cells (data-cell -> class) and the sections' ids."""
    def __init__(self):
        super().__init__()
        self.cells, self.sections, self.links = {}, set(), {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-cell" in a:
            self.cells[a["data-cell"]] = a["class"]
            self._cell = a["data-cell"]
        if tag == "a" and a.get("href", "").startswith("#") and getattr(self, "_cell", None):
            self.links[self._cell] = a["href"][1:]
            self._cell = None
        if tag == "section" and "id" in a:
            self.sections.add(a["id"])


EXPECTED = {"k1/build": "st-pass", "k1/dom0/xen-4.17/default": "st-fail",
            "k2/source": "st-pass", "k2/hw/default/e1000e": "st-fail",
            "k2/dom0/xen-4.17/default": "st-skip", "k2/domU-pv/xen-4.17/default": "st-broken",
            "k2/domU-pvh/xen-4.17/default": "st-not-run"}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/setup installs it)")
def test_html_in_headless_chromium(recorded, tmp_path):
    results, run = recorded
    page = tmp_path / "matrix.html"
    report(results, run, "html", "-o", str(page))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "matrix.png"
    done = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,800",
                                   page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = Cells()
    parsed.feed(dom.stdout)                     # the DOM as the browser built it
    for cell, cls in EXPECTED.items():
        assert parsed.cells.get(cell) == cls, (cell, parsed.cells.get(cell))
        assert parsed.links[cell] in parsed.sections          # each cell links to its evidence
    rows = dom.stdout.count('<tr data-kernel="')
    assert rows == 2
    # the JSON record links resolve from where the page was written
    href = re.search(r'href="([^"]+/cells/k1_dom0_xen-4.17_default\.json)"', dom.stdout).group(1)
    assert (page.parent / href).resolve().exists()
