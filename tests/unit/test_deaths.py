"""The death catalog (data/deaths.toml): every way a kernel or Xen announces a
death is recognized, on the catalog's examples (each the printk format of the
source it cites) and on real serial logs; a dead kernel stops the boot within
the grace period, as a panic quoting its line, never as a timeout."""

from __future__ import annotations

import time

import pytest

from conftest import FIXTURES
from pvmatrix import catalog
from pvmatrix.boot import harness, qemu, roles, verdicts
from pvmatrix.boot.markers import crash_signs, death_kind, parse, parse_file

SERIAL = FIXTURES / "serial"
DEATHS = list(catalog.all("death").values())


@pytest.mark.parametrize("death", DEATHS, ids=[d.name for d in DEATHS])
def test_each_example_is_recognized_as_its_kind(death):
    line = parse(death.example)[0]
    got = death_kind(line)
    if death.kind == "domain" and got == "xen":      # a Xen crash outranks a domain's
        pytest.fail(f"{death.name}: its example reads as a Xen crash")
    assert got == death.kind, (death.name, death.example)


def test_each_death_cites_its_source():
    for d in DEATHS:
        assert d.source and d.pattern and d.example, d.name
    kinds = {d.kind for d in DEATHS}
    assert kinds == set(catalog.DEATH_KINDS)


@pytest.mark.parametrize("text", [
    "PANIC: early exception 0x0e IP 10:ffffffff8100145c error 0 cr2 0xffffffffff3ff000",
    "[    2.001122] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
    "[    0.512345] double fault: 0000 [#1] SMP NOPTI",
    "[    2.1] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",       # 6.12's header
    "(XEN) domain_crash called from arch/x86/hvm/hvm.c:1700",
    "(XEN) Domain 2 (vcpu#0) crashed on cpu#0:",
])
def test_deaths_the_old_patterns_missed(text):
    """Each of these was judged only at the deadline before the catalog."""
    assert death_kind(parse(text)[0]) is not None


def test_passing_real_logs_show_no_death():
    """A false death would stop a good boot: none in real logs of passing boots."""
    for name in ("boot/baremetal-ok.log", "boot/dom0-pv-pvh-ok.log", "serial/baremetal-ok-head.log"):
        path = FIXTURES / name
        if path.exists():
            signs = crash_signs(parse_file(path))
            assert not any(signs.values()), (name, signs)


def test_real_panic_log_is_a_panic():
    lines = parse_file(SERIAL / "baremetal-vfs-panic-tail.log")
    v = verdicts.judge_host(roles.get("baremetal"), lines, verdicts.BootOutcome())
    assert v.detail == "panic" and "Unable to mount root fs" in v.reason


def test_real_triple_fault_log_crashes_the_guest():
    path = FIXTURES / "boot" / "pvh-triple-fault.log"
    lines = parse_file(path)
    assert [ln.no for ln in lines if death_kind(ln) == "domain"]


def _writer(serial, script: str) -> list[str]:
    return ["sh", "-c", script.replace("SERIAL", str(serial))]


def test_an_early_exception_ends_the_boot_at_once_as_a_panic(tmp_path, short_grace):
    """A real boot's first lines, then the early exception handler's line (no
    "Kernel panic" follows: the kernel halts): stopped a grace period after it,
    judged a panic quoting the line, not a timeout at the deadline."""
    death = catalog.get("death", "early-exception").example
    serial = tmp_path / "serial.log"
    head = SERIAL / "baremetal-ok-head.log"
    cmd = _writer(serial, f"cat {head} >>SERIAL; echo '{death}' >>SERIAL; sleep 600")
    start = time.monotonic()
    run = qemu.run(cmd, serial, 60.0, stop=lambda ln: False, crash=harness._host_crash)
    assert not run.timed_out and time.monotonic() - start < qemu.GRACE_S + 3
    assert run.stopped_by == death
    v = verdicts.judge_host(roles.get("baremetal"), run.lines,
                            verdicts.BootOutcome(run.timed_out, run.exit_code, run.wall_s))
    assert v.status == "fail" and v.detail == "panic" and v.reason == death


def test_an_oops_is_judged_but_does_not_stop_the_boot():
    """An oops may leave the kernel running (the init goes on): judged as one."""
    text = (SERIAL / "baremetal-ok-head.log").read_text() + \
        catalog.get("death", "die-header").example + "\n"
    v = verdicts.judge_host(roles.get("baremetal"), parse(text), verdicts.BootOutcome())
    assert v.detail == "oops" and "[#1]" in v.reason
    assert not harness._host_crash(parse(catalog.get("death", "die-header").example)[0])


def test_a_halted_dom0_is_judged_at_its_halt_not_at_the_deadline():
    """Debian's cloud kernel as dom0 halts 59 s in; it used to be a timeout at 110 s."""
    lines = parse_file(SERIAL / "cloud-as-dom0-halted.log")
    halt = next(ln for ln in lines if "System halted" in ln.text)
    assert harness._host_crash(halt)                    # QEMU is stopped a grace after it
    v = verdicts.judge_host(roles.get("dom0"), lines, verdicts.BootOutcome(wall_s=62.0))
    assert (v.detail, str(v.status)) == ("halted", "fail")
    assert "reboot: System halted" in v.reason
    assert any("Hardware Dom0 halted" in e.text for e in v.evidence)


def test_a_halt_after_every_marker_is_no_failure():
    """A kernel without ACPI powers off through Xen after its init is done: a pass."""
    ok = (FIXTURES / "boot" / "dom0-pv-pvh-ok.log").read_text()
    lines = parse(ok + "\n[   99.0] reboot: System halted\n(XEN) Hardware Dom0 halted: halting machine\n")
    v = verdicts.judge_host(roles.get("dom0"), lines, verdicts.BootOutcome(wall_s=100.0))
    assert v.detail == "ok", v.reason
