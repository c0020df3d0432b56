"""Trustworthy verdicts (issue 7) without a kernel: how retries are summed up
and how compare reads them; the harness's deadline and crash stop on a real
process writing a serial log (no QEMU)."""

from __future__ import annotations

import time

import pytest

from conftest import FIXTURES
from pvmatrix.boot import harness, qemu, roles, verdicts

# the serial log of the real panicking kernel (tests/real/test_verdicts_real.py builds it)
PANIC_LOG = FIXTURES / "boot" / "baremetal-panic.log"


def _att(*statuses):
    return [{"attempt": i, "status": st} for i, st in enumerate(statuses, 1)]


def test_retry_summaries():
    from pvmatrix.matrix.retry import summarize
    assert summarize(_att("fail", "fail", "fail"))["summary"] == "fail, reproduced 3/3"
    flaky = summarize(_att("fail", "pass"))
    assert flaky["outcome"] == "flaky" and flaky["summary"] == "fail once, passed on retry (flaky)"
    assert summarize(_att("fail", "fail", "pass"))["summary"] == "fail 2/3, passed on retry (flaky)"
    assert summarize(_att("fail", "broken", "broken"))["outcome"] == "unconfirmed"


def test_compare_counts_flaky_as_passing_before_and_not_reproduced_after():
    from pvmatrix.results.compare import Change
    assert Change("c", "pass", "fail", "", flaky_after=True).kind == "regression"
    assert not Change("c", "pass", "fail", "", flaky_after=True).reproduced
    assert Change("c", "fail", "fail", "", flaky_before=True).reproduced
    assert Change("c", "fail", "pass", "").kind == "fix"


def _writer(serial, script: str) -> list[str]:
    return ["sh", "-c", script.replace("SERIAL", str(serial))]


def test_chatty_hung_boot_still_times_out(tmp_path):
    """Output does not reset the deadline: a console that never stops talking times out."""
    serial = tmp_path / "serial.log"
    cmd = _writer(serial, "while :; do echo 'random: crng init busy, still waiting' >>SERIAL; "
                          "sleep 0.05; done")
    run = qemu.run(cmd, serial, 1.5, stop=lambda ln: False, crash=harness._host_crash)
    assert run.timed_out and 1.5 <= run.wall_s < 3.5, run
    assert len(run.lines) > 20 and not run.stopped_by


@pytest.mark.skipif(not PANIC_LOG.exists(), reason="fixture written by the real panic test")
def test_a_panic_in_the_log_ends_the_boot_at_once(tmp_path, short_grace):
    """The real serial log of the panicking kernel, then silence: the run stops a
    grace period after the panic line, far from its deadline, and says panic."""
    serial = tmp_path / "serial.log"
    cmd = _writer(serial, f"cat {PANIC_LOG} >>SERIAL; sleep 600")
    start = time.monotonic()
    run = qemu.run(cmd, serial, 60.0, stop=lambda ln: False, crash=harness._host_crash)
    assert not run.timed_out and time.monotonic() - start < qemu.GRACE_S + 3
    assert "Kernel panic - not syncing" in run.stopped_by
    v = verdicts.judge_host(roles.get("baremetal"), run.lines, verdicts.BootOutcome())
    assert v.detail == "panic" and "Kernel panic - not syncing" in v.reason


def test_xl_create_failure_is_told_by_its_error_line_not_an_info_line():
    """Xen 4.14 cannot load a zstd kernel: the reason is libxc's error, not the
    libxl info line before it (real log of Debian trixie's 6.12 under 4.14)."""
    from conftest import FIXTURES
    from pvmatrix.boot import roles
    from pvmatrix.boot.markers import parse_file
    from pvmatrix.boot.verdicts import BootOutcome, judge_guest, judge_host
    lines = parse_file(FIXTURES / "serial" / "xen414-zstd-guest.log")
    dom0 = judge_host(roles.get("dom0"), lines, BootOutcome(wall_s=20.0), ["pv", "pvh"])
    assert dom0.ok, dom0.reason
    v = judge_guest(roles.get("domU-pv"), lines, BootOutcome(wall_s=20.0), dom0, {"disk": "x"})
    assert (str(v.status), v.detail) == ("fail", "failed")
    assert v.reason == ("xl create: xc: error: panic: xc_dom_bzimageloader.c:774: "
                        "xc_dom_probe_bzimage_kernel: unknown compression format: Invalid kernel")
