"""Shared fixtures of every tier (tests/unit, tests/golden, tests/real). Real
kernels are shared across tests through pvmatrix's own cache (the default
cache location, or $PVMATRIX_CACHE), so the suite builds each kernel once per
machine. `--regen-golden` rewrites the golden files under tests/golden/refs/."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
DEBIAN_61 = "debian:linux-source-6.1@bookworm"
# the small Xen kernel the real boot tests share (built once, then a cache hit)
XEN_FRAGMENTS = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]
GOLDEN_REFS = Path(__file__).parent / "golden" / "refs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite tests/golden/refs/ from what the code renders now")


@pytest.fixture
def golden(request):
    """golden(NAME, TEXT): TEXT must equal tests/golden/refs/NAME; with
    --regen-golden the file is rewritten instead (review it with git diff)."""
    regen = request.config.getoption("--regen-golden")

    def check(name: str, text: str) -> None:
        ref = GOLDEN_REFS / name
        if regen:
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(text)
            return
        assert ref.is_file(), f"no golden file {ref}: run pytest --regen-golden"
        assert text == ref.read_text(), f"{name} differs from {ref} (intended? --regen-golden)"

    return check


def pvmatrix(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process."""
    return subprocess.run([sys.executable, "-m", "pvmatrix.cli", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=3600)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed: non-zero exit, 'pvmatrix: error: ...'."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("pvmatrix: error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="session")
def debian_61():
    """Debian's linux-source-6.1, resolved to a tree on disk (fetched once)."""
    from pvmatrix import sources
    return sources.resolve(DEBIAN_61)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A cache of the test's own, for tests that must not see earlier state."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PVMATRIX_CACHE", str(cache))
    return cache


def interruptible() -> None:
    """preexec_fn for a child a test sends SIGINT: Ctrl-C reaches it even when the
    suite runs where SIGINT is ignored (a non-interactive shell's background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_abort_left_set():
    """A test that stops a run in-process (Ctrl-C) leaves tasks.ABORT set, as a real
    stopped process would at exit; the next test's tasks must not see it."""
    yield
    from pvmatrix.matrix import tasks
    tasks.ABORT.clear()


@pytest.fixture
def short_grace(monkeypatch):
    """The harness's grace after a death line, shortened: what is tested is that the
    boot ends a grace after the line instead of at its deadline, not the grace itself."""
    from pvmatrix.boot import qemu
    monkeypatch.setattr(qemu, "GRACE_S", 0.5)
