"""The results store: atomic records, the index rebuilt from run directories."""

import json
import os

import pytest

from matrix_helpers import fake_run, small_spec
from pvmatrix.results import store
from pvmatrix.results.index import Index


def test_a_record_is_whole_or_absent(tmp_path, monkeypatch):
    path = tmp_path / "cell.json"
    store.write_json(path, {"verdict": {"status": "pass"}})

    def torn(fd):                        # dies after writing, before the rename
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", torn)
    with pytest.raises(KeyboardInterrupt):
        store.write_json(path, {"verdict": {"status": "fail"}})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"verdict": {"status": "pass"}}
    assert [p.name for p in tmp_path.iterdir()] == ["cell.json"]      # no temporary left


def test_index_is_rebuilt_from_the_run_directories(tmp_path):
    spec = small_spec(tmp_path, "fake")
    results = tmp_path / "results"
    a = fake_run(results, spec)
    b = fake_run(results, spec, {"k1/dom0/xen-4.17/default": "pass"})
    (results / "index.sqlite").unlink()
    idx = Index(results)
    hist = idx.history("k1/dom0/xen-4.17/default")
    assert [(row[0], row[4]) for row in hist] == [(a.id, "fail"), (b.id, "pass")]
    assert idx.previous_run("fake", b.id) == a.id
    idx.close()


def test_open_run_by_id_path_or_latest(tmp_path):
    spec = small_spec(tmp_path, "fake")
    results = tmp_path / "results"
    a = fake_run(results, spec)
    b = fake_run(results, spec)
    assert store.open_run(results, a.id).dir == a.dir
    assert store.open_run(results, str(b.dir)).dir == b.dir
    assert store.open_run(results, "latest").dir == b.dir
    with pytest.raises(Exception, match="run 'nope': not found"):
        store.open_run(results, "nope")


def test_progress_plain_lines_and_live_line():
    import io
    from collections import Counter
    from pvmatrix.matrix.progress import Progress
    plain = io.StringIO()
    p = Progress(Counter(build=2, boot=1), plain, tty=False)
    p.begin()
    p.finished("build", "k1", ["pass"], 0.1, True)
    p.finished("boot", "k1", ["pass", "fail"], 50.0, False, "Kernel panic")
    p.end()
    lines = plain.getvalue().splitlines()
    assert lines[0] == "pvmatrix: 3 tasks: 2 build, 1 boot"
    assert "build       1/2 k1: pass (cached)" in lines[1]   # done of the stage's total
    assert "boot        1/1 k1: pass, fail (50.0 s) Kernel panic" in lines[2]
    assert lines[3].startswith("pvmatrix: build 1/2 | boot 1/1 (1 not pass) | "
                               "3 cells: 2 pass, 1 fail | ")  # the cells by status too
    live = io.StringIO()
    p = Progress(Counter(build=2), live, tty=True)
    p.finished("build", "k1", ["pass"], 0.1, True)
    assert live.getvalue().startswith("\r\033[Kbuild 1/2 | ")        # redrawn in place


def test_progress_names_a_shared_host_boot_that_owns_no_cells():
    import io
    from collections import Counter
    from pvmatrix.matrix.progress import Progress
    plain = io.StringIO()
    p = Progress(Counter(boot=1), plain, tty=False)
    p.finished("boot", "debian-6.1-generic", [], 64.4, False)
    assert "boot        1/1 debian-6.1-generic: host boot, its guests' cells follow (64.4 s)" in plain.getvalue()
