"""A run's progress when its output is not a terminal: plain lines, each task's
stage counted against the stage's total."""

from __future__ import annotations

import io
from collections import Counter

from pvmatrix.matrix.progress import Progress


def test_plain_lines_count_each_stage_against_its_total():
    out = io.StringIO()
    p = Progress(Counter({"build": 1, "boot": 216}), out, tty=False)
    p.begin()
    p.finished("boot", "bookworm-generic", ["pass"], 19.7, cached=False)
    p.finished("boot", "sid-cloud", ["fail"], 5.0, cached=False, note="Xen 4.17")
    p.finished("build", "debian-6.1-src", ["pass"], 0.0, cached=True)
    p.end()
    lines = out.getvalue().splitlines()
    assert lines[0] == "pvmatrix: 217 tasks: 1 build, 216 boot"
    assert "boot      1/216 bookworm-generic: pass (19.7 s)" in lines[1]
    assert "boot      2/216 sid-cloud: fail (5.0 s) Xen 4.17" in lines[2]
    assert "build       1/1 debian-6.1-src: pass (cached)" in lines[3]
    assert "boot 2/216 (1 not pass)" in lines[4]
