"""The published page in a real browser: Debian's Chromium, headless (.ci/setup
installs it; without it these tests fail). What the browser shows after the
page's scripts ran: the cells, filters (from the URL hash, as a reader's
choice in the selects sets it) hiding rows and columns, links that resolve,
and a screenshot of it; the "for my machine" view of a real run with machine
cells (machine_run.py), a machine picked by the URL hash."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from machine_run import MACHINES, machine_run
from matrix_helpers import fake_run, small_spec
from pvmatrix.report import browser
from pvmatrix.report.publish import publish
from pvmatrix.results.records import CellRecord


class Shown(HTMLParser):
    """The matrix as the DOM has it: rows and cells, with the hidden ones."""
    def __init__(self):
        super().__init__()
        self.rows, self.cells, self.hrefs = {}, {}, []
        self.headers: dict[str, bool] = {}
        self.machines: dict[str, bool] = {}              # the view's sections: shown?
        self.picks: dict[str, list[str]] = {}            # its kernels, in rank order
        self.counted = ""                                # what the filter script wrote
        self._machine = None
        self._in_shown = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        hidden = "hidden" in a
        if tag == "tr" and "data-kernel" in a:
            self.rows[a["data-kernel"]] = not hidden
        if tag == "td" and "data-cell" in a:
            self.cells[a["data-cell"]] = (a["class"], not hidden, a.get("data-triage"))
        if tag == "th" and "data-col" in a:
            self.headers[a.get("title", "")] = not hidden
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "section" and "data-machine" in a:
            self._machine = a["data-machine"]
            self.machines[self._machine], self.picks[self._machine] = not hidden, []
        if tag == "tr" and "data-rank" in a and self._machine:
            self.picks[self._machine].append(a["data-kernel"])
        self._in_shown = a.get("id") == "shown"

    def handle_endtag(self, tag):
        if tag == "section":
            self._machine = None

    def handle_data(self, data):
        if self._in_shown:
            self.counted += data


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    results = tmp / "results"
    spec = small_spec(tmp)
    fake_run(results, spec, {"k1/dom0/xen-4.17/default": "pass"})
    run = fake_run(results, spec)
    rec = next(r for r in run.records() if r["cell"]["id"] == "k1/dom0/xen-4.17/default")
    rec["cell"].update(id="k1/dom0/xen-4.20/default", column="dom0 Xen 4.20", xen="4.20")
    run.record(CellRecord.from_dict(rec))          # a second Xen release's column
    src = next(r for r in run.records() if r["cell"]["id"] == "k2/source")
    src["inputs"]["package"] = "debian:linux-image-cloud-amd64@bookworm"
    run.record(CellRecord.from_dict(src))          # k2 is a bookworm package
    publish(run, results)
    return run.dir / "report.html"


def shown(url: str) -> Shown:
    parsed = Shown()
    parsed.feed(browser.dom(url))
    return parsed


def test_chromium_is_installed():
    assert browser.chromium()


def test_the_page_shows_every_cell_and_resolving_links(page):
    got = shown(page.as_uri())
    assert got.rows == {"k1": True, "k2": True}
    assert got.cells["k1/dom0/xen-4.17/default"][:2] == ("st-fail", True)
    assert got.cells["k1/dom0/xen-4.17/default"][2] == "new regression"
    assert got.cells["k2/hw/default/e1000e"][2] == "never passed"
    assert got.cells["k2/domU-pv/xen-4.17/default"][0] == "st-broken"
    assert all(h for h in got.headers.values())
    for href in got.hrefs:
        url = urlsplit(href)
        if url.path:                               # the DOM's links are resolved by the browser
            target = Path(unquote(url.path)) if url.scheme == "file" else page.parent / url.path
            assert url.scheme in ("", "file") and target.is_file(), href


def test_a_role_filter_hides_the_other_roles_columns(page):
    got = shown(page.as_uri() + "#role=dom0")
    assert got.cells["k1/dom0/xen-4.17/default"][1] is True
    assert got.cells["k2/domU-pv/xen-4.17/default"][1] is False
    assert got.cells["k2/hw/default/e1000e"][1] is False
    assert got.headers["dom0 Xen 4.17"] and not got.headers["domU-pv Xen 4.17"]


def test_a_xen_filter_hides_other_releases_and_a_suite_filter_rows(page):
    got = shown(page.as_uri() + "#xen=4.20")
    assert got.cells["k1/dom0/xen-4.17/default"][1] is False
    assert got.cells["k1/dom0/xen-4.20/default"][1] is True
    assert got.headers["dom0 Xen 4.20"] and not got.headers["dom0 Xen 4.17"]
    assert got.cells["k1/build"][1] is True                    # not a Xen column: kept
    got = shown(page.as_uri() + "#suite=bookworm")
    assert got.rows == {"k1": False, "k2": True}


def test_a_screenshot_of_the_page(page, tmp_path):
    png = browser.screenshot(page, tmp_path / "page.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1400, 900)


@pytest.fixture(scope="module")
def machine_page(tmp_path_factory):
    """The real run 20261128-002350-ddf6 with its kernels' machine cells, published."""
    tmp = tmp_path_factory.mktemp("machines")
    run = machine_run(tmp / "results", tmp / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PVMATRIX_CACHE", str(tmp / "cache"))
        publish(run, tmp / "results")                 # refuses a host path or a bad link
    return run.dir / "report.html"


def test_the_machine_view_ranks_the_kernels_per_machine(machine_page):
    got = shown(machine_page.as_uri())
    assert got.machines == {m: True for m in MACHINES}       # no machine picked: all shown
    assert got.counted.startswith("4 kernels")                # the page's script ran through
    assert got.picks["dell-poweredge-r220"] == ["debian-6.1-generic", "debian-6.1-xen-min",
                                                "debian-6.12-xen-min", "debian-6.1-cloud"]
    got = shown(machine_page.as_uri() + "#machine=dell-poweredge-860")
    assert got.machines == {m: m == "dell-poweredge-860" for m in MACHINES}
    assert got.picks["dell-poweredge-860"][0] == "debian-6.1-generic"


def test_a_run_without_machines_says_so_and_its_script_runs(page):
    got = shown(page.as_uri() + "#machine=dell-poweredge-860")
    assert got.machines == {} and got.counted.startswith("2 kernels")
    assert "The spec names no machines" in browser.dom(page.as_uri())
