"""`pvmatrix boot debian:PACKAGE@SUITE` in a distribution's CI, without booting:
the arguments, the plain lines and the one-line summary per role, the JUnit
file and the exit code, on real recorded outcomes (tests/fixtures/boot-ci/:
the cells.json of real boots from the cache: Debian's 6.12 (bookworm-backports)
bare metal, and as dom0 and PV/PVH guest under Xen 4.14, whose guests fail;
a dom0 that failed under 4.17, its guests blocked)."""

from __future__ import annotations

import argparse
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import FIXTURES
from pvmatrix import cli
from pvmatrix.boot import ci
from pvmatrix.boot import cli as boot_cli
from pvmatrix.errors import QemuDidNotStart

RECORDED = FIXTURES / "boot-ci"
KERNEL = "debian:linux-image-amd64@bookworm-backports"


def recorded(name: str) -> list[ci.RoleResult]:
    return [ci.RoleResult.from_dict(d)
            for d in json.loads((RECORDED / f"{name}.cells.json").read_text())]


def args(*argv: str) -> argparse.Namespace:
    return cli.parser().parse_args(["boot", KERNEL, *argv])


def test_the_ci_flags_parse():
    a = args("--strict", "--junit", "out/boot.xml", "--role", "dom0", "--xen", "4.14")
    assert a.strict and str(a.junit) == "out/boot.xml" and a.role == ["dom0"] and a.xen == "4.14"
    assert not args().strict and args().junit is None


def test_a_junit_path_that_is_a_folder_is_bad_input_before_any_boot(tmp_path, capsys):
    assert cli.main(["boot", KERNEL, "--junit", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pvmatrix: error: --junit {tmp_path}: is a directory, expected a file name"]


def test_roles_a_release_cannot_run_are_not_run_without_a_boot():
    to_boot, cannot = ci.split(["baremetal", "dom0", "domU-pv", "domU-hvm", "dom0-pvh"], "4.17")
    assert to_boot == ["baremetal", "dom0", "domU-pv"] and cannot == ["domU-hvm", "dom0-pvh"]
    hvm = ci.not_run(["domU-hvm"], "4.17", "k")[0]
    assert hvm.verdict.status == "not run" and hvm.verdict.reason.startswith("Xen 4.17: ")


def test_one_summary_line_per_role_on_real_outcomes():
    results = recorded("baremetal-pass") + recorded("xen-4.14-domU-fail")
    lines = ci.summary(results, strict=False)
    assert [ln.split(":")[0] for ln in lines[:-1]] == [
        "baremetal", "dom0 xen-4.14", "domU-pv xen-4.14", "domU-pvh xen-4.14"]
    assert re.fullmatch(r"baremetal: pass: every expected marker seen \[\d+\.\d s\]", lines[0])
    assert lines[2].startswith("domU-pv xen-4.14: fail (failed): xl create: ")
    assert "xc_dom_probe_bzimage_kernel: unknown compression format" in lines[2]
    assert lines[-1] == "pvmatrix boot: 4 role(s): 2 pass, 2 fail; exit 1 (fail)"
    assert all("\n" not in ln for ln in lines)


@pytest.mark.parametrize("names,strict,code", [
    (["baremetal-pass"], True, 0),
    (["baremetal-pass", "xen-4.14-domU-fail"], False, 1),
    (["xen-4.17-dom0-fail"], True, 1),            # dom0 fails, its guests blocked: the kernel's fault
])
def test_exit_code_of_real_outcomes(names, strict, code):
    assert ci.exit_code([r for n in names for r in recorded(n)], strict) == code


@pytest.mark.parametrize("strict,code", [(False, 0), (True, 4)])
def test_a_role_not_run_fails_the_job_only_when_strict(strict, code):
    results = recorded("baremetal-pass") + ci.not_run(["domU-hvm"], "4.17", "k")
    assert ci.exit_code(results, strict) == code


def test_the_report_is_plain_lines_then_the_summary_and_junit(tmp_path):
    results = recorded("baremetal-pass") + recorded("xen-4.14-domU-fail")
    out = io.StringIO()                      # not a terminal
    junit = tmp_path / "ci" / "boot.xml"
    code = boot_cli.report(results, args("--junit", str(junit)), out)
    text = out.getvalue()
    assert code == 1
    assert "serial log: " in text and "\x1b[" not in text and "+--" not in text
    assert text.splitlines()[-1] == "pvmatrix boot: 4 role(s): 2 pass, 2 fail; exit 1 (fail)"
    root = ET.parse(junit).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == [f"{KERNEL}/baremetal", f"{KERNEL}/dom0/xen-4.14",
                           f"{KERNEL}/domU-pv/xen-4.14", f"{KERNEL}/domU-pvh/xen-4.14"]
    failure = cases[f"{KERNEL}/domU-pv/xen-4.14"].find("failure")
    assert "unknown compression format" in failure.get("message") and "L2" not in failure.text
    assert root.get("tests") == "4" and root.get("failures") == "2"


def test_a_boot_stopped_by_the_harness_makes_its_roles_broken(monkeypatch):
    """Each boot's roles get its own error's status; the other boots still run."""
    import pvmatrix.boot.harness as harness
    tried = []

    def cannot_start(kernel, group, *rest, **kw):
        tried.append(group)
        raise QemuDidNotStart("QEMU could not start (exit 1): no memory")
    monkeypatch.setattr(harness, "run_cells", cannot_start)
    a = args("--role", "dom0-pvh", "--role", "baremetal", "--role", "dom0", "--xen", "4.17")
    results, cells = boot_cli.boot_roles(a, type("K", (), {"label": "k"})(), None, "4.17", None, None)
    assert tried == [["baremetal"], ["dom0"]] and cells == []
    assert [(r.role, r.verdict.status) for r in results] == [
        ("dom0-pvh", "not run"), ("baremetal", "broken"), ("dom0", "broken")]
    assert ci.summary_line(results[1]) == ("baremetal: broken (QemuDidNotStart): QEMU could not "
                                           "start (exit 1): no memory")
    assert ci.exit_code(results, strict=False) == 0 and ci.exit_code(results, strict=True) == 3
