"""Kernel ladders, for real: trixie-backports' live apt lists, and a ladder
bisection of four prebuilt kernels (bookworm and bookworm-backports) booted
under Xen in QEMU that finds a real break. (The
search, the spec's rows and bad input on captured lists: tests/unit/test_ladder.py.)"""

from __future__ import annotations

import pytest

from conftest import one_error_line, pvmatrix
from pvmatrix.bisect import ladder as bisect_ladder, probe
from pvmatrix.bisect.probe import CellSpec
from pvmatrix.errors import UserError
from pvmatrix.sources import ladder

GENERIC = "debian:linux-image-amd64@trixie-backports"
BOTH = "debian:linux-image-amd64@bookworm+bookworm-backports"   # 6.1, then 6.12
# three rungs of the old packaging (one linux-image package holds the kernel)
THREE = "<6.17.13"


def test_trixie_backports_ladder_from_the_live_lists():
    rungs = ladder.ladder(GENERIC)
    assert len(rungs) >= 20 and str(rungs[0].upstream).startswith("6.16")
    assert all(a.upstream < b.upstream for a, b in zip(rungs, rungs[1:]))
    assert [str(r.upstream) for r in ladder.ladder(GENERIC, THREE)] == ["6.16.3", "6.16.12", "6.17.8"]


def test_a_range_matching_nothing_is_one_line_naming_the_suite():
    line = one_error_line(pvmatrix("bisect", "--ladder", GENERIC, "--versions", ">=99",
                                   "--cell", "dom0"))
    assert "matches no amd64 kernel of trixie-backports; it has" in line


@pytest.mark.slow
def test_ladder_bisection_finds_a_real_break_within_the_bound_and_remembers(monkeypatch):
    """A real break, four real kernels: Xen 4.14's toolstack starts bookworm's
    6.1 as a PV guest and refuses bookworm-backports' 6.12 ("unknown compression
    format"). Over the ladder of both suites up to 6.12.57 the bisection boots
    at most ceil(log2 4) + 2 = 4 kernels, names the first 6.12 as the first bad
    ABI with the toolstack's own words, and a second bisection boots none."""
    booted = []
    real_boot = probe._boot

    def counted(kernel, *args):
        booted.append(kernel.label)
        return real_boot(kernel, *args)

    monkeypatch.setattr(probe, "_boot", counted)
    cell = CellSpec.parse("domU-pv", "4.14")
    first = bisect_ladder.bisect(BOTH, "<=6.12.57", cell, say=lambda m: None)
    assert len(first.rungs) == 4 and first.boot_bound == 4, first.rungs
    assert first.kernels_booted == len(set(booted)) <= 4, booted
    assert first.last_good.startswith("linux-image-6.1.0-"), first.to_dict()
    assert first.first_bad.startswith("linux-image-6.12."), first.to_dict()
    bad = next(s for s in first.endpoints + first.steps if s.label in first.first_bad)
    assert bad.status == "fail" and "unknown compression" in bad.reason, bad
    before = len(booted)
    second = bisect_ladder.bisect(BOTH, "<=6.12.57", cell, say=lambda m: None)
    assert len(booted) == before, "a second bisection booted again"
    assert (second.kernels_booted, second.first_bad) == (0, first.first_bad)
