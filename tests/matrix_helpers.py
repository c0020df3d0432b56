"""Helpers for the matrix tests: a small spec whose one kernel is already in
the cache (no build), and fabricated runs for the report/compare tests."""

from __future__ import annotations

import time
from pathlib import Path

from pvmatrix.results import store
from pvmatrix.records import BootFacts, Evidence, Verdict
from pvmatrix.results.records import Cell, CellRecord
from pvmatrix.matrix.spec import load

CACHED_KERNEL = """
[[kernel]]
name = "tiny-6.1"
source = "debian:linux-source-6.1@bookworm"
base = "tinyconfig"
fragments = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]
"""


def small_spec(tmp: Path, name: str = "small", roles: str = "[]") -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(f'[matrix]\nname = "{name}"\nroles = {roles}\nhardware = ["default"]\n'
                    + CACHED_KERNEL)
    return path


FAKE_CELLS = [
    (Cell("k1/build", "build", "k1", "build"), Verdict("pass", "Linux 6.1.1", "built")),
    (Cell("k1/analyze/default", "analyze", "k1", "Xen (static)", hardware="default"),
     Verdict("pass", "6.1.1: PV PVH dom0", "PV PVH dom0")),
    (Cell("k1/hw/default/e1000e", "analyze", "k1", "e1000e", hardware="default", device="NIC"),
     Verdict("pass", "e1000e (module)", "module")),
    (Cell("k1/dom0/xen-4.17/default", "boot", "k1", "dom0 Xen 4.17", role="dom0", xen="4.17",
          hardware="default"),
     Verdict("fail", "Kernel panic - not syncing: VFS", "panic",
             [Evidence("Kernel panic - not syncing: VFS: Unable to mount root", "panic", 812,
                       "/tmp/serial.log")])),
    (Cell("k2/source", "source", "k2", "source"),
     Verdict("pass", "linux-image-6.1.0-50-cloud-amd64 6.1.176-1", "prebuilt")),
    (Cell("k2/hw/default/e1000e", "analyze", "k2", "e1000e", hardware="default", device="NIC"),
     Verdict("fail", "no driver for 8086:10d3", "missing")),
    (Cell("k2/dom0/xen-4.17/default", "boot", "k2", "dom0 Xen 4.17", role="dom0", xen="4.17",
          hardware="default"),
     Verdict("skip", "pv_dom0: no (CONFIG_XEN_DOM0 is not set)", "analyzer")),
    (Cell("k2/domU-pv/xen-4.17/default", "boot", "k2", "domU-pv Xen 4.17", role="domU-pv",
          xen="4.17", hardware="default"),
     Verdict("broken", "QEMU could not start", "broken")),
    (Cell("k2/domU-pvh/xen-4.17/default", "boot", "k2", "domU-pvh Xen 4.17", role="domU-pvh",
          xen="4.17", hardware="default"),
     Verdict("not run", "the boot harness cannot run PVH yet", "harness")),
]

# The boot facts of the cells that booted (the others have none).
FAKE_BOOTS = {"k1/dom0/xen-4.17/default": BootFacts(
    "kvm", 812.5, {"e1000e": {"driver": None}}, "k1", "Kernel panic - not syncing", False,
    {"qemu": "QEMU emulator version 7.2.15", "accel": "kvm"}, "k1")}


def fake_run(results: Path, spec_path: Path, overrides: dict[str, str] | None = None) -> store.Run:
    """A recorded run of FAKE_CELLS (statuses changed by OVERRIDES: cell id -> status)."""
    from pvmatrix.results.index import Index
    spec = load(spec_path)
    run = store.create(results, spec)
    run.update(kernels=["k1", "k2"])
    index = Index(results)
    for cell, verdict in FAKE_CELLS:
        v = Verdict(**{**verdict.__dict__})
        if overrides and cell.id in overrides:
            v.status = overrides[cell.id]
        rec = CellRecord(run.id, cell, "t", v, inputs={"kernel_id": "abc"},
                         manifest={"version": "6.1.1"} if cell.kernel == "k1" else {},
                         durations={"task_s": 1.0, "role_s": 7.5},
                         logs={"serial": "/tmp/serial.log"}, boot=FAKE_BOOTS.get(cell.id),
                         finished=time.time())
        run.record(rec)
        index.add_cell(run.id, rec)
    run.update(state="complete", finished=time.time())
    index.add_run(run)
    index.close()
    time.sleep(0.01)
    return run


class FakeStages:
    """The matrix's real tasks with only the work faked, for runs in this process
    (runner.run on the embedded Dask cluster, a worker thread here): source and
    build tasks stand in (a kernel's id is its source, base and fragments, as a
    real build's is its content), the analyzer's scan and the boot harness are
    stand-ins, while the task code around them (outcome cache, records, resume,
    retries) is the real one. BOOT: the next boots' (status, reason); CALLS
    counts the work done per stage."""

    def __init__(self, tmp: Path):
        from collections import Counter
        self.tmp, self.calls, self.boot = tmp, Counter(), ("pass", "reached userspace")
        self.ruled_out: set[str] = set()      # capabilities the analyzer says no to

    def install(self, monkeypatch) -> None:
        import pvmatrix.boot as boot
        from pvmatrix.matrix import tasks
        monkeypatch.setitem(tasks.FUNCS, "source", self.source)
        monkeypatch.setitem(tasks.FUNCS, "build", self.build)
        monkeypatch.setattr(tasks, "run_analysis", self.analysis)
        monkeypatch.setattr(tasks, "_boot_kernel", lambda facts: facts.boot_kernel)
        monkeypatch.setattr(tasks, "_boot_env", lambda: {"qemu": "QEMU emulator version 7.2.15"})
        monkeypatch.setattr(boot, "run_cells", self.run_cells)

    def source(self, task: dict):
        from pvmatrix.matrix import outcomes
        from pvmatrix.sources.facts import SourceFacts
        self.calls["source"] += 1
        spec = task["args"]["source"]
        out = outcomes.new(task, SourceFacts(spec, "sha256:" + outcomes.digest(spec), "6.1.0",
                                             spec.removeprefix("dir:")), {"source": spec})
        return outcomes.all_cells(out, task, Verdict("pass", "Linux 6.1.0", "dir source"))

    def build(self, task: dict, source):
        from pvmatrix.build.facts import BuildFacts
        from pvmatrix.matrix import outcomes
        self.calls["build"] += 1
        a = task["args"]
        key = outcomes.digest(source.facts.identity, a["base"], a["fragments"])
        facts = BuildFacts(key=key, dir=str(self.tmp / key[:12]), source=source.facts.source,
                           identity=source.facts.identity, version="6.1.0", toolchain="tc",
                           image="img", base=a["base"], fragments=a["fragments"],
                           config_sha256="c" * 64)
        out = outcomes.new(task, facts, {"identity": source.facts.identity, "artifact_key": key})
        return outcomes.all_cells(out, task, Verdict("pass", "Linux 6.1.0", "built"))

    def analysis(self, path: str, hardware):
        from pvmatrix.analyze import Analysis
        from pvmatrix.analyze.coverage import DeviceCoverage
        from pvmatrix.analyze.verdicts import Capability
        self.calls["analyze"] += 1
        caps = [Capability(name, name, name not in self.ruled_out, "built-in",
                           [f"{name}: {'no' if name in self.ruled_out else 'yes'}"])
                for name in ("pv_domu", "pvh_domu", "pv_dom0")]
        return Analysis(files=None, release="6.1.0", capabilities=caps,
                        devices=[DeviceCoverage(d, "built-in", d.qemu) for d in hardware.devices])

    def run_cells(self, kernel, wanted, xen=None, device_names=None, guest=None, profile=None,
                  deadline_s=None):
        from pvmatrix.boot.harness import Boot, Cell as HarnessCell
        self.calls["boot"] += 1
        b = Boot("xen" if xen else "baremetal", self.tmp, "tcg", wall_s=3.0)
        status, reason = self.boot
        return [HarnessCell(r, "linux-6.1.0", xen, [], Verdict(status, reason, "judge"), 2.0, b)
                for r in wanted]


def row_spec(tmp: Path, kernel: str, name: str = "rows") -> Path:
    """A spec NAME of one kernel row KERNEL built from TMP, booted bare-metal."""
    path = tmp / f"{name}.toml"
    tree = tmp / "linux"          # what a spec's dir: source must be (checked at load)
    tree.mkdir(exist_ok=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    path.write_text(f'[matrix]\nname = "{name}"\nroles = ["baremetal"]\nhardware = ["default"]\n\n'
                    f'[[kernel]]\nname = "{kernel}"\nsource = "dir:{tree}"\n')
    return path
