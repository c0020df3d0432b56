"""Fake task kinds for tests that run the `pvmatrix` CLI in a child process:
the child registers them in pvmatrix.matrix.tasks.FUNCS (in place of a real
kind), then runs the CLI's main. pvmatrix itself has no test hook.

    python -c "$(CHILD)" --slow analyze=60 -- run SPEC ...
    python -c "$(CHILD)" --short-boot CELL=1 -- run SPEC ...   (N or all)

`pvmatrix_faked(fakes, *args)` runs that child and returns it, as
conftest.pvmatrix does for the plain CLI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHORT_DEADLINE_S = 1.0
# the child: this module from tests/, pvmatrix from the checkout (cwd)
CHILD = f"import sys; sys.path[:0] = [{str(HERE)!r}]; import fake_tasks; sys.exit(fake_tasks.main())"


def slow(func: str, seconds: float) -> None:
    """Tasks of kind FUNC first wait SECONDS (or until the run is stopped: Ctrl-C)."""
    from pvmatrix.matrix import tasks
    real = tasks.FUNCS[func]

    def slow_task(task: dict, **deps):
        tasks.ABORT.wait(seconds)
        return real(task, **deps)
    tasks.FUNCS[func] = slow_task


def _attempt(task: dict) -> int:
    """1 for a run's own attempt, 2.. for retries of a regression (see matrix.retry)."""
    retry = task["args"].get("retry")
    return retry if isinstance(retry, int) else 1


def short_boot(cell: str, upto: str) -> None:
    """The bare-metal boot owning CELL gets a SHORT_DEADLINE_S deadline in attempts
    1..UPTO (or "all"): a real boot that really times out, with the harness's own
    evidence. Such an outcome is marked (inputs.test_hook) and never cached."""
    from pvmatrix.boot import qemu
    from pvmatrix.matrix import tasks
    real, real_run = tasks.FUNCS["boot_baremetal"], qemu.run

    def short_run(cmd, serial, deadline_s, *args, **kw):
        return real_run(cmd, serial, SHORT_DEADLINE_S, *args, **kw)

    def boot(task: dict, **deps):
        hooked = any(c["id"] == cell for c in task["cells"]) and \
            (upto == "all" or _attempt(task) <= int(upto))
        if not hooked:
            return real(task, **deps)
        # recheck: not the cached real verdict; a retry marker: not cached itself
        forced = {**task, "args": {**task["args"], "recheck": True, "retry": "fake short boot"}}
        with mock.patch.object(qemu, "run", short_run):
            out = real(forced, **deps)
        out.inputs["test_hook"] = f"fake_tasks.short_boot: {SHORT_DEADLINE_S:g} s deadline"
        return out
    tasks.FUNCS["boot_baremetal"] = boot


def main(argv: list[str] | None = None) -> int:
    """Register the fakes asked for (before "--"), then run the pvmatrix CLI with
    the arguments after it."""
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog="fake_tasks")
    p.add_argument("--slow", action="append", default=[], metavar="FUNC=SECONDS")
    p.add_argument("--short-boot", action="append", default=[], metavar="CELL=N|all")
    args = p.parse_args(argv[:cut])
    for item in args.slow:
        func, _, secs = item.partition("=")
        slow(func, float(secs))
    for item in args.short_boot:
        cell, _, upto = item.rpartition("=")
        short_boot(cell, upto)
    from pvmatrix import cli
    return cli.main(argv[cut + 1:])


def command(fakes: list[str]) -> list[str]:
    """The argv of a child running the CLI with FAKES (e.g. ["--slow", "analyze=60"])."""
    return [sys.executable, "-c", CHILD, *fakes, "--"]


def pvmatrix_faked(fakes: list[str], *args: str, env: dict | None = None,
                   timeout: float = 3600) -> subprocess.CompletedProcess:
    """The CLI with FAKES registered, in a child process (cwd: the checkout)."""
    return subprocess.run([*command(fakes), *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=timeout)
