"""Golden files: what pvmatrix renders, compared with tests/golden/refs/ without
booting or building anything. An intended change is one `pytest --regen-golden`
and one reviewable diff of the refs. Paths of this machine are written as
placeholders (@BOOT@ for the boot dir, @CACHE@ for the cache)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from pvmatrix import __version__, catalog
from pvmatrix.boot import devices as devmod, harness, qemu, reproduce, roles
from pvmatrix.matrix import spec
from pvmatrix.matrix.plan import make_plan

CACHE = Path("/nonexistent/cache")         # never read: only printed
TCG = qemu.Accel("tcg", "golden")          # the accelerator of the CI machine


def _plan_data(plan) -> list[dict]:
    return [{"key": t.key, "stage": t.stage, "kernel": t.kernel, "func": t.func,
             "args": t.args, "deps": t.deps, "resources": t.resources,
             "cells": [c.to_dict() for c in t.cells]} for t in plan.tasks]


def _lines(argv: list[str]) -> str:
    """One option and its value per line, shell-quoted."""
    out: list[list[str]] = []
    for arg in argv:
        if out and not arg.startswith("-") and len(out[-1]) == 1 and out[-1][0].startswith("-"):
            out[-1].append(arg)
        else:
            out.append([arg])
    return "".join(shlex.join(words) + "\n" for words in out)


def _placeholders(text: str, boot: Path) -> str:
    return text.replace(str(boot), "@BOOT@").replace(str(CACHE), "@CACHE@")


def _default_xen() -> str:
    return spec.load(None).xen[0]


def _baremetal(boot: Path) -> list[str]:
    return harness.baremetal_command(qemu.QEMU, TCG, roles.host(xen=False),
                                     CACHE / "kernel" / "bzImage", boot / "initrd.gz",
                                     boot / "serial.log",
                                     devmod.qemu_args(devmod.plan(), boot, "0123abcd"))


def _dom0(boot: Path) -> list[str]:
    xen = _default_xen()
    return harness.xen_command(qemu.QEMU, TCG, roles.host(xen=True), CACHE / f"xen-{xen}" / "xen",
                               catalog.get("xen", xen).cmdline, boot / "dom0-kernel",
                               boot / "initrd.cpio", boot / "serial.log",
                               devmod.qemu_args(devmod.plan(), boot, "0123abcd"))


def test_plan_of_the_default_spec(golden):
    plan = make_plan(spec.load(None))
    golden("plan-default.json", json.dumps(_plan_data(plan), indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("name, render", [("baremetal", _baremetal), ("dom0", _dom0)])
def test_qemu_command_line(golden, tmp_path, name, render):
    golden(f"qemu-{name}.args", _placeholders(_lines(render(tmp_path)), tmp_path))


def test_reproducer_of_a_dom0_boot(golden, tmp_path):
    dom0 = roles.host(xen=True)
    initrd = tmp_path / "initrd.cpio"
    script = reproduce.write(tmp_path / "qemu.sh", "Xen boot with a kernel as dom0",
                             _dom0(tmp_path), tmp_path / "serial.log", dom0.deadline_s,
                             [("host", p) for p in dom0.expect],
                             {initrd: [CACHE / "dom0-userspace.cpio", tmp_path / "overlay.cpio"]})
    text = script.read_text().replace(f"pvmatrix {__version__}", "pvmatrix @VERSION@")
    golden("reproduce-dom0.sh", _placeholders(text, tmp_path))
