"""The page's and the Markdown report's "for my machine" view, from a real
published run with machine cells (machine_run.py): per machine, the run's
kernels ranked as `pvmatrix which --hardware` ranks them, the same answer
`which` gives from the kernels' own files; the devices a kernel lacks link to
its machine cell's evidence; its boots per Xen release; and a run whose spec
names no machine."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from machine_run import FIX, MACHINES, RELEASES, ROOT, RUN, machine_run
from pvmatrix.analyze import machines
from pvmatrix.report import html, machineview, markdown, which
from pvmatrix.report.grid import build_grid
from pvmatrix.results import store
from pvmatrix.results.records import machine_of


@pytest.fixture
def run(tmp_path, private_cache):
    return machine_run(tmp_path / "results", private_cache)


def _which_cache(cache: Path, run: store.Run) -> None:
    """The run's kernels' files where `which` looks for them: the same cut
    modules.alias and config the machine cells were analyzed from."""
    for row, release in RELEASES.items():
        kid = next(r for r in run.records()
                   if r["cell"]["id"] == f"{row}/analyze/default")["inputs"]["kernel_id"]
        if kid.startswith("sha256:"):                  # a Debian package, unpacked
            tree = cache / "debs" / kid.removeprefix("sha256:")
            (tree / "boot").mkdir(parents=True)
            (tree / "boot" / f"vmlinuz-{release}").write_bytes(b"")
            shutil.copy(FIX / f"config-{release}", tree / "boot" / f"config-{release}")
        else:                                          # a pvmatrix build's artifact
            tree = cache / "artifacts" / kid
            tree.mkdir(parents=True)
            (tree / "bzImage").write_bytes(b"")
            shutil.copy(FIX / f"config-{release}", tree / "config")
            tree = tree / "modules"
        mods = tree / "lib" / "modules" / release
        mods.mkdir(parents=True)
        shutil.copy(FIX / f"modules.alias-{release}", mods / "modules.alias")


def test_machine_cells_read_back_as_their_coverage(run):
    """which.cover_of reads a cell back to the coverage machines.verdict wrote."""
    cells = [r for r in run.records() if machine_of(r["cell"])]
    assert len(cells) == len(RELEASES) * len(MACHINES)
    for rec in cells:
        profile = machines.from_args(rec["task_def"]["args"]["profile"])
        cover = which.cover_of(rec, profile)
        v = rec["verdict"]
        assert cover.summary == v["detail"]
        said = [e["text"] for e in v["evidence"] if e["note"] == "missing"]
        assert len(said) == len(cover.missing)
        assert all(t.startswith(machines.device_line(d) + ": ") for t, d in zip(said, cover.missing))
        assert all(machines.device_line(d) in v["reason"] for d in cover.missing)
        assert len(cover.apart) == [e["note"] for e in v["evidence"]].count("apart")


def test_the_view_ranks_as_which_does_from_the_kernels_files(run, private_cache):
    _which_cache(private_cache, run)
    views = {v.name: v for v in machineview.views(build_grid(run))}
    assert list(views) == MACHINES
    for name, view in views.items():
        a = which.which(name, run.dir.parent, "dom0")
        ranked = a.fits + a.misses
        assert [p.row for p in view.picks] == [k.names[0] for k in ranked], which.render(a)
        assert [p.cover for p in view.picks] == [k.cover.summary for k in ranked]
        assert [p.lacks for p in view.picks] == [which.lacking(k) for k in ranked]
        assert [p.fits for p in view.picks] == [k.ok for k in ranked]


def test_the_real_kernels_answer(run):
    views = {v.name: v for v in machineview.views(build_grid(run))}
    r220 = views["dell-poweredge-r220"]
    first = r220.picks[0]
    # Debian's generic 6.1 drives the whole R220 and passed dom0 under Xen 4.17
    assert (first.row, first.fits, first.cover) == ("debian-6.1-generic", True,
                                                   "14/14 devices covered (3 apart)")
    assert [b.status for b in first.boots["Xen 4.17"] if b.role == "dom0"] == ["pass"]
    cloud = next(p for p in r220.picks if p.row == "debian-6.1-cloud")
    assert not cloud.fits and cloud.rank == len(r220.picks)      # lacks the most, fails dom0
    assert {(l.kind, l.slots[0]) for l in cloud.lacks} == {("storage", "00:1f.2"),
                                                            ("network", "01:00.0")}
    assert [b.status for b in cloud.boots["Xen 4.17"] if b.role == "dom0"] == ["fail"]
    assert cloud.cell["cell"]["id"] == "debian-6.1-cloud/machine/dell-poweredge-r220"


class Page(HTMLParser):
    """The view's sections, their rows in order and links, and the page's anchors."""
    def __init__(self):
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.links: dict[tuple[str, str], list[str]] = {}
        self.ids: set[str] = set()
        self._machine = self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "section" and "data-machine" in a:
            self._machine = a["data-machine"]
            self.sections[self._machine] = []
        if tag == "tr" and "data-rank" in a and self._machine:
            self._row = a["data-kernel"]
            self.sections[self._machine].append(self._row)
        if tag == "a" and self._row and a.get("href", "").startswith("#"):
            self.links.setdefault((self._machine, self._row), []).append(a["href"][1:])

    def handle_endtag(self, tag):
        if tag == "section":
            self._machine = self._row = None


def test_the_page_shows_a_section_per_machine_linking_evidence(run):
    page = Page()
    page.feed(html.render(run))
    assert list(page.sections) == MACHINES
    assert page.sections["dell-poweredge-r220"][0] == "debian-6.1-generic"
    links = page.links[("dell-poweredge-r220", "debian-6.1-cloud")]
    assert "cell-debian-6.1-cloud_machine_dell-poweredge-r220" in links    # its lacks' evidence
    assert "cell-debian-6.1-cloud_dom0_xen-4.17_default" in links           # its failed dom0
    assert all(link in page.ids for ls in page.links.values() for link in ls)
    assert "machines" in page.ids


def test_the_markdown_report_has_the_view(run):
    md = markdown.render(run)
    part = md[md.index("## For my machine"):]
    assert [line for line in part.splitlines() if line.startswith("### ")][:3] == \
        [f"### {m}" for m in MACHINES]
    r220 = part[part.index("### dell-poweredge-r220"):]
    assert r220.index("debian-6.1-generic (fits)") < r220.index("debian-6.1-cloud")
    assert "storage Intel Corporation 8 Series/C220 Series Chipset Family 6-port SATA" in r220


def test_a_run_without_machines_says_so(tmp_path):
    shutil.copytree(ROOT / "results" / RUN, tmp_path / RUN)
    plain = store.open_run(tmp_path, RUN)
    page = html.render(plain)
    assert 'id="no-machines"' in page and 'class="machine"' not in page
    assert "For my machine" not in markdown.render(plain)
