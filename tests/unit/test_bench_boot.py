"""bench/boot.py's pure part: from the cells of each Xen release's boots to
bench/results/boot.json (per release: wall, each role's seconds, goal met),
with roles and releases from the catalog. Nothing is booted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from conftest import REPO
from pvmatrix import catalog
from pvmatrix.boot.harness import Boot, Cell
from pvmatrix.records import Status, Verdict

# a real round under Xen 4.17 on TCG, 2 cores (bench/results/boot.json of
# 2026-11-22): the boot's wall and each role's own seconds
REAL_WALLS = [45.32, 37.18, 38.18]
REAL_ROLES_S = {"dom0": 11.43, "domU-pv": 8.56, "domU-pvh": 16.44}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_boot", REPO / "bench" / "boot.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module            # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def one_boot(wall: float, release: str, status: Status = Status.PASS) -> list[Cell]:
    boot = Boot("xen", Path(f"/runs/{release}-{wall}"), "tcg", wall_s=wall, peak_rss_mb=1436.8)
    return [Cell(role, "6.1.176-5cff2745", release, [], Verdict(status, "why"), seconds, boot)
            for role, seconds in REAL_ROLES_S.items()]


def test_roles_come_from_the_catalog(bench):
    # timed apart: another device model, another boot; a guest booted on its own
    modes = {"domU-hvm", "dom0-pvh", "domU-pv-passthrough"}
    assert bench.xen_roles() == [r for r in catalog.names("role") if r not in modes
                                 and catalog.get("role", r).xen and not catalog.get("role", r).lifecycle]
    assert set(bench.xen_roles()) == set(REAL_ROLES_S)


def test_a_release_is_its_median_good_round_against_the_goal(bench):
    r = bench.release([one_boot(w, "4.17") for w in REAL_WALLS])
    assert r.wall_s == 38.18 and r.goal_met and r.all_runs_s == REAL_WALLS
    assert r.roles_s == REAL_ROLES_S and r.failed_rounds == []
    slow = bench.release([one_boot(61.0, "4.17")])
    assert slow.wall_s == 61.0 and not slow.goal_met


def test_a_failed_round_is_reported_not_timed(bench):
    r = bench.release([one_boot(30.0, "4.14", Status.BROKEN), one_boot(40.0, "4.14")])
    assert r.wall_s == 40.0 and r.all_runs_s == [30.0, 40.0]
    assert len(r.failed_rounds) == 1 and len(r.failed_rounds[0]["cells"]) == len(REAL_ROLES_S)
    none = bench.release([one_boot(30.0, "4.14", Status.FAIL)])
    assert none.wall_s is None and not none.goal_met


def test_the_json_has_every_release_with_its_goal_and_the_host(bench):
    releases = {name: bench.release([one_boot(REAL_WALLS[1] + i * 30, name)])
                for i, name in enumerate(catalog.names("xen"))}
    out = json.loads(json.dumps(bench.result("6.1.176-5cff2745", releases, None,
                                              {"accel": "tcg", "cpus": 2})))
    assert list(out["releases"]) == catalog.names("xen")
    first, *_, last = out["releases"].values()
    assert first["goal_met"] and first["roles_s"] == REAL_ROLES_S
    assert not last["goal_met"] and out["goal"]["met"] is False
    assert out["goal"]["xen_boot_s"] == 60 and out["roles"] == bench.xen_roles()
    assert out["host"] == {"accel": "tcg", "cpus": 2} and out["baremetal"] is None


def test_lifecycle_is_what_a_save_or_migration_adds_to_its_plain_guest(bench):
    """Role seconds of the first real lifecycle boot (pv 8.6, pv_save 13.6, pvh_mig 27.5 ...)."""
    from pvmatrix.boot.harness import Cell
    from pvmatrix.records import Verdict
    secs = {"domU-pv": 8.6, "domU-pvh": 16.4, "domU-pv-save": 13.6, "domU-pvh-save": 24.8,
            "domU-pv-migrate": 17.0, "domU-pvh-migrate": 34.0}
    cells = [Cell(r, "k", "4.17", [], Verdict("pass", "ok", "ok"), s, None) for r, s in secs.items()]
    got = bench.lifecycle(cells)
    assert set(got) == set(bench.lifecycle_roles())
    assert got["domU-pv-save"]["added_s"] == 5.0 and got["domU-pv-save"]["goal_met"]
    assert got["domU-pvh-migrate"]["added_s"] == 17.6 and not got["domU-pvh-migrate"]["goal_met"]


def _dom0(wall: float, ok: bool = True, devices: dict | None = None) -> Cell:
    return Cell("dom0", "k", "4.17", [], Verdict(Status.PASS if ok else Status.FAIL, "r"),
                wall / 2, Boot("xen", Path("/b"), "tcg", wall), devices or {})


def test_profiles_ratio_of_the_full_qemu_profile_to_the_default(bench):
    got = bench.profiles({"default": [_dom0(40.0), _dom0(44.0), _dom0(90.0, ok=False)],
                          "qemu": [_dom0(55.0, devices={"e1000": {"ok": True},
                                                        "megasas": {"ok": False}})]})
    assert got["boots"]["default"]["wall_s"] == 40.0          # the median good round
    assert got["boots"]["default"]["failed_rounds"][0].startswith("fail: r")
    assert got["boots"]["qemu"]["devices_failed"] == ["megasas"]
    assert got["ratio"] == 1.38 and got["met"] is True
    slow = bench.profiles({"default": [_dom0(40.0)], "qemu": [_dom0(80.0)]})
    assert slow["ratio"] == 2.0 and slow["met"] is False
    none = bench.profiles({"default": [_dom0(40.0)], "qemu": [_dom0(80.0, ok=False)]})
    assert none["ratio"] is None and none["met"] is False
