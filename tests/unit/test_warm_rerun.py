"""A warm rerun boots nothing it booted before (issue 17, warm_one_changed_s).

Every Xen release of data/xen.toml has a role it cannot run here (`not run`,
decided without a boot), and the reference spec asks every role: a Xen boot's
outcome held such a cell, and an outcome with a `not run` cell is never cached,
so every Xen boot was redone on every rerun (seen for real: run
20261128-054128-e187's 63 Xen boot tasks and 3 hosted boots all missed the
cache on a rerun of the same spec with the same code). The cache keeps the
booted cells (what the key's roles stand for); the rest are decided again."""

from pvmatrix import catalog
from pvmatrix.matrix import tasks

from .test_hosted_boots import ROWS, group_deps, group_task, hosted, own  # noqa: F401 (fixture)
from .test_matrix_tasks import caps, harness, outcome, xen_task  # noqa: F401 (fixture)

NOT_HERE = "domU-hvm"        # data/xen.toml: 4.17 cannot run it here (a `not run` cell)
ROLES = ("dom0", "domU-pv", NOT_HERE)


def test_the_release_cannot_run_a_role_of_these_tests():
    assert catalog.not_run(catalog.all("xen")["4.17"], NOT_HERE)


def test_a_xen_boot_with_a_role_the_release_cannot_run_is_cached(harness):
    h = harness()
    args = dict(kernel=outcome("k"), analysis=outcome("k", capabilities=caps()))
    first = tasks.execute(xen_task(roles=ROLES), **args)
    again = tasks.execute(xen_task(roles=ROLES), **args)
    assert h.calls == [("/k/k", ["dom0", "domU-pv"], None)]      # booted once
    assert again.cached
    assert {c: str(v.verdict.status) for c, v in again.cells.items()} == {
        "k/dom0": "pass", "k/domU-pv": "pass", f"k/{NOT_HERE}": "not run"}
    assert again.cells[f"k/{NOT_HERE}"].verdict == first.cells[f"k/{NOT_HERE}"].verdict


def _with_not_run(task: dict) -> dict:
    for g in task["args"]["guests"]:
        g["cells"] = xen_task(g["kernel"], roles=ROLES)["cells"]
    task["args"]["roles"] = list(ROLES)
    return task


def test_a_changed_kernel_reboots_only_its_own_guests_under_a_release_with_a_not_run_role(hosted):
    """The bench's rerun: the hosted boot of every cloud kernel's guests again,
    one kernel changed: only that kernel's guests boot; the others' cells,
    `not run` one included, come from the cache under their own tasks."""
    h = hosted()
    first = tasks.execute(_with_not_run(group_task()), **group_deps())
    assert h.calls == [("/k/generic", [("/k/cloud-a", ["domU-pv"]), ("/k/cloud-b", ["domU-pv"])])]
    again = tasks.execute(_with_not_run(group_task()), **group_deps())
    assert len(h.calls) == 1 and again.cells == {}                  # nothing booted
    tasks.execute(_with_not_run(group_task()), **group_deps({"cloud-b": "new-b"}))
    assert h.calls[-1] == ("/k/generic", [("/k/cloud-b", ["domU-pv"])])
    task = xen_task("cloud-a", roles=ROLES)
    a = tasks.execute(task, kernel=outcome("cloud-a"),
                      analysis=outcome("cloud-a", capabilities=caps(dom0=False)),
                      host=outcome("generic"),
                      host_analysis=outcome("generic", capabilities=caps()), hosted=None)
    assert a.cached and h.single == []                              # its own cache hit
    assert {c: str(v.verdict.status) for c, v in a.cells.items()} == {
        "cloud-a/dom0": "fail", "cloud-a/domU-pv": "pass", f"cloud-a/{NOT_HERE}": "not run"}
    assert a.cells["cloud-a/domU-pv"].verdict == first.cells["cloud-a/domU-pv"].verdict
