"""Serial-log parsing and verdicts, without booting: small excerpts of real
serial logs under tests/fixtures/boot/ (and a few hand-made lines for the
attribution rules)."""

from __future__ import annotations

import pytest

from conftest import FIXTURES
from pvmatrix.boot import roles
from pvmatrix.boot.markers import crash_signs, matches, parse, parse_file, parse_line
from pvmatrix.boot.verdicts import BootOutcome, judge_guest, judge_host

FIX = FIXTURES / "boot"


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
    assert v.status == "pass", v
    pv = judge_guest(roles.get("domU-pv"), lines, BootOutcome(), v,
                     {"disk": next(ln.fields["data"] for ln in lines
                                   if ln.region == "pv" and ln.fields.get("probe") == "disk")})
    assert pv.status == "pass", pv


def test_dom0_ok_log_wrong_disk_data_fails():
    lines = _fixture("dom0-pv-pvh-ok.log")
    dom0 = judge_host(roles.get("dom0"), lines, BootOutcome(), ["pv", "pvh"])
    pv = judge_guest(roles.get("domU-pv"), lines, BootOutcome(), dom0, {"disk": "PVMDISK-pv-other"})
    assert pv.detail == "failed" and "probe=disk" in pv.reason


def test_truncated_log_is_timeout_with_last_lines():
    lines = _fixture("dom0-pv-pvh-ok.log")
    cut = [ln for ln in lines if ln.no < 40]
    v = judge_host(roles.get("dom0"), cut, BootOutcome(timed_out=True, wall_s=60))
    assert v.detail == "timeout" and v.evidence
    assert v.evidence[-1].line == max(ln.no for ln in cut if ln.text.strip() and ln.region == "host")


def test_baremetal_ok_log_and_hardware():
    from pvmatrix.boot.verdicts import hardware
    lines = _fixture("baremetal-ok.log")
    v = judge_host(roles.get("baremetal"), lines, BootOutcome())
    assert v.status == "pass", v
    hw = hardware(lines, {"e1000e": "0000:00:10.0", "ich9-ahci": "0000:00:11.0"})
    assert hw["e1000e"]["driver"] == "e1000e" and hw["e1000e"]["netif"] == ["eth0"]
    assert hw["ich9-ahci"]["driver"] is None and hw["ich9-ahci"]["id"] == "8086:2922"


def test_pvh_triple_fault_is_crashed_with_xen_dump():
    lines = _fixture("pvh-triple-fault.log")
    dom0 = judge_host(roles.get("dom0"), lines, BootOutcome(), ["pv", "pvh"])
    assert dom0.status == "pass", dom0
    pvh = judge_guest(roles.get("domU-pvh"), lines, BootOutcome(), dom0, {"disk": "x"})
    assert pvh.detail == "crashed" and "Triple fault" in pvh.reason
    assert any("RIP" in e.text for e in pvh.evidence)


def test_guest_create_failure_is_failed_with_xl_output():
    text = ("PVM check=xl-list ok=1 up=1\nPVM guest=pvh stage=start up=2\n"
            "PVM guest=pvh stage=create ok=0 rc=3 up=3\n"
            "PVMOUT pvh| Parsing config from /run/pvh.cfg\n"
            "PVMOUT pvh| libxl: error: libxl_dom.c:123:libxl__build_dom: xc_dom_parse_image failed\n")
    lines = parse(text)
    dom0 = judge_host(roles.get("dom0"), parse("PVM stage=init\n" + "\n".join(
        f"PVM {p}" for p in roles.get("dom0").expect)), BootOutcome(), ["pvh"])
    v = judge_guest(roles.get("domU-pvh"), lines, BootOutcome(), dom0, {"disk": "x"})
    assert v.detail == "failed" and "xc_dom_parse_image failed" in v.reason
    assert [e.line for e in v.evidence][:2] == [3, 5]


def test_lock_error_blames_dom0_toolstack_and_skips_guests():
    ok = "\n".join(f"PVM {p}" for p in roles.get("dom0").expect)
    text = ok + ("\nPVM guest=pv stage=create ok=0 rc=1\n"
                 "PVMOUT pv| libxl: error: libxl_internal.c:1 libxl__lock_file_for_domain: "
                 "cannot lock file /var/lib/xen/userdata: Function not implemented (errno=38)\n")
    lines = parse(text)
    dom0 = judge_host(roles.get("dom0"), lines, BootOutcome(), ["pv", "pvh"])
    assert dom0.detail == "failed" and dom0.reason.startswith("toolstack:")
    for role in ("domU-pv", "domU-pvh"):
        v = judge_guest(roles.get(role), lines, BootOutcome(), dom0, {"disk": "x"})
        assert (v.status, v.reason) == ("blocked", "dom0 toolstack")


def test_dom0_panic_is_panic_with_reason():
    lines = parse("PVM stage=init role=dom0\n[ 3.1] Kernel panic - not syncing: Attempted to kill init!"
                  " exitcode=0x00000100\n(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.\n")
    v = judge_host(roles.get("dom0"), lines, BootOutcome())
    # Xen saying dom0 crashed is the Xen-level sign; the panic line is in the evidence
    assert v.detail in ("crashed", "panic")
    assert any("Kernel panic" in e.text for e in v.evidence)


def test_real_lock_error_in_xen_init_dom0_blames_the_toolstack():
    """A real boot of the 6.1 kernel built without FILE_LOCKING: xen-init-dom0
    fails on libxl's lock (errno 38); xl create then fails for another reason."""
    lines = _fixture("no-file-locking.log")
    dom0 = judge_host(roles.get("dom0"), lines, BootOutcome(), ["pv", "pvh"])
    assert dom0.detail == "failed" and dom0.reason.startswith("toolstack:"), dom0
    assert "errno=38" in dom0.reason and "lock" in dom0.reason
    v = judge_guest(roles.get("domU-pv"), lines, BootOutcome(), dom0, {"disk": "x"})
    assert (v.status, v.reason) == ("blocked", "dom0 toolstack")
