"""One Xen boot hosts the guests of many kernels that cannot be dom0: the
planner's boot_hosted task, the harness naming each kernel's guests, the
verdicts split back per kernel (a panicking guest fails only its own cells, a
dead host dom0 breaks them all), and each kernel's verdicts cached under its
own task's key (a changed kernel is booted again alone)."""

import re
from dataclasses import replace

import pytest

import pvmatrix.boot as boot
from pvmatrix.boot import harness, roles
from pvmatrix.boot.harness import Boot, Cell as HarnessCell
from pvmatrix.boot.markers import parse
from pvmatrix.boot.verdicts import BootOutcome, judge_guest, judge_host
from pvmatrix.matrix import spec, tasks
from pvmatrix.matrix.cells import HOSTED, alone
from pvmatrix.matrix.plan import make_plan
from pvmatrix.records import Verdict

from conftest import FIXTURES
from .test_matrix_tasks import caps, outcome, xen_task

FALLBACK = "debian-6.1-generic"


# -- the plan -----------------------------------------------------------------

def test_the_plan_offers_every_other_rows_guests_to_one_hosted_boot():
    plan = make_plan(spec.load(None))
    group, = [t for t in plan.tasks if t.func == "boot_hosted"]
    xen = {t.kernel: t for t in plan.tasks if t.func == "boot_xen"}
    assert group.kernel == FALLBACK and group.cells == []          # it owns no cell
    assert [g["kernel"] for g in group.args["guests"]] == [k for k in xen if k != FALLBACK]
    for g in group.args["guests"]:                 # the same cells as the row's own task
        assert g["cells"] == [c.to_dict() for c in xen[g["kernel"]].cells]
        assert xen[g["kernel"]].deps[HOSTED] == group.key
    assert HOSTED not in xen[FALLBACK].deps
    assert group.deps["host"] == xen["debian-6.1-cloud"].deps["host"]
    assert alone(xen["debian-6.1-cloud"].deps) == {k: v for k, v in xen["debian-6.1-cloud"].deps.items()
                                                    if k != HOSTED}
    # the plan's cells are still each row's own, once
    ids = [c.id for c in plan.cells]
    assert len(ids) == len(set(ids))


def test_without_a_fallback_there_is_no_hosted_boot():
    s = spec.load(None)
    s.dom0_fallback = None
    plan = make_plan(s)
    assert not [t for t in plan.tasks if t.func == "boot_hosted"]
    assert all(HOSTED not in t.deps for t in plan.tasks)


# -- the tasks ----------------------------------------------------------------

class HostedHarness:
    """Stands in for boot.run_hosted (and run_cells, which must not be called for
    a hosted kernel): each guest's roles pass unless VERDICTS says otherwise."""
    def __init__(self, tmp_path, verdicts=None, raises=None):
        self.calls, self.single, self.dir = [], [], tmp_path
        self.verdicts, self.raises = verdicts or {}, raises

    def __call__(self, host, guests, xen="4.17", names=None, profile=None, deadline_s=None):
        self.calls.append((host, [(g.kernel, list(g.roles)) for g in guests]))
        if self.raises:
            raise self.raises
        b = Boot("xen", self.dir, "tcg", wall_s=40.0)
        return [[HarnessCell(r, g.kernel, xen, [], Verdict(*self.verdicts.get((g.kernel, r),
                                                                           ("pass", "fine", "ok"))),
                             5.0, b, guest=i) for r in g.roles]
                for i, g in enumerate(guests, 1)]

    def run_cells(self, *args, **kw):
        self.single.append(args)
        return []


@pytest.fixture
def hosted(tmp_path, monkeypatch, private_cache):
    monkeypatch.setattr(tasks, "_boot_kernel", lambda facts: facts.boot_kernel)

    def make(**kw):
        h = HostedHarness(tmp_path, **kw)
        monkeypatch.setattr(boot, "run_hosted", h)
        monkeypatch.setattr(boot, "run_cells", h.run_cells)
        return h
    return make


ROWS = ("cloud-a", "cloud-b", "min")          # min can be dom0: it boots on its own


def group_task(recheck=False):
    guests = [{"kernel": k, "cells": xen_task(k)["cells"]} for k in ROWS]
    return {"key": "boot-hosted-1", "stage": "boot", "kernel": "generic", "func": "boot_hosted",
            "args": {"profile": "default", "xen": "4.17", "roles": ["dom0", "domU-pv", "domU-pvh"],
                     "recheck": recheck, "guests": guests}, "cells": []}


def group_deps(ids=None):
    ids = ids or {}
    deps = {"host": outcome("generic"), "host_analysis": outcome("generic", capabilities=caps())}
    for i, k in enumerate(ROWS):
        deps[f"hosted_kernel_{i}"] = outcome(k, kernel_id=ids.get(k))
        deps[f"hosted_analysis_{i}"] = outcome(k, capabilities=caps(dom0=k == "min"))
    return deps


def own(k, group, ids=None):
    """Row K's own boot_xen task, after the group."""
    return tasks.execute(xen_task(k), kernel=outcome(k, kernel_id=(ids or {}).get(k)),
                         analysis=outcome(k, capabilities=caps(dom0=k == "min")),
                         host=outcome("generic"), host_analysis=outcome("generic", capabilities=caps()),
                         hosted=group)


def test_one_boot_hosts_the_guests_of_every_kernel_that_cannot_be_dom0(hosted):
    h = hosted(verdicts={("/k/cloud-b", "domU-pvh"): ("fail", "Kernel panic", "panic")})
    group = tasks.execute(group_task(), **group_deps())
    assert h.calls == [("/k/generic", [("/k/cloud-a", ["domU-pv", "domU-pvh"]),
                                       ("/k/cloud-b", ["domU-pv", "domU-pvh"])])]
    a, b = own("cloud-a", group), own("cloud-b", group)
    assert h.single == []                                # no boot of their own
    assert {c: str(v.verdict.status) for c, v in a.cells.items()} == {
        "cloud-a/dom0": "fail", "cloud-a/domU-pv": "pass", "cloud-a/domU-pvh": "pass"}
    assert str(b.cells["cloud-b/domU-pvh"].verdict.status) == "fail"      # its own cell only
    assert str(b.cells["cloud-b/domU-pv"].verdict.status) == "pass"
    assert b.cells["cloud-b/domU-pv"].boot.dom0 == "generic"
    assert b.inputs["dom0_kernel"] == "generic"


def test_unchanged_kernels_keep_their_records_and_a_changed_one_boots_alone(hosted):
    h = hosted()
    first = tasks.execute(group_task(), **group_deps())
    before = own("cloud-a", first).cells
    again = tasks.execute(group_task(), **group_deps())
    assert len(h.calls) == 1 and again.cells == {}      # everything cached: no boot
    changed = tasks.execute(group_task(), **group_deps({"cloud-b": "new-b"}))
    assert h.calls[-1] == ("/k/generic", [("/k/cloud-b", ["domU-pv", "domU-pvh"])])
    a = own("cloud-a", changed)
    assert a.cached and a.cells == before                 # the same records, from the cache
    assert set(own("cloud-b", changed, {"cloud-b": "new-b"}).cells) >= {"cloud-b/domU-pv"}
    assert h.single == []


def test_a_retry_boots_its_kernel_alone(hosted):
    h = hosted()
    group = tasks.execute(group_task(), **group_deps())
    retry = xen_task("cloud-a", recheck=True)
    retry["args"]["retry"] = 2
    tasks.execute(retry, kernel=outcome("cloud-a"),
                  analysis=outcome("cloud-a", capabilities=caps(dom0=False)),
                  host=outcome("generic"), host_analysis=outcome("generic", capabilities=caps()),
                  hosted=group)
    assert len(h.single) == 1 and h.single[0][1] == ["domU-pv", "domU-pvh"]


def test_the_shared_boots_error_is_each_hosted_cells(hosted):
    from pvmatrix.errors import QemuKilled
    hosted(raises=QemuKilled("QEMU was killed by SIGKILL after 30 s"))
    group = tasks.execute(group_task(), **group_deps())
    statuses = {c: str(v.verdict.status) for c, v in group.cells.items()}
    assert statuses == {f"{k}/{r}": "broken" for k in ("cloud-a", "cloud-b")
                        for r in ("domU-pv", "domU-pvh")}
    assert str(own("cloud-b", group).cells["cloud-b/domU-pv"].verdict.status) == "broken"


# -- the harness: names, files, and the split of one real serial log ----------

def test_several_guest_kernels_get_names_and_directories_of_their_own():
    pv, pvh = roles.get("domU-pv"), roles.get("domU-pvh")
    one = harness.named([(None, [pv, pvh])])
    assert [(i, g.where) for i, g in one] == [(1, "pv"), (1, "pvh")]      # as before
    two = harness.named([(None, [pv, pvh]), (None, [pv])])
    assert [(i, g.where, g.name) for i, g in two] == [
        (1, "pv_1", "domU-pv"), (1, "pvh_1", "domU-pvh"), (2, "pv_2", "domU-pv")]
    guests = [g for _, g in two]
    dirs = {g.where: "/" + harness.guest_dir(i, 2) for i, g in two}
    plan = harness.boot_plan(roles.host(xen=True), guests, "abcd", False, "", dirs)
    assert plan["GUESTS"] == "pv_1:pv:1 pvh_1:pvh:2 pv_2:pv:3"
    assert plan["DIR_pv_2"] == "/pvm/guest/2" and plan["CMDLINE_pv_2"] == pv.cmdline
    assert "DIR_pv" not in harness.boot_plan(roles.host(xen=True), [pv], "abcd", False)
    assert harness.guest_dir(1, 1) == "pvm/guest"
    dom0 = roles.host(xen=True)
    assert harness.sized(dom0, guests, 3).dom0_mb == dom0.dom0_mb + 2 * harness.GUEST_KERNEL_MB


def _as_guest(lines: list[str], name: str) -> list[str]:
    """A real guest's lines (dom0's markers and its relayed console) under NAME."""
    out = []
    for ln in lines:
        ln = re.sub(r"guest=pv\b", f"guest={name}", ln)
        ln = re.sub(r"PVMG pv\|", f"PVMG {name}|", ln)
        out.append(ln.replace("name=pv ", f"name={name} ").replace("PVMDISK-pv-", f"PVMDISK-{name}-"))
    return out


def two_kernel_log() -> str:
    """The real dom0-pv-pvh-ok.log with its PV guest run twice, as a hosted boot
    of two kernels does: pv_1 as it was, pv_2 dying of the real panic of
    baremetal-panic.log (its console relayed as dom0 relays it)."""
    real = (FIXTURES / "boot" / "dom0-pv-pvh-ok.log").read_text().splitlines()
    pv = [ln for ln in real if re.search(r"guest=pv\b|PVMG pv\|", ln)]
    head = [ln for ln in real if ln not in pv and "pvh" not in ln and "stage=done" not in ln]
    panic = (FIXTURES / "boot" / "baremetal-panic.log").read_text().splitlines()[190:]
    second = _as_guest(pv[:2], "pv_2") + [f"PVMG pv_2| {ln}" for ln in panic] + \
        [_as_guest(pv[-1:], "pv_2")[0].replace("state=done", "state=crashed")]
    done = [ln for ln in real if ln.startswith("PVM stage=done")]
    return "\n".join(head + _as_guest(pv, "pv_1") + second + done) + "\n"


def test_a_guest_kernel_that_panics_fails_only_its_own_cells():
    lines = parse(two_kernel_log())
    dom0 = judge_host(roles.host(xen=True), lines, BootOutcome(), ["pv_1", "pv_2"])
    assert dom0.ok, dom0.reason
    nonce = re.search(r"PVMDISK-pv_1-(\w+)", two_kernel_log()).group(1)
    pv = roles.get("domU-pv")
    v1, v2 = (judge_guest(replace(pv, where=n), lines, BootOutcome(), dom0,
                          {"disk": f"PVMDISK-{n}-{nonce}"}) for n in ("pv_1", "pv_2"))
    assert v1.ok, v1.reason
    assert not v2.ok and v2.detail == "panic" and "VFS: Unable to mount root fs" in v2.reason
    assert all("PVMG" not in e.text and "pv_1" not in e.text for e in v2.evidence)


def test_a_dead_host_dom0_breaks_every_hosted_cell():
    lines = parse(two_kernel_log())
    dead = Verdict("fail", "Kernel panic - not syncing", "panic")
    v = judge_guest(replace(roles.get("domU-pv"), where="pv_1"), lines, BootOutcome(), dead, {})
    assert str(v.status) == "blocked"                    # the judge's word, in any Xen boot
    broken = harness.host_fault(v, "generic")
    assert str(broken.status) == "broken" and broken.reason.startswith("host dom0 generic:")
    ok = Verdict("pass", "fine", "ok")
    assert harness.host_fault(ok, "generic") is ok


def test_with_no_dom0_cell_the_fallback_hosts_a_dom0_capable_row_and_itself(hosted):
    """Guest roles only: a kernel that could be dom0 is not booted as one to host
    its own guests; the fallback hosts them, its own too (one dom0 for all)."""
    h = hosted()
    guests = [{"kernel": k, "cells": xen_task(k, roles=("domU-pv",))["cells"]}
              for k in ("min", "generic")]
    task = {"key": "boot-hosted-2", "stage": "boot", "kernel": "generic", "func": "boot_hosted",
            "args": {"profile": "default", "xen": "4.17", "roles": ["domU-pv"],
                     "recheck": False, "guests": guests}, "cells": []}
    deps = {"host": outcome("generic"), "host_analysis": outcome("generic", capabilities=caps()),
            "hosted_kernel_0": outcome("min"),
            "hosted_analysis_0": outcome("min", capabilities=caps(dom0=True)),
            "hosted_kernel_1": outcome("generic"),
            "hosted_analysis_1": outcome("generic", capabilities=caps())}
    group = tasks.execute(task, **deps)
    assert h.calls == [("/k/generic", [("/k/min", ["domU-pv"]), ("/k/generic", ["domU-pv"])])]
    mine = tasks.execute(xen_task("min", roles=("domU-pv",)), kernel=outcome("min"),
                         analysis=outcome("min", capabilities=caps(dom0=True)),
                         host=outcome("generic"),
                         host_analysis=outcome("generic", capabilities=caps()), hosted=group)
    assert h.single == [] and str(mine.cells["min/domU-pv"].verdict.status) == "pass"
    assert mine.cells["min/domU-pv"].boot.dom0 == "generic"
