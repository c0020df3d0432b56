"""Typed task outcomes and stage facts: each one's JSON is the shape the outcome
cache, a run's tasks/ and the cell records have always held (every outcome
and record under results/ round-trips unchanged), and a task's provenance is
still made from it as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvmatrix.analyze import Analysis
from pvmatrix.analyze.coverage import DeviceCoverage
from pvmatrix.analyze.facts import AnalysisFacts
from pvmatrix.analyze.hardware import PciDevice
from pvmatrix.analyze.verdicts import Capability
from pvmatrix.boot import facts as bootfacts
from pvmatrix.boot.harness import Boot, Cell as HarnessCell
from pvmatrix.build.facts import BuildFacts
from pvmatrix.build.kbuild import Build
from pvmatrix.matrix import outcomes
from pvmatrix.matrix.outcomes import TaskOutcome, facts_of
from pvmatrix.records import FAIL, PASS, BootFacts, Verdict
from pvmatrix.sources.facts import PackageFacts, SourceFacts
from pvmatrix.sources.packages import Package, Prebuilt

RESULTS = Path(__file__).resolve().parents[2] / "results"
TASK_FILES = sorted(RESULTS.glob("*/tasks/*.json"))
CELL_FILES = sorted(RESULTS.glob("*/cells/*.json"))


def _same(a, b) -> None:
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.skipif(not TASK_FILES, reason="no recorded run under results/")
@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: f"{p.parts[-3]}/{p.stem[:12]}")
def test_every_recorded_outcome_round_trips_unchanged(path):
    data = json.loads(path.read_text())
    _same(TaskOutcome.from_dict(data).to_dict(), data)


@pytest.mark.skipif(not CELL_FILES, reason="no recorded run under results/")
def test_every_recorded_manifest_reads_as_its_stage_facts():
    seen = set()
    for path in CELL_FILES:
        rec = json.loads(path.read_text())
        facts = facts_of(rec["cell"]["stage"], rec.get("manifest") or {})
        _same(facts.to_dict() if facts else {}, rec.get("manifest") or {})
        seen.add(type(facts).__name__)
    assert {"SourceFacts", "PackageFacts", "BuildFacts"} <= seen


@pytest.mark.skipif(not TASK_FILES, reason="no recorded run under results/")
def test_provenance_of_a_recorded_source_or_build_task_is_made_as_before():
    """Provenance moved from results/ to matrix.outcomes: same fields from the same outcomes."""
    checked = 0
    for run in {p.parents[1] for p in TASK_FILES}:
        done = {p.stem: json.loads(p.read_text()) for p in (run / "tasks").glob("*.json")}
        defs = {r["task"]: r["task_def"] for r in map(json.loads, map(Path.read_text,
                                                                      (run / "cells").glob("*.json")))
                if r.get("task_def")}
        for key, data in done.items():
            if key not in defs or "provenance" not in data or "error" in data["provenance"]:
                continue
            if any(k not in done for k in defs[key]["deps"].values()):
                continue      # a dependency that broke is not kept (only lasting outcomes are)
            deps = {name: TaskOutcome.from_dict(done[k]) for name, k in defs[key]["deps"].items()
                    if k in done}
            task = {"key": key, "stage": data["stage"]}
            made = outcomes.provenance_of(task, deps, TaskOutcome.from_dict(data))
            # every package of a prebuilt kernel is named since the split packaging
            packaged = made.pop("packages", None)
            recorded = dict(data["provenance"])
            if "packages" in recorded:             # a run since the split packaging
                assert packaged == recorded.pop("packages"), key
            assert made == recorded, key
            if packaged is not None:                 # every package the facts name
                facts = next(d for d in [TaskOutcome.from_dict(data), *deps.values()]
                             if isinstance(d.facts, PackageFacts)).facts
                assert packaged == facts.provenance()["packages"], key
            checked += 1
    assert checked


def _build(**kw) -> Build:
    files = {"bzImage": {"sha256": "a" * 64, "size": 1}, "modules/x.ko": {"sha256": "b" * 64, "size": 2}}
    return Build(**{"key": "k" * 64, "dir": Path("/cache/artifacts/" + "k" * 64), "source": "dir:/src",
                    "identity": "sha256:1", "version": "6.1.0", "toolchain": "bookworm-gcc12",
                    "image": "img:tag", "base": "tinyconfig", "fragments": ["xen-domu"],
                    "config_sha256": "c" * 64, "store": "/cache/artifacts", "files": files,
                    "manifest_sha256": "m" * 64, **kw})


def test_build_facts_are_what_a_build_task_always_returned():
    b = _build()
    today = {**b.brief(), "kernel_id": b.key, "kernel_path": str(b.dir), "boot_kernel": str(b.dir)}
    facts = BuildFacts.of(b)
    assert facts.to_dict() == today and list(facts.to_dict()) == list(today)
    assert facts.here(facts.boot_kernel) == str(b.dir)           # a local store: no fetch


def test_package_facts_wrap_the_resolved_package():
    p = Package("linux-image-6.1.0-31-amd64", "bookworm", Path("/c/x_6.1.128-1_amd64.deb"),
                "6.1.128-1", "sha256:" + "d" * 64)
    facts = PackageFacts(Prebuilt((p,)))
    assert facts.to_dict() == {"package": p.name, "suite": "bookworm", "deb": str(p.deb),
                               "version": "6.1.128-1", "kernel_id": p.digest,
                               "kernel_path": str(p.deb), "boot_kernel": p.spec}
    assert facts_of("source", facts.to_dict()) == facts
    assert facts_of("source", SourceFacts("dir:/s", "sha256:2", "6.1.0", "/s").to_dict()) \
        == SourceFacts("dir:/s", "sha256:2", "6.1.0", "/s")


def test_package_facts_of_a_split_kernel_name_every_package():
    abi = "7.2.13+deb14-cloud-amd64"
    parts = tuple(Package(f"linux-{kind}-{abi}", "sid", Path(f"/c/linux-{kind}-{abi}_7.2.13-1_amd64.deb"),
                          "7.2.13-1", f"sha256:{n}" * 1) for n, kind in
                  enumerate(["image", "base", "binary", "modules"]))
    facts = PackageFacts(Prebuilt(parts))
    data = facts.to_dict()
    assert data["kernel_path"] == data["boot_kernel"] == f"debian:linux-image-{abi}@sid"
    assert data["kernel_id"] not in {q.digest for q in parts}
    assert [q["package"] for q in data["parts"]] == [q.name for q in parts]
    assert facts_of("source", data) == facts
    assert [q["name"] for q in facts.provenance()["packages"]] == [q.name for q in parts]
    assert facts.provenance()["packages"][3] == {"name": f"linux-modules-{abi}", "version": "7.2.13-1",
                                                 "suite": "sid", "sha256": "sha256:3"}


def test_analysis_facts_keep_the_first_evidence_and_devices_by_qemu_name():
    dev = PciDevice("e1000 NIC", 0x8086, 0x100e, 2, 0, qemu="e1000")
    a = Analysis(files=None, release="6.1.0",
                 capabilities=[Capability("pv_domu", "PV", True, None, ["a", "b", "c", "d"])],
                 devices=[DeviceCoverage(dev, "module", "e1000")])
    assert AnalysisFacts.of(a).to_dict() == {
        "release": "6.1.0",
        "capabilities": {"pv_domu": {"supported": True, "form": None, "evidence": ["a", "b", "c"]}},
        "devices": {"e1000": {"status": "module", "driver": "e1000"}}}


def test_boot_facts_are_the_dict_a_boot_cell_always_had():
    b = Boot("xen", Path("/runs/x"), "kvm", wall_s=30.0, peak_rss_mb=812.5, stopped_by="stage=done",
             provenance={"qemu": "QEMU 7.2", "accel": "kvm"})
    c = HarnessCell("dom0", "linux-6.1", "4.17", ["e1000"], Verdict(PASS), 9.0, b,
                    {"e1000": {"driver": "e1000"}})
    today = {"accel": "kvm", "peak_rss_mb": 812.5, "devices": {"e1000": {"driver": "e1000"}},
             "kernel": "linux-6.1", "stopped_by": "stage=done", "timed_out": False,
             "provenance": {"qemu": "QEMU 7.2", "accel": "kvm"}}
    facts = bootfacts.of(c)
    assert facts.to_dict() == today and list(facts.to_dict()) == list(today)
    assert bootfacts.of(c, "k1").to_dict() == {**today, "dom0": "k1"}
    assert BootFacts.from_dict(today) == facts


@pytest.mark.skipif(not CELL_FILES, reason="no recorded run under results/")
def test_every_recorded_boot_reads_as_boot_facts():
    """Older records lack stopped_by, timed_out and provenance; a bare-metal one has no dom0."""
    shapes = set()
    for path in CELL_FILES:
        boot = json.loads(path.read_text()).get("boot")
        if boot is not None:
            assert list(BootFacts.from_dict(boot).to_dict().items()) == list(boot.items()), path
            shapes.add(len(boot))
    assert len(shapes) > 1


def test_a_boot_record_with_an_unknown_key_is_refused():
    with pytest.raises(TypeError):
        BootFacts.from_dict({"accel": "tcg", "peak_rss_mb": 1.0, "devices": {}, "kernel": "k",
                             "surprise": 1})


def test_the_outcome_cache_keeps_a_typed_outcome(private_cache):
    task = {"key": "t", "stage": "analyze", "kernel": "k", "cells": [{"id": "k/analyze"}]}
    out = outcomes.new(task, AnalysisFacts("6.1.0"), {"kernel_id": "x"})
    outcomes.cell(out, "k/analyze", Verdict(FAIL, "no driver", "missing"))
    outcomes.save("key-1", out)
    hit = outcomes.load("key-1", task)
    assert hit.cached and hit.facts == out.facts and hit.cells == out.cells
    _same(json.loads((private_cache / "matrix" / "outcomes" / "key-1.json").read_text()),
          out.to_dict())


def test_a_step_blocked_by_its_guests_failed_step_is_cached_a_dead_host_is_not(private_cache):
    from pvmatrix.boot.verdicts import EARLIER_STEP
    task = {"key": "t", "stage": "analyze", "kernel": "k",
            "cells": [{"id": "k/save"}, {"id": "k/migrate"}]}
    out = outcomes.new(task, AnalysisFacts("6.1.0"), {"kernel_id": "x"})
    outcomes.cell(out, "k/save", Verdict(FAIL, "xl restore failed", "failed"))
    outcomes.cell(out, "k/migrate", Verdict("blocked", "the guest did not survive the save",
                                            EARLIER_STEP))
    outcomes.save("key-2", out)
    assert outcomes.load("key-2", task).cells == out.cells
    outcomes.cell(out, "k/migrate", Verdict("blocked", "dom0 panic", "not run"))
    outcomes.save("key-3", out)
    assert outcomes.load("key-3", task) is None


def test_a_boot_hands_on_no_facts():
    with pytest.raises(ValueError, match="boot task hands on no facts"):
        facts_of("boot", {"worker": "w"})
    assert facts_of("boot", {}) is None
