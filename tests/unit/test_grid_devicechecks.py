"""A device cell shows the analyzer's coverage and the host boots' binding side
by side (report/grid.py joins them at report time): on a real run
(results/20261127-211042-e4e2, debian-suites) whose bare-metal boot of
bookworm-backports (6.12.95) recorded its device probes, given the checks
boot/facts.py makes from those probes and the run's own analysis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from pvmatrix.analyze.facts import AnalysisFacts
from pvmatrix.boot import devices as devmod, facts as bootfacts
from pvmatrix.boot.verdicts import judge_device
from pvmatrix.records import BootFacts
from pvmatrix.report import html, markdown, terminal
from pvmatrix.report.grid import build_grid
from pvmatrix.results.devicechecks import BOOTED_NOTE, DISAGREE_MARK
from pvmatrix.results.store import Run

RUN = Path(__file__).parent.parent.parent / "results" / "20261127-211042-e4e2"
K = "bookworm-backports"
BOOT = f"cells/{K}_baremetal_default.json"


def _run(tmp_path: Path, unbind: str | None = None) -> Run:
    """A copy of the real run, its bare-metal boot given its device checks; UNBIND:
    a device whose driver is taken out of the boot's probes (a derived case: the
    disagreement a kernel without that driver would show)."""
    dest = tmp_path / RUN.name
    shutil.copytree(RUN, dest, ignore=shutil.ignore_patterns("logs", "*.html", "*.md"))
    rec = json.loads((dest / BOOT).read_text())
    analysis = next(json.loads(p.read_text()) for p in (dest / "tasks").glob(f"analyze-{K}-*.json"))
    static = AnalysisFacts.from_dict(analysis["manifest"]).devices
    devices = rec["boot"]["devices"]
    if unbind:
        devices[unbind] = {**devices[unbind], "driver": None}
    for d in devmod.plan(list(devices)):         # judged as the harness judges them today
        devices[d.name]["ok"], devices[d.name]["reason"] = judge_device(
            d.kind, d.has_disk, devices[d.name])
    boot = BootFacts.from_dict(rec["boot"])
    checks = bootfacts.checks(SimpleNamespace(devices=devices, role="baremetal"), static)
    rec["boot"] = BootFacts(**{**boot.__dict__, "checks": checks}).to_dict()
    (dest / BOOT).write_text(json.dumps(rec))
    return Run(dest)


def test_a_device_cell_shows_static_and_booted_side_by_side(tmp_path):
    run = _run(tmp_path)
    g = build_grid(run)
    nic, disk = g.get(K, "e1000e"), g.get(K, "ich9-ahci")
    # the real probes: e1000e bound (its link probe came later), ahci bound and its disk read
    assert g.text(nic) == "module | baremetal bound (probe failed)"
    assert g.text(disk).endswith(" | baremetal bound") and DISAGREE_MARK not in g.text(disk)
    booted = [e for e in disk["verdict"]["evidence"] if e["note"] == BOOTED_NOTE]
    assert booted and f"cell {K}/baremetal/default" in booted[0]["text"]
    assert "static" in booted[0]["text"] and "ahci bound, disk sda read" in booted[0]["text"]
    assert booted[0]["line"] == 420 and booted[0]["log"].endswith(("serial.log", ".log.gz"))   # published: logs/DIGEST.log.gz
    # the records on disk are not changed by the report
    assert not any(e["note"] == BOOTED_NOTE for e in
                   json.loads((run.dir / f"cells/{K}_hw_default_ich9-ahci.json").read_text())
                   ["verdict"]["evidence"])


def test_a_disagreement_is_flagged_in_every_report(tmp_path):
    run = _run(tmp_path, unbind="ich9-ahci")
    g = build_grid(run)
    cell = g.get(K, "ich9-ahci")
    assert g.text(cell).endswith(f"| baremetal unbound {DISAGREE_MARK}")
    ev = [e["text"] for e in cell["verdict"]["evidence"]]
    assert any("coverage" == e["note"] for e in cell["verdict"]["evidence"])   # static evidence
    assert any("[static and booted disagree]" in t for t in ev)                # booted evidence
    assert f"unbound {DISAGREE_MARK}" in terminal.render(run)
    md = markdown.render(run)
    assert f"unbound {DISAGREE_MARK}" in md
    assert f"### {K}/hw/default/ich9-ahci: pass" in md          # its evidence listed, though a pass
    assert f"unbound {DISAGREE_MARK}" in html.render(run)


@pytest.mark.parametrize("run", sorted(p.name for p in RUN.parent.glob("2*")))
def test_published_runs_show_no_disagreement(run):
    """Every published run: runs from before the boot checks have none; a run
    with them (the default spec's) shows each device's booted binding, and no
    disagreement (the analyzer and the boots agree on every device)."""
    g = build_grid(Run(RUN.parent / run))
    texts = [g.text(g.get(k, c)) for k in g.kernels for c in g.columns]
    assert all(DISAGREE_MARK not in t for t in texts)
    if g.checks:
        assert any("dom0 bound" in t for t in texts)
        assert not any(c.disagree for cs in g.checks.values() for c in cs)


def test_a_boot_whose_kernel_died_is_no_evidence_against_the_analyzer():
    """Real: the reference run's bookworm-backports-cloud double-faulted at bare
    metal before its probes; its unbound devices are not a disagreement."""
    import json
    from pvmatrix.results.devicechecks import by_device_cell
    died_dir = Path(__file__).resolve().parent.parent / "fixtures" / "results" / \
        "bpo-cloud-baremetal-died"
    recs = [json.loads(p.read_text()) for p in died_dir.glob("*.json")]
    died = next(r for r in recs if r["cell"]["role"] == "baremetal")
    assert died["verdict"]["detail"] == "panic" and died["boot"]["checks"]
    checks = by_device_cell(recs)
    assert not any(x.role == "baremetal" for xs in checks.values() for x in xs)
    died["verdict"]["detail"] = "failed"          # the same boot, had it not died
    assert any(x.disagree for xs in by_device_cell(recs).values() for x in xs)


def test_the_deaths_are_the_boot_verdicts_own_details():
    """devicechecks.DIED names boot/verdicts.py's details of a kernel that died."""
    from pvmatrix.boot import verdicts as v
    from pvmatrix.results.devicechecks import DIED
    assert DIED == {v.PANIC, v.OOPS, v.CRASHED, v.HALTED, v.TIMEOUT}
