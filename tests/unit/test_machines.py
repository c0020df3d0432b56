"""Real machines as matrix columns (matrix.machines): the spec key, the plan's
analyze task per kernel and machine, its "N/M devices covered" verdict from a
real Debian kernel's modules.alias and config lines against real servers'
lspci captures (tests/fixtures/analyze/machines), and the column in the
reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pvmatrix.analyze import Analysis, coverage, machines
from pvmatrix.analyze.kconfig import read_config
from pvmatrix.analyze.modules import scan_alias_file
from pvmatrix.errors import UserError
from pvmatrix.kernel import Kernel
from pvmatrix.matrix import plan as planmod, recording, spec as specmod, tasks
from pvmatrix.matrix.cells import Task
from pvmatrix.report import html, markdown, terminal
from pvmatrix.report.grid import build_grid
from pvmatrix.results import store
from pvmatrix.sources import packages

from tests.unit.test_matrix_tasks import outcome

FIX = Path(__file__).parent.parent / "fixtures" / "analyze" / "machines"
R220 = FIX / "dell-poweredge-r220.lspci-vvnn.txt"
SPEC = """
[matrix]
xen = ["4.17"]
roles = ["baremetal"]
machines = {machines}

[[kernel]]
name = "bullseye"
package = "debian:linux-image-amd64@bullseye"
"""


def _spec(tmp_path: Path, machines_: list[str], monkeypatch) -> Path:
    monkeypatch.setattr(packages, "check", lambda *a: None)     # no apt: the spec's syntax only
    shutil.copy(R220, tmp_path / "r220.lspci.txt")
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(machines=repr(machines_).replace("'", '"')))
    return path


def test_shipped_machines_are_the_real_captures():
    assert {"dell-poweredge-860", "dell-poweredge-2950", "dell-poweredge-r220"} <= set(machines.names())
    for name in ("dell-poweredge-860", "dell-poweredge-2950", "dell-poweredge-r220"):
        shipped = machines.MACHINES / f"{name}{machines.SUFFIX}"
        assert shipped.read_bytes() == (FIX / f"{name}.lspci-vvnn.txt").read_bytes()
    assert machines.load("dell-poweredge-r320").name == "dell-poweredge-r320"   # a hardware profile


def test_a_spec_names_machines_and_the_plan_gives_each_a_cell(tmp_path, monkeypatch):
    s = specmod.load(_spec(tmp_path, ["dell-poweredge-860", "dell-poweredge-r320",
                                      "r220.lspci.txt"], monkeypatch))
    got = [t for t in planmod.make_plan(s).tasks if t.func == "analyze_machine"]
    assert [t.cells[0].id for t in got] == ["bullseye/machine/dell-poweredge-860",
                                            "bullseye/machine/dell-poweredge-r320",
                                            "bullseye/machine/r220"]
    r220 = machines.from_args(got[2].args["profile"])
    assert [d.ids for d in r220.devices] == [d.ids for d in machines.load(str(R220)).devices]


@pytest.mark.parametrize("entry, says", [
    ("no-such-machine", "matrix.machines: unknown machine 'no-such-machine'"),
    ("/etc/hostname", "matrix.machines: machine '/etc/hostname': outside the folders"),
    ("spec.toml", "matrix.machines: "),          # in the folder, but not an lspci dump
])
def test_bad_machines_are_one_line_naming_the_key(tmp_path, monkeypatch, entry, says):
    path = _spec(tmp_path, [entry], monkeypatch)
    with pytest.raises(UserError) as err:
        specmod.load(path)
    assert says in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def _bullseye(_kernel, hardware):
    """The analysis of Debian's 5.10.0-32 kernel, from its real modules.alias and config lines."""
    scan = scan_alias_file(FIX / "modules.alias-5.10.0-32-amd64")
    config = read_config(FIX / "config-5.10.0-32-amd64")
    return Analysis(Kernel("bullseye"), "5.10.0-32-amd64", config=config, scan=scan,
                    profile=hardware, devices=coverage.cover(hardware, config, scan))


def _machine_task(name: str) -> Task:
    return Task("analyze", "bullseye", "analyze_machine",
                {"machine": name, "profile": machines.to_args(machines.load(name))},
                {"kernel": "build-bullseye"},
                [planmod.Cell(f"bullseye/machine/{name}", "analyze", "bullseye", name, hardware=name)],
                {})


def test_the_machine_cell_says_n_of_m_covered_and_names_the_missing(private_cache, monkeypatch):
    monkeypatch.setattr(tasks, "run_analysis", _bullseye)
    out = tasks.execute(_machine_task("dell-poweredge-860").payload(), kernel=outcome("bullseye"))
    v = out.cells["bullseye/machine/dell-poweredge-860"].verdict
    profile = machines.load("dell-poweredge-860")
    m = coverage.machine(_bullseye(None, profile).devices)
    assert v.detail == m.summary and v.reason.startswith(m.summary)
    assert len(m.counted) + len(m.apart) == len(profile.devices)
    assert str(v.status) == ("fail" if m.missing else "pass")
    for d in m.missing:                               # each missing device named, with its why
        assert machines.device_line(d) in v.reason
        assert any(e.note == "missing" and machines.device_line(d) in e.text for e in v.evidence)
    assert [e.note for e in v.evidence].count("apart") == len(m.apart)


def test_machine_columns_in_every_report(tmp_path, private_cache, monkeypatch):
    monkeypatch.setattr(tasks, "run_analysis", _bullseye)
    s = specmod.load(_spec(tmp_path, ["dell-poweredge-860", "dell-poweredge-r220"], monkeypatch))
    run = store.create(tmp_path / "results", s)
    summaries = {}
    for name in s.machines:
        task = _machine_task(name)
        out = tasks.execute(task.payload(), kernel=outcome("bullseye"))
        run.record(recording.make_record(run, task, task.cells[0], out))
        summaries[name] = out.cells[task.cells[0].id].verdict.detail
    g = build_grid(run)
    assert g.columns == ["dell-poweredge-860", "dell-poweredge-r220"]
    assert g.text(g.get("bullseye", "dell-poweredge-r220")) == summaries["dell-poweredge-r220"]
    assert "devices covered" in summaries["dell-poweredge-r220"]
    for page in (terminal.render(run), markdown.render(run), html.render(run)):
        assert all(s_ in page for s_ in summaries.values())
    assert ">machines<" in html.render(run)
