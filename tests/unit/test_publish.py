"""Publishing a run (pvmatrix/report/publish.py): no host path in anything
published, every relative link resolving inside the run folder, logs beside the
page (gzip, cut to their evidence window), reproducers that name no host
place, the spec's history with triage labels, older run folders pruned, and
the size limit. The same walk checks the real published runs under results/."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import pvmatrix
from matrix_helpers import fake_run, small_spec
from pvmatrix.report import publish as pub
from pvmatrix.results import history, portable, store
from pvmatrix.results.portable import Roots, host_paths

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
FIXTURES = ROOT / "tests" / "fixtures"
DOM0_LOG = FIXTURES / "boot" / "dom0-pv-pvh-ok.log"           # real serial logs
PANIC_LOG = FIXTURES / "boot" / "baremetal-panic.log"
QEMU_SCRIPT = ROOT / "tests" / "golden" / "refs" / "reproduce-dom0.sh"   # a real reproducer


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("href"):
            self.hrefs.append(a["href"])
        if a.get("id"):
            self.ids.add(a["id"])


def links_of(page: Path) -> tuple[list[str], set[str]]:
    parser = Links()
    parser.feed(page.read_text())
    return parser.hrefs, parser.ids


def assert_portable(run_dir: Path, results: Path, roots: Roots | None = None) -> None:
    """Every file of RUN_DIR names no host path; every link of its pages resolves
    in the run folder (or a sibling's, for history), or to an anchor of the page."""
    files = list(pub.published_files(run_dir))
    assert files
    for path, text in files:
        assert not host_paths(text, roots), (path, host_paths(text, roots)[:3])
        assert not re.search(r"(?<![~\w}])/\S*\.cache/pvmatrix", text), path   # any cache
    for page in (run_dir / "report.html", results / "matrix.html"):
        if not page.is_file():
            continue
        hrefs, ids = links_of(page)
        for href in hrefs:
            url = urlsplit(href)
            assert not url.scheme and not url.netloc, (page, href)        # no network
            if not url.path:
                assert url.fragment in ids, (page, href)
                continue
            target = (page.parent / unquote(url.path)).resolve()
            assert target.is_file(), (page, href)
            assert target.is_relative_to(results.resolve()), (page, href)
    md = (run_dir / "report.md").read_text()
    for href in re.findall(r"\]\(([^)]+)\)", md):
        assert (run_dir / href).is_file(), href


@pytest.fixture
def cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "boot" / "runs" / "b1").mkdir(parents=True)
    monkeypatch.setenv("PVMATRIX_CACHE", str(cache))
    return cache


def _boot_logs(run: store.Run, cache: Path) -> None:
    """Give the run's dom0 cell what a real boot leaves: its serial log in the
    cache (and a copy in the run), evidence into it, host paths in provenance,
    the reproducers."""
    boot = cache / "boot" / "runs" / "b1"
    shutil.copy(DOM0_LOG, boot / "serial.log")
    (boot / "qemu.sh").write_text(QEMU_SCRIPT.read_text().replace("@BOOT@", str(boot))
                                  .replace("@CACHE@", str(cache / "boot")))
    path = run.dir / "cells" / "k1_dom0_xen-4.17_default.json"
    rec = json.loads(path.read_text())
    serial = str(boot / "serial.log")
    rec["logs"] = {"serial": serial, "boot_dir": str(boot), "qemu_script": str(boot / "qemu.sh")}
    for e in rec["verdict"]["evidence"]:
        e["log"] = serial
    rec["provenance"] = {"xen": {"version": "4.17", "binary": str(cache / "boot/xen/xen-4.17"),
                                 "sha256": "sha256:" + "0" * 64},
                         "dom0_userspace": {"cpio": str(cache / "boot/u.cpio")}}
    rec["verdict"]["reason"] = f"see {serial}"
    run.record(store.CellRecord.from_dict(rec))
    from pvmatrix.matrix.recording import keep_logs        # what the runner does
    cell = store.CellRecord.from_dict(json.loads(path.read_text()))
    keep_logs(run, cell)
    run.record(cell)


@pytest.fixture
def published(tmp_path, cache):
    results = tmp_path / "results"
    spec = small_spec(tmp_path)
    runs = [fake_run(results, spec, {"k1/dom0/xen-4.17/default": s})
            for s in ("pass", "fail", "pass")]
    last = fake_run(results, spec)                          # k1/dom0 fails again
    _boot_logs(last, cache)
    done = pub.publish(last, results)
    return results, last, runs, done


def test_a_published_run_names_no_host_path_and_its_links_resolve(published, cache):
    results, run, _, done = published
    assert_portable(run.dir, results, Roots(cache, results))
    rec = json.loads((run.dir / "cells" / "k1_dom0_xen-4.17_default.json").read_text())
    log = rec["logs"]["serial"]
    assert re.fullmatch(r"logs/[0-9a-f]{16}\.log\.gz", log)
    assert gzip.decompress((run.dir / log).read_bytes()).decode() == DOM0_LOG.read_text()
    assert {e["log"] for e in rec["verdict"]["evidence"]} == {log}
    assert rec["verdict"]["reason"] == "see $PVMATRIX_CACHE/boot/runs/b1/serial.log"
    assert "binary" not in rec["provenance"]["xen"] and rec["provenance"]["xen"]["sha256"]
    assert rec["reproduce"]["command"] == f"pvmatrix rerun results/{run.id} k1/dom0/xen-4.17/default"
    assert not list((run.dir / "logs").glob("*.serial.log"))      # only the published copies
    assert done.bytes < pub.MAX_BYTES


def test_the_published_json_page_names_each_cells_verdict_and_record(published):
    _, run, _, _ = published
    page = json.loads((run.dir / "report.json").read_text())
    assert page["schema"] == "pvmatrix.published/1" and page["run"]["run_id"] == run.id
    records = {r["cell"]["id"]: r for r in run.records()}
    assert [c["id"] for c in page["cells"]] == list(records)
    for c in page["cells"]:
        assert json.loads((run.dir / c["record"]).read_text()) == records[c["id"]]
        assert c["status"] == records[c["id"]]["verdict"]["status"]


def test_the_published_qemu_script_runs_against_the_readers_cache(published, cache, tmp_path):
    _, run, _, _ = published
    rec = next(r for r in run.records() if r["cell"]["id"] == "k1/dom0/xen-4.17/default")
    script = run.dir / rec["reproduce"]["qemu_script"]
    assert not (run.dir / "logs" / "k1_dom0_xen-4.17_default.qemu.sh").exists()
    # the cells of one boot share its script, published once
    shared = {r["reproduce"].get("qemu_script") for r in run.records()
              if r.get("reproduce") and r["cell"]["id"].startswith("k1/") and "/xen-4.17/" in r["cell"]["id"]}
    assert len(shared) == 1 and len(list((run.dir / "logs").glob("*.qemu.sh"))) >= 1
    text = script.read_text()
    assert str(cache) not in text and "@CACHE@/boot/runs/b1" in text
    # the script it writes and runs is the boot's, with the reader's cache filled in
    other = tmp_path / "elsewhere"
    body = text.split("<<'PVMATRIX_SCRIPT'\n", 1)[1].split("\nPVMATRIX_SCRIPT\n")[0]
    assert body.replace("@CACHE@", str(other)) + "\n" == \
        (cache / "boot/runs/b1/qemu.sh").read_text().replace(str(cache), str(other))
    import subprocess
    done = subprocess.run(["sh", str(script)], env={"PVMATRIX_CACHE": str(other), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and f"{other}/boot/runs/b1" in done.stderr   # gone there: says so


def test_publishing_again_changes_nothing(published):
    results, run, _, _ = published
    before = {p: p.read_bytes() for p in run.dir.rglob("*") if p.is_file()}
    pub.publish(run, results)
    after = {p: p.read_bytes() for p in run.dir.rglob("*") if p.is_file()}
    assert before.keys() == after.keys()
    changed = [p.name for p in before if before[p] != after[p]]
    assert changed == [], changed


def test_older_runs_are_pruned_into_the_history(published):
    results, run, older, done = published
    assert done.pruned == [r.id for r in older]
    assert [r.id for r in store.all_runs(results)] == [run.id]
    entries = history.load(results, "small")
    assert [e.run_id for e in entries] == [r.id for r in older] + [run.id]
    assert [e.cells["k1/dom0/xen-4.17/default"] for e in entries] == ["pass", "fail", "pass", "fail"]
    from pvmatrix.results.index import Index
    index = Index(results)
    assert index.previous_run("small", run.id) is None          # a pruned run is no baseline
    index.close()


def test_the_page_shows_history_strips_and_triage(published):
    _, run, _, _ = published
    page = (run.dir / "report.html").read_text()
    assert re.search(r'data-cell="k1/dom0/xen-4.17/default"[^>]*data-triage="flaky \(2 of 4\)"', page) \
        or re.search(r'data-cell="k1/dom0/xen-4.17/default"[^>]*data-triage="new regression"', page)
    assert re.search(r'data-cell="k2/hw/default/e1000e"[^>]*data-triage="never passed"', page)
    assert page.count('class="strip"') >= 7


@pytest.mark.parametrize("statuses, flaky, label", [
    (["pass", "fail"], False, "new regression"),
    (["fail", "fail"], False, "never passed"),
    (["pass", "fail", "fail", "fail"], False, "known failure"),
    (["pass", "fail", "fail"], False, "known failure"),
    (["fail"], False, "never passed"),
    (["broken", "fail", "fail"], False, "never passed"),
    (["pass", "fail", "pass", "fail"], False, "flaky (2 of 4)"),
    (["pass", "fail"], True, "flaky (1 of 2)"),
    (["fail", "pass"], False, ""),
    (["pass", "broken"], False, ""),
])
def test_triage(statuses, flaky, label):
    past = history.Past([(f"r{i}", s) for i, s in enumerate(statuses)], flaky)
    assert past.triage() == label


def test_a_long_log_is_cut_to_its_evidence_window(monkeypatch, tmp_path):
    monkeypatch.setattr(portable, "CUT_OVER", 100)
    monkeypatch.setattr(portable, "HEAD", 10)
    monkeypatch.setattr(portable, "TAIL", 10)
    monkeypatch.setattr(portable, "AROUND", 3)
    lines = PANIC_LOG.read_text().splitlines(keepends=True)
    panic = next(i for i, ln in enumerate(lines, 1) if "Kernel panic" in ln)
    out = portable.cut(lines, {120})
    text = "".join(out)
    assert lines[119] in text and lines[0] in text and lines[-1] in text
    assert lines[60] not in text and "[pvmatrix: lines 11-116 cut]" in text
    assert len(out) < len(lines) and panic > len(lines) - 20      # the tail keeps the panic


def test_a_host_path_left_in_a_record_stops_publishing(tmp_path, cache):
    results = tmp_path / "results"
    run = fake_run(results, small_spec(tmp_path))
    rec = json.loads((run.dir / "cells" / "k1_build.json").read_text())
    rec["manifest"]["where"] = "/home/someone/linux/vmlinux"          # no root of ours
    store.write_json(run.dir / "cells" / "k1_build.json", rec)
    with pytest.raises(pub.UserError, match="names host path '/home/someone/linux/vmlinux'"):
        pub.publish(run, results)


def test_an_oversized_run_is_refused(published, monkeypatch):
    results, run, _, _ = published
    monkeypatch.setattr(pub, "MAX_BYTES", 1000)
    with pytest.raises(pub.UserError, match="over the"):
        pub.publish(run, results)


def test_publish_command(tmp_path, cache):
    results = tmp_path / "results"
    spec = small_spec(tmp_path)
    old = fake_run(results, spec)
    new = fake_run(results, spec)
    done = pvmatrix("publish", "--all", "--keep-old", "--results", str(results),
                    env={**os.environ, "PVMATRIX_CACHE": str(cache)})
    assert done.returncode == 0, done.stderr
    assert f"published run {new.id}" in done.stderr and old.dir.is_dir()
    done = pvmatrix("publish", "latest", "--results", str(results), env={**os.environ, "PVMATRIX_CACHE": str(cache)})
    assert done.returncode == 0 and f"pruned {old.id}" in done.stderr
    assert not old.dir.exists()
    bad = pvmatrix("publish", "--results", str(results))
    assert bad.returncode == 2 and "give a RUN or --all" in bad.stderr


def _published_runs() -> list[Path]:
    return [p.parent for p in sorted(RESULTS.glob("*/report.json"))]


def test_results_hold_published_runs():
    assert _published_runs(), "no published run under results/: run `pvmatrix publish --all`"


@pytest.mark.parametrize("run_dir", _published_runs(), ids=lambda p: p.name)
def test_the_real_published_runs_are_portable(run_dir):
    assert_portable(run_dir, RESULTS)
    size = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    assert size <= pub.MAX_BYTES


def test_results_keep_one_run_per_spec_and_their_history():
    specs = [json.loads((d / "run.json").read_text())["spec_name"] for d in _published_runs()]
    for spec in set(specs):
        assert history.path(RESULTS, spec).is_file(), spec
