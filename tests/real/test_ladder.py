"""Kernel ladders, for real: trixie-backports' live apt lists, and a short
ladder bisection of three prebuilt kernels booted under Xen in QEMU. (The
search, the spec's rows and bad input on captured lists: tests/unit/test_ladder.py.)"""

from __future__ import annotations

import pytest

from conftest import one_error_line, pvmatrix
from pvmatrix.bisect import ladder as bisect_ladder, probe
from pvmatrix.bisect.probe import CellSpec
from pvmatrix.errors import UserError
from pvmatrix.sources import ladder

GENERIC = "debian:linux-image-amd64@trixie-backports"
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
def test_short_ladder_bisection_boots_within_the_bound_and_remembers(monkeypatch):
    """Three real kernels, dom0 under Xen: whatever the archive's kernels do,
    the bisection boots at most ceil(log2 3) + 2 of them, the ends first (when
    they do not differ: at most the two ends, a one-line error naming both),
    and a second bisection boots none. (A warm cache may already remember
    some boots, so the first run can boot fewer.)"""
    booted = []
    real_boot = probe._boot

    def counted(kernel, *args):
        booted.append(kernel.label)
        return real_boot(kernel, *args)

    monkeypatch.setattr(probe, "_boot", counted)
    cell = CellSpec.parse("dom0")

    def run():
        try:
            return bisect_ladder.bisect(GENERIC, THREE, cell), None
        except UserError as exc:
            return None, str(exc)

    first, error = run()
    kernels = len(set(booted))
    if first is not None:
        assert first.kernels_booted == kernels <= first.boot_bound == 4
        assert first.first_bad or first.could_be, first.to_dict()
    else:
        assert "the ends do not differ" in error and kernels <= 2, error
        assert "6.16.3" in error and "6.17.8" in error, error
        assert all(b.startswith(("6.16.3+deb13", "6.17.8+deb13")) for b in booted), booted
    before = len(booted)
    second, error2 = run()
    assert len(booted) == before, "a second bisection booted again"
    if second is not None:
        assert second.kernels_booted == 0 and second.first_bad == first.first_bad
    else:
        assert error2 == error
