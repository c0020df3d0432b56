"""Faults that must never become the kernel's verdict (issue 18): QEMU killed
from outside, an interrupted boot, a truncated kernel image; and what is
never cached."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO
from pvmatrix.analyze import analyze
from pvmatrix.analyze.notes import read_xen_notes
from pvmatrix.boot import harness, qemu
from pvmatrix.boot import kernel as boot_kernel
from pvmatrix.errors import Interrupted, QemuKilled, TruncatedFile, status_of
from pvmatrix.matrix import outcomes
from pvmatrix.records import Verdict

HEAD = FIXTURES / "serial" / "baremetal-ok-head.log"
ARTIFACTS = Path("/root/.cache/pvmatrix/artifacts")


def _writer(serial, script: str) -> list[str]:
    return ["sh", "-c", script.replace("SERIAL", str(serial))]


def _run(tmp_path, script: str, deadline: float = 30.0) -> qemu.Run:
    serial = tmp_path / "serial.log"
    return qemu.run(_writer(serial, script), serial, deadline, stop=lambda ln: False,
                    crash=harness._host_crash)


def test_qemu_killed_from_outside_is_broken_naming_the_signal(tmp_path):
    """A real boot's first lines, then QEMU dies of SIGKILL (kill -9, the OOM killer)."""
    run = _run(tmp_path, f"cat {HEAD} >>SERIAL; sleep 0.3; kill -9 $$")
    assert run.exit_code == -9 and run.signal == "SIGKILL" and not run.interrupted
    with pytest.raises(QemuKilled, match="killed by SIGKILL") as err:
        harness._ended_by_kernel(run, "the bare-metal boot of k", tmp_path / "serial.log")
    assert status_of(err.value) == "broken"


def test_qemu_error_exit_mid_boot_is_broken(tmp_path):
    run = _run(tmp_path, f"cat {HEAD} >>SERIAL; echo 'qemu: fatal: oops' >&2; exit 1")
    with pytest.raises(QemuKilled, match="exited with status 1.*qemu: fatal"):
        harness._ended_by_kernel(run, "boot", tmp_path / "serial.log")


def test_the_kernel_powering_off_or_panicking_is_a_normal_exit(tmp_path):
    """-no-reboot: a poweroff or a panic's reboot ends QEMU with status 0."""
    run = _run(tmp_path, f"cat {FIXTURES / 'serial' / 'baremetal-vfs-panic-tail.log'} >>SERIAL")
    assert run.exit_code == 0
    harness._ended_by_kernel(run, "boot", tmp_path / "serial.log")     # nothing raised


def test_a_boot_stopped_by_kill_all_is_interrupted_not_the_kernels(tmp_path):
    """Ctrl-C / SIGTERM / SIGHUP: tasks.abort() kills every QEMU; the boot is not run."""
    got: list[qemu.Run] = []
    t = threading.Thread(target=lambda: got.append(_run(tmp_path, f"cat {HEAD} >>SERIAL; sleep 600")))
    t.start()
    time.sleep(1.0)
    qemu.kill_all()
    t.join(10)
    assert got and got[0].interrupted
    with pytest.raises(Interrupted) as err:
        harness._ended_by_kernel(got[0], "boot", tmp_path / "serial.log")
    assert status_of(err.value) == "not run"


@pytest.mark.parametrize("status", ["broken", "not run", "blocked"])
def test_only_lasting_verdicts_are_cached(private_cache, status):
    task = {"key": "t", "stage": "boot", "kernel": "k", "cells": [{"id": "k/baremetal"}]}
    out = outcomes.all_cells(outcomes.new(task), task, Verdict(status, "why"))
    outcomes.save("key-" + status.replace(" ", "-"), out)
    assert outcomes.load("key-" + status.replace(" ", "-"), task) is None


def test_sighup_stops_the_cli_like_ctrl_c():
    code = ("import sys, time, pvmatrix.cli as c\n"
            "c.cmd_list = lambda a: (print('ready', flush=True), time.sleep(30))\n"
            "sys.exit(c.main(['list', 'roles']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "interrupted" in err


def _real(name: str) -> Path:
    found = sorted(ARTIFACTS.glob(f"*/{name}"), key=lambda p: p.stat().st_size)
    if not found:
        pytest.skip(f"no real {name} in {ARTIFACTS}")
    return found[0]


def test_a_truncated_bzimage_is_an_input_error_before_any_boot(tmp_path):
    kdir = tmp_path / "k"
    kdir.mkdir()
    shutil.copy(_real("bzImage"), kdir / "bzImage")
    assert boot_kernel.from_dir(kdir).image == kdir / "bzImage"         # whole: fine
    with open(kdir / "bzImage", "r+b") as fh:
        fh.truncate((kdir / "bzImage").stat().st_size // 2)
    with pytest.raises(TruncatedFile, match="truncated bzImage"):
        boot_kernel.from_dir(kdir)


def test_a_truncated_vmlinux_is_an_error_not_a_static_no(tmp_path):
    vmlinux = tmp_path / "vmlinux"
    shutil.copy(_real("vmlinux"), vmlinux)
    assert read_xen_notes(vmlinux.read_bytes()).has("ENTRY")
    for size in (vmlinux.stat().st_size - 4096, 3_000_000):
        with open(vmlinux, "r+b") as fh:
            fh.truncate(size)
        with pytest.raises(TruncatedFile, match="truncated ELF"):
            analyze(vmlinux)
