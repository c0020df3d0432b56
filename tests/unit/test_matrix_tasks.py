"""Task logic in process, with the boot harness replaced by a stand-in: how
its verdicts map onto the status taxonomy, static fails from the analyzer, blocked
cells, the dom0 fallback, "not run" when the harness cannot do a role, and
verdicts cached by their inputs."""

from pathlib import Path

import pytest

import pvmatrix.boot as boot
from pvmatrix.analyze.facts import AnalysisFacts
from pvmatrix.boot.harness import Boot, Cell as HarnessCell
from pvmatrix.build.facts import BuildFacts
from pvmatrix.records import BootFacts, Evidence, Status, Verdict
from pvmatrix.errors import PvmError
from pvmatrix.matrix import outcomes, tasks

from conftest import FIXTURES


def caps(dom0=True, pv=True, pvh=True):
    def c(v):
        return {"supported": v, "form": "built-in", "evidence": [f"CONFIG_X={'y' if v else 'n'}"]}
    return {"pv_dom0": c(dom0), "pv_domu": c(pv), "pvh_domu": c(pvh)}


def outcome(kernel, status="pass", capabilities=None, kernel_id=None):
    """KERNEL's build outcome, or with CAPABILITIES its analysis's, as a task gets it."""
    stage = "build" if capabilities is None else "analyze"
    facts = AnalysisFacts.from_dict({"release": "6.1.0", "capabilities": capabilities}) \
        if capabilities is not None else BuildFacts(
            key=kernel_id or f"id-{kernel}", dir=f"/k/{kernel}", source="dir:/src",
            identity="sha256:0", version="6.1.0", toolchain="tc", image="img",
            base="tinyconfig", fragments=[], config_sha256="c" * 64)
    out = outcomes.new({"key": f"{stage}-{kernel}", "stage": stage, "kernel": kernel},
                       facts if status == "pass" else None)
    outcomes.cell(out, f"{kernel}/{stage}", Verdict(status))
    out.status = Status(status)
    return out


def xen_task(kernel="k", roles=("dom0", "domU-pv", "domU-pvh"), recheck=False, confirm=False):
    more = {"confirm": True} if confirm else {}        # as plan.make_plan sets it
    return {"key": "boot-xen-1", "stage": "boot", "kernel": kernel, "func": "boot_xen",
            "args": {"profile": "default", "xen": "4.17", "roles": list(roles), "recheck": recheck,
                     **more},
            "cells": [{"id": f"{kernel}/{r}", "role": r} for r in roles]}


class Harness:
    """Stands in for pvmatrix.boot.run_cells; returns given verdicts per role
    ((status, reason, the judge's word), or a whole Verdict; default: a pass)."""
    def __init__(self, tmp_path, verdicts=None, raises=None):
        self.calls, self.verdicts, self.raises, self.dir = [], verdicts or {}, raises, tmp_path

    def __call__(self, kernel, wanted, xen="4.17", names=None, guest=None, profile=None,
                 deadline_s=None):
        self.calls.append((kernel, list(wanted), guest))
        if self.raises:
            raise self.raises
        b = Boot("xen", self.dir, "tcg", wall_s=30.0)
        serial = str(self.dir / "serial.log")
        return [HarnessCell(r, "label", xen, [], self._verdict(r, serial), 5.0, b) for r in wanted]

    def _verdict(self, role, serial):
        v = self.verdicts.get(role, ("pass", "fine", "ok"))
        return v if isinstance(v, Verdict) else Verdict(*v, [Evidence(f"PVM {role} line", "", 12,
                                                                       serial)])


@pytest.fixture
def harness(tmp_path, monkeypatch, private_cache):
    monkeypatch.setattr(tasks, "_boot_kernel", lambda facts: facts.boot_kernel)
    def make(**kw):
        h = Harness(tmp_path, **kw)
        monkeypatch.setattr(boot, "run_cells", h)
        return h
    return make


def statuses(out):
    return {cid.split("/")[1]: str(c.verdict.status) for cid, c in out.cells.items()}


def test_harness_verdicts_map_to_the_taxonomy(harness):
    h = harness(verdicts={"domU-pv": ("fail", "Kernel panic - not syncing", "panic")})
    out = tasks.execute(xen_task(), kernel=outcome("k"), analysis=outcome("k", capabilities=caps(pvh=False)))
    assert statuses(out) == {"dom0": "pass", "domU-pv": "fail", "domU-pvh": "fail"}
    assert h.calls == [("/k/k", ["dom0", "domU-pv"], None)]     # PVH not booted: the option is off
    pv = out.cells["k/domU-pv"].verdict
    assert pv.detail == "panic"
    assert pv.evidence[0].log.endswith("serial.log")
    assert pv.evidence[0].line == 12
    pvh = out.cells["k/domU-pvh"].verdict
    assert "pvh_domu: no" in pvh.reason and pvh.detail == "static"    # a static no: a fail
    assert pvh.evidence[0].note == "static analysis"
    assert out.cells["k/domU-pv"].boot == BootFacts("tcg", 0.0, {}, "label", "", False, {}, "k")
    assert out.cells["k/domU-pvh"].boot is None            # not booted: no boot facts


def test_verdicts_are_cached_by_inputs_and_recheck_boots_again(harness):
    h = harness()
    args = dict(kernel=outcome("k"), analysis=outcome("k", capabilities=caps()))
    tasks.execute(xen_task(), **args)
    again = tasks.execute(xen_task(), **args)
    assert len(h.calls) == 1 and again.cached
    tasks.execute(xen_task(recheck=True), **args)
    assert len(h.calls) == 2
    other = dict(args, kernel=outcome("k", kernel_id="changed"))
    tasks.execute(xen_task(), **other)
    assert len(h.calls) == 3                     # a changed kernel is booted again


def test_a_cached_xen_boot_is_found_by_content_under_another_row_name(harness):
    """The same kernel in a row renamed from "a" to "b": the boot is not redone,
    and its verdicts are b's own cells, hosted by b."""
    h = harness()
    args = dict(analysis=outcome("k", capabilities=caps()))
    tasks.execute(xen_task("a"), kernel=outcome("a", kernel_id="same"), **args)
    again = tasks.execute(xen_task("b"), kernel=outcome("b", kernel_id="same"), **args)
    assert len(h.calls) == 1 and again.cached
    assert (again.key, again.kernel) == ("boot-xen-1", "b")
    assert statuses(again) == {"dom0": "pass", "domU-pv": "pass", "domU-pvh": "pass"}
    assert set(again.cells) == {"b/dom0", "b/domU-pv", "b/domU-pvh"}
    assert {c.boot.dom0 for c in again.cells.values()} == {"b"}
    assert again.inputs["dom0_kernel"] == "b"


def test_guests_of_a_kernel_that_cannot_be_dom0_run_under_the_fallback(harness):
    h = harness()
    out = tasks.execute(xen_task("cloud"), kernel=outcome("cloud"),
                        analysis=outcome("cloud", capabilities=caps(dom0=False)),
                        host=outcome("generic"), host_analysis=outcome("generic", capabilities=caps()))
    assert statuses(out) == {"dom0": "fail", "domU-pv": "pass", "domU-pvh": "pass"}
    assert h.calls == [("/k/generic", ["domU-pv", "domU-pvh"], "/k/cloud")]
    assert out.inputs["dom0_kernel"] == "generic"
    assert out.cells["cloud/domU-pv"].boot.dom0 == "generic"      # the kernel that hosted it


def test_a_kernel_that_cannot_be_dom0_never_hosts_its_guests(harness):
    """dom0 not among the roles: the guests still never boot under the kernel as
    dom0 (one such boot ran 291 s to its deadline); the fallback hosts them."""
    h = harness()
    out = tasks.execute(xen_task("cloud", roles=("domU-pv", "domU-pvh")), kernel=outcome("cloud"),
                        analysis=outcome("cloud", capabilities=caps(dom0=False)),
                        host=outcome("generic"), host_analysis=outcome("generic", capabilities=caps()))
    assert h.calls == [("/k/generic", ["domU-pv", "domU-pvh"], "/k/cloud")]
    assert statuses(out) == {"domU-pv": "pass", "domU-pvh": "pass"}
    alone = tasks.execute(xen_task("cloud", roles=("domU-pv",)), kernel=outcome("cloud"),
                          analysis=outcome("cloud", capabilities=caps(dom0=False)))
    assert statuses(alone) == {"domU-pv": "blocked"} and len(h.calls) == 1
    assert "pv_dom0: no" in alone.cells["cloud/domU-pv"].verdict.reason


def test_without_a_fallback_guests_are_blocked(harness):
    harness()
    out = tasks.execute(xen_task("cloud"), kernel=outcome("cloud"),
                        analysis=outcome("cloud", capabilities=caps(dom0=False)))
    assert statuses(out) == {"dom0": "fail", "domU-pv": "blocked", "domU-pvh": "blocked"}


def test_guests_are_blocked_when_the_fallback_did_not_pass(harness):
    """A cold run once had the fallback's source broken: its analysis is then
    blocked and has no capabilities; the guests are blocked naming it."""
    h = harness()
    blocked = outcomes.TaskOutcome("a-generic", "analyze", "generic", Status.BLOCKED)
    out = tasks.execute(xen_task("cloud"), kernel=outcome("cloud"),
                        analysis=outcome("cloud", capabilities=caps(dom0=False)),
                        host=outcome("generic", status="broken"), host_analysis=blocked)
    assert statuses(out) == {"dom0": "fail", "domU-pv": "blocked", "domU-pvh": "blocked"}
    assert "dom0 fallback generic is broken" in out.cells["cloud/domU-pv"].verdict.reason
    assert h.calls == []


def test_harness_that_cannot_run_a_role_gives_not_run_never_pass(harness):
    harness(raises=NotImplementedError("PVH guests are not supported by the harness yet"))
    out = tasks.execute(xen_task(), kernel=outcome("k"), analysis=outcome("k", capabilities=caps()))
    assert set(statuses(out).values()) == {"not run"}
    assert "not supported" in out.cells["k/dom0"].verdict.reason


def test_infrastructure_failure_is_broken_and_not_cached(harness):
    h = harness(raises=PvmError("Xen boot: needs 2432 MB but only 900 MB are available"))
    args = dict(kernel=outcome("k"), analysis=outcome("k", capabilities=caps()))
    out = tasks.execute(xen_task(), **args)
    assert set(statuses(out).values()) == {"broken"}
    tasks.execute(xen_task(), **args)
    assert len(h.calls) == 2


def test_guest_not_run_because_dom0_failed_is_blocked(harness):
    harness(verdicts={"dom0": ("fail", "missing marker 'check=xl-list ok=1'", "failed"),
                      "domU-pv": ("blocked", "dom0 toolstack", "not run"),
                      "domU-pvh": ("blocked", "dom0 toolstack", "not run")})
    out = tasks.execute(xen_task(), kernel=outcome("k"), analysis=outcome("k", capabilities=caps()))
    assert statuses(out) == {"dom0": "fail", "domU-pv": "blocked", "domU-pvh": "blocked"}


def test_failed_dependency_blocks_every_cell_naming_it(harness):
    h = harness()
    out = tasks.execute(xen_task(), kernel=outcome("k", status="fail"),
                        analysis=outcome("k", capabilities=caps()))
    assert set(statuses(out).values()) == {"blocked"}
    assert out.cells["k/dom0"].verdict.reason == "k/build is fail"
    assert h.calls == []


def test_an_interrupted_boot_stores_no_verdict(harness):
    """Ctrl-C / SIGTERM while QEMU ran: tasks.abort() set ABORT; whatever the
    harness judged then is not the kernel's: not run, and nothing cached."""
    h = harness(verdicts={"dom0": ("fail", "missing marker 'stage=done'", "failed")})
    real = h.__call__

    def stopped_midway(*a, **kw):
        tasks.ABORT.set()
        return real(*a, **kw)
    import pvmatrix.boot as boot_mod
    boot_mod.run_cells = stopped_midway
    args = dict(kernel=outcome("k"), analysis=outcome("k", capabilities=caps()))
    try:
        out = tasks.execute(xen_task(), **args)
    finally:
        tasks.ABORT.clear()
    assert set(statuses(out).values()) == {"not run"}
    assert out.cells["k/dom0"].verdict.reason.startswith("interrupted")
    boot_mod.run_cells = real
    again = tasks.execute(xen_task(), **args)
    assert not again.cached and len(h.calls) == 2          # booted again: nothing was kept


def test_a_harness_interrupt_is_not_run_and_not_cached(harness):
    from pvmatrix.errors import Interrupted
    h = harness(raises=Interrupted("interrupted: the boot was stopped"))
    args = dict(kernel=outcome("k"), analysis=outcome("k", capabilities=caps()))
    out = tasks.execute(xen_task(), **args)
    assert set(statuses(out).values()) == {"not run"}
    h.raises = None
    assert not tasks.execute(xen_task(), **args).cached


# -- --confirm: boot what the analyzer rules out --------------------------

def cloud_as_dom0():
    """The harness's verdict on a real boot of Debian's 6.1 cloud kernel (no
    XEN_DOM0) as dom0: it halts before its init; QEMU stopped at the halt."""
    from pvmatrix.boot import roles
    from pvmatrix.boot.markers import parse_file
    from pvmatrix.boot.verdicts import BootOutcome, judge_host
    lines = parse_file(FIXTURES / "serial" / "cloud-as-dom0-halted.log")
    return judge_host(roles.get("dom0"), lines, BootOutcome(wall_s=62.0),
                      ["pv", "pvh"])


def test_confirm_boots_a_ruled_out_dom0_and_the_cell_keeps_both_evidences(harness):
    h = harness(verdicts={"dom0": cloud_as_dom0()})
    args = dict(kernel=outcome("cloud"), analysis=outcome("cloud", capabilities=caps(dom0=False)))
    plain = tasks.execute(xen_task("cloud", roles=("dom0",)), **args)
    assert h.calls == []                                  # without --confirm: not booted
    assert plain.cells["cloud/dom0"].verdict.detail == "static"
    out = tasks.execute(xen_task("cloud", roles=("dom0",), confirm=True), **args)
    assert h.calls == [("/k/cloud", ["dom0"], None)]
    v = out.cells["cloud/dom0"].verdict
    assert (str(v.status), v.detail) == ("fail", "halted")             # the boot's verdict
    assert v.reason.startswith("halted before 'stage=init': [   59.230392] reboot: System halted")
    assert "--confirm" in v.reason and "the static analysis said pv_dom0: no" in v.reason
    static, *booted = v.evidence
    assert (static.note, static.text) == ("static analysis", "pv_dom0: no (CONFIG_X=n)")
    assert any(e.text == "(XEN) Hardware Dom0 halted: halting machine" for e in booted)
    assert out.cells["cloud/dom0"].boot is not None and "serial" in out.cells["cloud/dom0"].logs


def test_confirm_boots_the_kernel_as_dom0_with_its_guests(harness):
    """Without --confirm the fallback hosts the guests; with it the kernel is
    booted as dom0 with them, as any dom0 (its failure blocks them)."""
    h = harness(verdicts={"dom0": cloud_as_dom0(),
                          "domU-pv": ("blocked", "dom0 timeout", "not run"),
                          "domU-pvh": ("blocked", "dom0 timeout", "not run")})
    args = dict(kernel=outcome("cloud"), analysis=outcome("cloud", capabilities=caps(dom0=False)),
                host=outcome("generic"), host_analysis=outcome("generic", capabilities=caps()))
    tasks.execute(xen_task("cloud"), **args)
    out = tasks.execute(xen_task("cloud", confirm=True), **args)
    assert h.calls == [("/k/generic", ["domU-pv", "domU-pvh"], "/k/cloud"),
                       ("/k/cloud", ["dom0", "domU-pv", "domU-pvh"], None)]
    assert statuses(out) == {"dom0": "fail", "domU-pv": "blocked", "domU-pvh": "blocked"}
    assert out.inputs["dom0_kernel"] == "cloud" and out.inputs["confirm"] is True
    assert "static analysis" not in out.cells["cloud/domU-pv"].verdict.reason   # not ruled out


def test_confirm_boots_a_ruled_out_guest_and_a_pass_keeps_the_static_no(harness):
    h = harness()
    out = tasks.execute(xen_task(confirm=True), kernel=outcome("k"),
                        analysis=outcome("k", capabilities=caps(pvh=False)))
    assert h.calls == [("/k/k", ["dom0", "domU-pv", "domU-pvh"], None)]
    assert statuses(out) == {"dom0": "pass", "domU-pv": "pass", "domU-pvh": "pass"}
    pvh = out.cells["k/domU-pvh"].verdict
    assert pvh.detail == "ok" and "the static analysis said pvh_domu: no" in pvh.reason
    assert [e.note for e in pvh.evidence] == ["static analysis", ""]


def test_confirm_cannot_boot_a_guest_without_a_dom0_it_stays_a_static_fail(harness):
    h = harness()
    out = tasks.execute(xen_task("cloud", roles=("domU-pv", "domU-pvh"), confirm=True),
                        kernel=outcome("cloud"),
                        analysis=outcome("cloud", capabilities=caps(dom0=False, pvh=False)))
    assert h.calls == []              # dom0 not a role: it never hosts its own guests
    assert statuses(out) == {"domU-pv": "blocked", "domU-pvh": "fail"}
    assert out.cells["cloud/domU-pvh"].verdict.detail == "static"


def test_the_outcome_cache_tells_a_confirmed_boot_from_a_plain_one(harness):
    h = harness(verdicts={"domU-pvh": ("fail", "missing marker 'stage=init'", "failed")})
    args = dict(kernel=outcome("k"), analysis=outcome("k", capabilities=caps(pvh=False)))
    tasks.execute(xen_task(), **args)
    first = tasks.execute(xen_task(confirm=True), **args)
    again = tasks.execute(xen_task(confirm=True), **args)
    plain = tasks.execute(xen_task(), **args)
    assert len(h.calls) == 2 and again.cached and plain.cached
    assert first.cells["k/domU-pvh"].verdict.detail == "failed"
    assert again.cells["k/domU-pvh"].verdict.to_dict() == first.cells["k/domU-pvh"].verdict.to_dict()
    assert plain.cells["k/domU-pvh"].verdict.detail == "static"
    # nothing ruled out: --confirm changes nothing, and reuses the plain boot
    ok = dict(kernel=outcome("k2"), analysis=outcome("k2", capabilities=caps()))
    tasks.execute(xen_task("k2"), **ok)
    assert tasks.execute(xen_task("k2", confirm=True), **ok).cached and len(h.calls) == 3
