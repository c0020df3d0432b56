"""Serial-log parsing and verdicts, without booting: small excerpts of real
serial logs under tests/fixtures/boot/ (and a few hand-made lines for the
attribution rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvmatrix.boot import roles
from pvmatrix.boot.markers import crash_signs, matches, parse, parse_file, parse_line
from pvmatrix.boot.verdicts import BootOutcome, judge_guest, judge_host

FIX = Path(__file__).parent / "fixtures" / "boot"


def test_marker_fields_and_regions():
    ln = parse_line(3, "PVM probe=pci dev=0000:00:10.0 id=8086:10d3 driver=e1000e up=1.23\r")
    assert ln.region == "host" and ln.fields["driver"] == "e1000e" and ln.no == 3
    g = parse_line(4, "PVMG pvh| PVM probe=disk dev=xvda ok=1 data=PVMDISK-pvh-ab up=2.0")
    assert g.region == "pvh" and g.fields["probe"] == "disk"
    c = parse_line(5, "PVM guest=pv stage=create ok=0 rc=1 up=9")
    assert c.region == "pv"
    o = parse_line(6, "PVMOUT pv| libxl: error: something")
    assert o.tag == "pv" and not o.fields and o.text == "libxl: error: something"
    # a marker printed in the middle of a kernel line still counts
    assert parse_line(7, "[    1.0] foo PVM stage=done up=3").fields["stage"] == "done"


def test_pattern_matching():
    f = {"probe": "disk", "ok": "1", "data": "PVMDISK-pv-x"}
    assert matches(f, "probe=disk ok=1")
    assert matches(f, "probe=disk data={disk}", {"disk": "PVMDISK-pv-x"})
    assert not matches(f, "probe=disk data={disk}", {"disk": "PVMDISK-pv-y"})
    assert matches(f, "data=*") and not matches(f, "guest=*")


def test_crash_signs_only_count_xen_lines_for_xen():
    lines = parse("(XEN) Panic on CPU 0:\nsomething Panic on CPU (not xen)\n"
                  "[ 2.1] Kernel panic - not syncing: Attempted to kill init!\n"
                  "[ 3.0] BUG: unable to handle page fault for address: 0000\n")
    signs = crash_signs(lines)
    assert [ln.no for ln in signs["xen"]] == [1]
    assert [ln.no for ln in signs["panic"]] == [3]
    assert [ln.no for ln in signs["oops"]] == [4]


def _fixture(name: str):
    path = FIX / name
    if not path.exists():
        pytest.skip(f"fixture {name} not recorded")
    return parse_file(path)


def test_dom0_ok_log():
    lines = _fixture("dom0-pv-pvh-ok.log")
    v = judge_host(roles.get("dom0"), lines, BootOutcome(), ["pv", "pvh"])
    assert v.status == "ok", v
    pv = judge_guest(roles.get("domU-pv"), lines, BootOutcome(), v,
                     {"disk": next(ln.fields["data"] for ln in lines
                                   if ln.region == "pv" and ln.fields.get("probe") == "disk")})
    assert pv.status == "ok", pv


def test_dom0_ok_log_wrong_disk_data_fails():
    lines = _fixture("dom0-pv-pvh-ok.log")
    dom0 = judge_host(roles.get("dom0"), lines, BootOutcome(), ["pv", "pvh"])
    pv = judge_guest(roles.get("domU-pv"), lines, BootOutcome(), dom0, {"disk": "PVMDISK-pv-other"})
    assert pv.status == "failed" and "probe=disk" in pv.reason


def test_truncated_log_is_timeout_with_last_lines():
    lines = _fixture("dom0-pv-pvh-ok.log")
    cut = [ln for ln in lines if ln.no < 40]
    v = judge_host(roles.get("dom0"), cut, BootOutcome(timed_out=True, wall_s=60))
    assert v.status == "timeout" and v.evidence
    assert v.evidence[-1].line == max(ln.no for ln in cut if ln.text.strip())
