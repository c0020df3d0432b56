"""Running QEMU: accelerator probe, command line, deadline, cleanup, memory.

A QEMU started here never outlives the harness: it runs in its own process
group, dies with its parent (PR_SET_PDEATHSIG), and is killed on deadline,
exception, Ctrl-C, SIGTERM, SIGHUP and interpreter exit. A run that
kill_all() stopped is marked interrupted; a QEMU that died of a signal
itself (kill -9, the OOM killer) says so in Run.signal. Its peak RSS comes from
wait4's rusage.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .. import settings
from ..errors import QemuDidNotStart
from .markers import Line, parse_line

QEMU = "qemu-system-x86_64"      # PVMATRIX_QEMU=/path/to/qemu overrides it
OVERHEAD_MB = 384            # QEMU itself, TCG translation cache, page tables
GRACE_S = 2.5                # after the init's last word: time to power off
_live: dict[int, subprocess.Popen] = {}
_interrupted: set[int] = set()   # pids kill_all() stopped: their boots say nothing


@dataclass
class Accel:
    name: str                # "kvm" or "tcg"
    why: str

    def args(self) -> list[str]:
        if self.name == "kvm":
            return ["-accel", "kvm", "-cpu", "host"]
        # Single-threaded TCG: with thread=multi, QEMU 7.2's nested SVM made about
        # half of the PVH guests triple-fault on a VM exit (RDTSC, VMMCALL); one
        # thread gave 4 of 5 clean first attempts at about the same wall time.
        return ["-accel", "tcg,thread=single,tb-size=512", "-cpu", "qemu64,+svm,+npt"]


def probe_accel() -> Accel:
    """KVM only when it can host Xen (a plain, nested-capable KVM); else TCG.

    PVMATRIX_ACCEL=tcg|kvm overrides the probe.
    """
    forced = settings.current().accel
    if forced:
        return Accel(forced, "PVMATRIX_ACCEL")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel("tcg", "no usable /dev/kvm")
    mods = Path("/sys/module")
    if (mods / "kvm_pvm").exists():
        return Accel("tcg", "/dev/kvm is the PVM flavour (kvm_pvm): it cannot run Xen")
    for vendor in ("kvm_amd", "kvm_intel"):
        nested = mods / vendor / "parameters" / "nested"
        if nested.exists():
            if nested.read_text().strip() in ("1", "Y", "y"):
                return Accel("kvm", f"{vendor} with nested virtualization")
            return Accel("tcg", f"{vendor} without nested virtualization (Xen needs it)")
    return Accel("tcg", "/dev/kvm has no kvm_amd/kvm_intel behind it")


def mem_available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def check_memory(guest_mb: int, what: str) -> None:
    """Refuse a boot that would not fit in free memory."""
    need, free = guest_mb + OVERHEAD_MB, mem_available_mb()
    if need > free:
        raise QemuDidNotStart(f"{what}: needs {need} MB ({guest_mb} MB guest + {OVERHEAD_MB} MB "
                              f"QEMU) but only {free} MB are available; not starting it")


def binary() -> str:
    """The QEMU program: $PVMATRIX_QEMU, else qemu-system-x86_64 on PATH."""
    return settings.current().qemu or QEMU


@lru_cache(maxsize=8)
def _version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             env=settings.current().child_env()).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def version() -> str | None:
    """QEMU's own version line (e.g. "QEMU emulator version 7.2.19 ..."), or None."""
    found = shutil.which(binary())
    return _version(found) if found else None


def esc(text: str) -> str:
    """QEMU option value: a comma is written ",,"."""
    return str(text).replace(",", ",,")


def checked_binary() -> str:
    """binary(), or QemuDidNotStart when it is not there to run."""
    qemu = binary()
    if not shutil.which(qemu):
        raise QemuDidNotStart(f"QEMU cannot start: {qemu} is not installed or not executable"
                              + (" (apt-get install qemu-system-x86)" if qemu == QEMU else " (PVMATRIX_QEMU)"))
    return qemu


def command(qemu: str, accel: Accel, memory_mb: int, serial: Path, kernel: Path, append: str,
            initrd: str, devices: list[str], smp: int = 2, machine: str = "pc") -> list[str]:
    """The command line that runs QEMU (the program) with KERNEL; nothing is checked."""
    return [qemu, "-machine", machine, *accel.args(), "-smp", str(smp), "-m", str(memory_mb),
            "-nodefaults", "-display", "none", "-no-reboot", "-no-user-config",
            "-monitor", "none", "-serial", f"file:{serial}",
            "-kernel", str(kernel), "-append", append, "-initrd", initrd, *devices]


@dataclass
class Run:
    lines: list[Line] = field(default_factory=list)
    timed_out: bool = False
    exit_code: int | None = None
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    stopped_by: str = ""
    stderr_tail: list[str] = field(default_factory=list)
    interrupted: bool = False    # stopped by kill_all(): Ctrl-C, SIGTERM, SIGHUP, exit

    @property
    def signal(self) -> str | None:
        """The signal QEMU died of on its own (not the harness's kill), e.g. "SIGKILL"."""
        if self.exit_code is None or self.exit_code >= 0:
            return None
        try:
            return signal.Signals(-self.exit_code).name
        except ValueError:
            return f"signal {-self.exit_code}"


def _pdeathsig() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _kill(proc: subprocess.Popen):
    """Kill PROC's process group; reap it; return its rusage (or None)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        for _ in range(30):
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return usage
            time.sleep(0.1)
    return None


@atexit.register
def kill_all() -> None:
    """Kill every QEMU this process started that still runs (their runs are
    then marked interrupted)."""
    for proc in list(_live.values()):
        _interrupted.add(proc.pid)
        _kill(proc)


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


def _install_term_handler() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_term)


def _reap(proc: subprocess.Popen):
    """(done, exit code, rusage) of PROC, without waiting; a PROC kill_all()
    already reaped (another thread) is done with the code it saw."""
    try:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return True, proc.returncode, None
    if not pid:
        return False, None, None
    return True, os.waitstatus_to_exitcode(status), usage


def run(cmd: list[str], serial: Path, deadline_s: float,
        stop: Callable[[Line], bool], crash: Callable[[Line], bool],
        on_line: Callable[[Line], None] | None = None) -> Run:
    """Run CMD until it exits, STOP or CRASH sees a line (plus a grace), or the deadline."""
    _install_term_handler()
    serial.write_text("")
    err_path = serial.with_suffix(".stderr")
    out = Run()
    start = time.monotonic()
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True, preexec_fn=_pdeathsig,
                                env=settings.current().child_env())
    _live[proc.pid] = proc
    try:
        pending, no, stop_at = b"", 0, None
        with open(serial, "rb") as fh:
            while True:
                done, code, usage = _reap(proc)
                chunk = fh.read()
                now = time.monotonic() - start
                if chunk:
                    pending += chunk
                    *whole, pending = pending.split(b"\n")
                    for raw in whole:
                        no += 1
                        line = parse_line(no, raw.decode(errors="replace"), round(now, 2))
                        out.lines.append(line)
                        if on_line:
                            on_line(line)
                        if stop_at is None and (stop(line) or crash(line)):
                            stop_at = now + GRACE_S
                            out.stopped_by = line.text.strip()
                if done:
                    proc.returncode = out.exit_code = code
                    if usage is not None:
                        out.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)
                    break
                if stop_at is not None and now >= stop_at:
                    break
                if now >= deadline_s:
                    out.timed_out = True
                    break
                time.sleep(0.1)
            if pending:
                out.lines.append(parse_line(no + 1, pending.decode(errors="replace"), None))
    finally:
        if proc.returncode is None:
            usage = _kill(proc)
            if usage is not None:
                out.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)
        _live.pop(proc.pid, None)
        out.interrupted = proc.pid in _interrupted
        _interrupted.discard(proc.pid)
        out.wall_s = round(time.monotonic() - start, 2)
    out.stderr_tail = err_path.read_text(errors="replace").strip().splitlines()[-5:]
    return out
