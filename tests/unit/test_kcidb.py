"""`pvmatrix export --kcidb`: a recorded run as KCIDB I/O JSON, validated
against the schema kcidb-io ships, with pvmatrix statuses mapped to KCIDB's."""

import json
import re
import shutil

import pytest
from kcidb_io.schema import LATEST

from conftest import pvmatrix
from matrix_helpers import fake_run, small_spec
from pvmatrix.errors import UserError
from pvmatrix.report.kcidb import STATUS, to_kcidb

# the helper's run, with one cell recorded as blocked (fake_run's overrides)
BLOCKED = "k1/hw/default/e1000e"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kcidb")
    spec = small_spec(tmp, "kcidb")
    return tmp / "results", fake_run(tmp / "results", spec, {BLOCKED: "blocked"})


@pytest.fixture(scope="module")
def exported(recorded):
    data = to_kcidb(recorded[1])
    LATEST.validate(data)                  # raises jsonschema's ValidationError
    return data


def by_cell(data, kind):
    return {o["id"].split("/", 1)[1]: o for o in data[kind]}


def test_valid_current_schema(exported):
    assert exported["version"]["major"] == LATEST.major, "kcidb-io has a new major schema"
    assert LATEST.get_exactly_compatible(exported) is not None
    assert all(o["origin"] == "pvmatrix" and o["id"].startswith("pvmatrix:")
               for kind in ("checkouts", "builds", "tests") for o in exported[kind])


def test_statuses(recorded, exported):
    tests = by_cell(exported, "tests")
    records = {r["cell"]["id"]: r["verdict"]["status"] for r in recorded[1].records()}
    # every analyze and boot cell is a test, with its status mapped
    assert set(tests) == {c for c in records if not c.endswith(("/build", "/source"))}
    for cell, test in tests.items():
        assert test["status"] == STATUS[records[cell]], cell
        assert test["misc"]["pvmatrix_status"] == records[cell]
    expected = {"k1/analyze/default": "PASS", "k1/dom0/xen-4.17/default": "FAIL",
                "k2/hw/default/e1000e": "FAIL", "k2/domU-pv/xen-4.17/default": "ERROR",
                BLOCKED: "MISS", "k2/dom0/xen-4.17/default": "SKIP",
                "k2/domU-pvh/xen-4.17/default": "MISS"}
    assert {c: tests[c]["status"] for c in expected} == expected
    assert records[BLOCKED] == "blocked" and records["k2/domU-pvh/xen-4.17/default"] == "not run"


def test_paths_evidence_and_logs(exported):
    tests = by_cell(exported, "tests")
    assert {c: t["path"] for c, t in tests.items()} == {
        "k1/analyze/default": "xen.static", BLOCKED: "hw.e1000e",
        "k1/dom0/xen-4.17/default": "xen.dom0", "k2/hw/default/e1000e": "hw.e1000e",
        "k2/dom0/xen-4.17/default": "xen.dom0", "k2/domU-pv/xen-4.17/default": "xen.domU-pv",
        "k2/domU-pvh/xen-4.17/default": "xen.domU-pvh"}
    panic = tests["k1/dom0/xen-4.17/default"]
    assert panic["log_excerpt"] == "Kernel panic - not syncing: VFS: Unable to mount root"
    # its log is a file only the host had (outside the cache and the run): left out
    assert panic["misc"]["logs"] == {} and panic["misc"]["evidence_at"] == []
    assert panic["environment"]["misc"]["xen"] == "4.17" and panic["duration"] == 7.5
    assert "log_excerpt" not in tests["k2/domU-pv/xen-4.17/default"]     # no evidence recorded


def test_builds_and_checkouts(exported):
    builds = by_cell(exported, "builds")
    assert set(builds) == {"k1/build", "k2/build"}
    assert builds["k1/build"]["status"] == "PASS" and builds["k1/build"]["misc"]["prebuilt"] is False
    assert builds["k2/build"]["status"] == "PASS" and builds["k2/build"]["misc"]["prebuilt"] is True
    checkouts = {c["id"] for c in exported["checkouts"]}
    assert {b["checkout_id"] for b in exported["builds"]} == checkouts
    assert {t["build_id"] for t in exported["tests"]} == {b["id"] for b in exported["builds"]}


def test_cli_writes_file_deterministically(recorded, exported, tmp_path):
    results, run = recorded
    out = tmp_path / "out" / "kcidb.json"
    done = pvmatrix("export", "--kcidb", run.id, "-o", str(out), "--results", str(results))
    assert done.returncode == 0, done.stderr
    assert f"run {run.id} -> {out}" in done.stderr and done.stdout == ""
    data = json.loads(out.read_text())
    LATEST.validate(data)
    assert data == exported                     # same ids and content on every export
    latest = pvmatrix("export", "--kcidb", "latest", "--results", str(results))
    assert latest.returncode == 0 and json.loads(latest.stdout) == exported


@pytest.mark.parametrize("name", ["no-such-run", "latest"])
def test_cli_bad_run(tmp_path, name):
    done = pvmatrix("export", "--kcidb", name, "--results", str(tmp_path / "empty"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and done.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("pvmatrix: error: "), done.stderr


def _latest_published(spec_name: str):
    """The latest complete run of SPEC_NAME published under results/ (real records)."""
    from conftest import REPO
    from pvmatrix.results import store
    runs = [r for r in store.all_runs(REPO / "results")
            if r.meta.get("spec_name") == spec_name and r.meta.get("state") == "complete"]
    if not runs:
        pytest.skip(f"no published run of {spec_name} under results/")
    return runs[-1]


def test_each_xen_test_names_its_release_package_and_dom0_mode():
    """On the published run of every Xen release (real records): each Xen test's
    environment says which release and hypervisor package ran, and the dom0 mode."""
    run = _latest_published("debian-suites")
    data = to_kcidb(run)
    LATEST.validate(data)
    records = {r["cell"]["id"]: r for r in run.records()}
    xen_tests = [t for t in data["tests"] if t["path"].startswith("xen.") and t["path"] != "xen.static"]
    assert {t["environment"]["misc"]["xen_release"] for t in xen_tests} == {"4.14", "4.17", "4.20"}
    for t in xen_tests:
        rec = records[t["misc"]["cell"]]
        env = t["environment"]["misc"]
        assert env["xen_release"] == rec["cell"]["xen"] == t["misc"]["xen_release"]
        assert env["dom0_mode"] == t["misc"]["dom0_mode"] == "PV"
        assert env["xen_package"].startswith(f"xen-hypervisor-{rec['cell']['xen']}-amd64_")
        assert t["environment"]["comment"].startswith(f"Xen {rec['cell']['xen']} in QEMU, PV dom0")
    others = [t for t in data["tests"] if t not in xen_tests]
    assert others and not any("dom0_mode" in t["environment"]["misc"] for t in others)


@pytest.mark.parametrize("role,mode", [("dom0", "PV"), ("domU-pvh", "PV"), ("domU-hvm", "PV"),
                                       ("dom0-pvh", "PVH")])
def test_dom0_mode_of_each_xen_role(role, mode):
    from pvmatrix.report.kcidb import xen_of
    cell = {"id": f"k/{role}/xen-4.20/default", "stage": "boot", "xen": "4.20", "role": role}
    assert xen_of({"cell": cell}) == {"xen_release": "4.20", "dom0_mode": mode}
    assert xen_of({"cell": {**cell, "xen": None, "role": "baremetal"}}) == {}


# a host path: under a host's own folders anywhere in a string, or a whole
# value that is an absolute path
HOST = re.compile(r"/(root|home|tmp|work)/")


def _strings(data, where=""):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v, f"{where}[]")
    elif isinstance(data, str):
        yield where, data


def _published_runs():
    from conftest import REPO
    from pvmatrix.results import store
    return store.all_runs(REPO / "results")


@pytest.mark.parametrize("run", _published_runs(), ids=lambda r: r.id)
def test_published_runs_export_no_host_path(run):
    """Every run published under results/ (real records): its export validates
    and names no host path; its logs are the run's copies, logs/DIGEST.log.gz."""
    data = to_kcidb(run)
    LATEST.validate(data)
    bad = [(w, s) for w, s in _strings(data)
           if HOST.search(s) or (s.startswith("/") and not re.search(r"\s", s))]
    assert not bad, bad[:5]
    records = {r["cell"]["id"]: r for r in run.records()}
    logs = 0
    for kind in ("builds", "tests"):
        for o in data[kind]:
            cell = o["misc"].get("cell")
            for name, path in (o["misc"].get("logs") or {}).items():
                assert re.fullmatch(r"logs/[0-9a-f]{16}\.log\.gz", path), (cell, path)
                # a device cell also names the logs of the boots that checked it
                own, other = re.fullmatch(r"(\S+)(?: \((.+)\))?", name).groups()
                assert (run.dir / path).is_file() and records[other or cell]["logs"][own] == path
                logs += 1
            for at in o["misc"].get("evidence_at") or []:
                assert at.startswith("logs/"), (cell, at)
    assert logs                                 # the published runs have logs: they were checked


def test_an_unpublished_run_names_the_cache_portably(recorded, private_cache, tmp_path):
    """A run not yet published names its logs where the boot wrote them, in the
    cache: exported as $PVMATRIX_CACHE/..., like a published run's cache paths."""
    results, run = recorded
    copy = tmp_path / "results" / run.id
    shutil.copytree(run.dir, copy)
    cell = copy / "cells" / "k1_dom0_xen-4.17_default.json"
    rec = json.loads(cell.read_text())
    serial = f"{private_cache}/boot/runs/abc/serial.log"
    rec["logs"] = {"serial": serial}
    rec["verdict"]["evidence"][0]["log"] = serial
    rec["inputs"]["deb"] = f"{private_cache}/apt/bookworm/debs/linux.deb"
    rec["inputs"]["boot_dir"] = f"{private_cache}/boot/runs/abc"       # host only: dropped
    cell.write_text(json.dumps(rec))
    from pvmatrix.results.store import Run
    data = to_kcidb(Run(copy))
    LATEST.validate(data)
    panic = by_cell(data, "tests")["k1/dom0/xen-4.17/default"]["misc"]
    assert panic["logs"] == {"serial": "$PVMATRIX_CACHE/boot/runs/abc/serial.log"}
    assert panic["evidence_at"] == ["$PVMATRIX_CACHE/boot/runs/abc/serial.log:812"]
    assert panic["inputs"]["deb"] == "$PVMATRIX_CACHE/apt/bookworm/debs/linux.deb"
    assert "boot_dir" not in panic["inputs"]
    assert str(private_cache) not in json.dumps(data) and str(tmp_path) not in json.dumps(data)


def test_an_export_that_would_name_a_host_path_is_refused(recorded, tmp_path):
    results, run = recorded
    copy = tmp_path / "results" / run.id
    shutil.copytree(run.dir, copy)
    cell = copy / "cells" / "k2_domU-pv_xen-4.17_default.json"
    rec = json.loads(cell.read_text())
    rec["verdict"]["reason"] = "QEMU could not start: /home/someone/disk.img: no such file"
    cell.write_text(json.dumps(rec))
    from pvmatrix.results.store import Run
    with pytest.raises(UserError, match="would name host path '/home/someone/disk.img:'"):
        to_kcidb(Run(copy))
