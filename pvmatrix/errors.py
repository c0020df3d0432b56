"""Whose fault a failure is. Every error pvmatrix raises on purpose is one of
four roots, and a cell's status follows from the class, never from the text:

    UserError     bad input (spec, name, ref, fragment, flag): one line, exit 2
    KernelFault   the kernel or its config is at fault: the cell is `fail` (exit 1)
    HarnessFault  pvmatrix or its infrastructure failed: the cell is `broken` (exit 3)
    NotSupported  this cell cannot be run here (yet): the cell is `not run` (exit 4)

(the exit code of a command the error stops: exitcodes.py has the table)
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import exitcodes


class PvmError(Exception):
    """Any failure pvmatrix reports in one line; the message names the input at fault.
    Raise one of the four roots below (or a named subclass), never this class itself."""
    status = "broken"        # the cell status this error gives (see records.Status)
    exit_code = exitcodes.BROKEN     # a command it stops exits so (exitcodes.TABLE)

    def __init__(self, message: str, *, log: Path | str | None = None) -> None:
        super().__init__(message)
        self.log = log       # a log that tells more, when there is one


class UserError(PvmError):
    """Bad input: a malformed spec, a missing ref, an unknown name, a broken fragment."""
    exit_code = exitcodes.USAGE


class TruncatedFile(UserError):
    """An input file cut short (a bzImage whose payload, an ELF whose headers,
    segments or sections reach past its end): never read as a kernel that lacks
    something."""


class EndsAlike(UserError):
    """A bisection's bad end passes like its good end: nothing between them to find."""


class UnknownName(UserError):
    """A name of a catalog kind (role, xen, toolchain, ...) that is not in it;
    HINT says what else would do ("or give a path to a xen binary")."""

    def __init__(self, kind: str, name: str, known, hint: str = "") -> None:
        self.kind, self.name, self.known, self.hint = kind, name, sorted(known), hint
        listed = ", ".join(self.known) or "none"
        super().__init__(f"unknown {kind} {name!r} (known: {listed}{'; ' + hint if hint else ''})")

    def __reduce__(self):     # crosses process boundaries (Dask) with its own arguments
        return type(self), (self.kind, self.name, self.known, self.hint)


class KernelFault(PvmError):
    """The kernel (its source or its config) is at fault: the cell fails."""
    status = "fail"
    exit_code = exitcodes.FAIL


class BuildFailed(KernelFault):
    """A build step (configure, build, modules_install) failed, with its first
    compiler error; SUBJECT says what was built ("build of dir:/src")."""

    def __init__(self, step: str, first_error: str, log: Path | str | None = None,
                 subject: str = "the build") -> None:
        self.step, self.first_error, self.subject = step, first_error, subject
        at = "" if step == "configure" else f" in step {step}"
        where = f" (log: {log})" if log else ""
        super().__init__(f"{subject} failed{at}: {first_error}{where}", log=log)

    def __reduce__(self):
        return type(self), (self.step, self.first_error, self.log, self.subject)


class HarnessFault(PvmError):
    """pvmatrix or what it runs on (engine, QEMU, network, disk) failed: broken."""
    status = "broken"


class NoSpace(HarnessFault):
    """The disk under PATH is full (ENOSPC, or the quota): one line, and what was
    being written is dropped, never left half-written."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        super().__init__(f"no space left on device under {path}")

    def __reduce__(self):
        return type(self), (self.path,)


FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def disk(path: Path | str) -> Iterator[None]:
    """Writes under PATH in the block: a full disk is NoSpace(PATH)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in FULL:
            raise NoSpace(path) from None
        raise


def full_disk(exc: BaseException, where: Path | str = "a cache or results path") -> NoSpace | None:
    """EXC as NoSpace when it is a full disk (ENOSPC, the quota), else None; a
    write() names no file: then WHERE it was writing under."""
    if isinstance(exc, NoSpace):
        return exc
    if isinstance(exc, OSError) and exc.errno in FULL:
        return NoSpace(exc.filename or where)
    return None


class QemuDidNotStart(HarnessFault):
    """QEMU exited before the guest could run (bad option, no memory, missing binary)."""


class QemuKilled(HarnessFault):
    """QEMU ended by a signal or an error exit that the guest did not cause
    (kill -9, the OOM killer, a QEMU abort): the boot says nothing of the kernel."""


class NotSupported(PvmError):
    """This cell cannot run here (a mode nested TCG lacks, a missing feature): not run."""
    status = "not run"
    exit_code = exitcodes.NOT_RUN


class Interrupted(NotSupported):
    """The run was stopped (Ctrl-C, SIGTERM, SIGHUP) while this cell ran: not run,
    and no verdict of it is kept."""


def status_of(exc: BaseException) -> str:
    """The cell status an exception stands for: by class, never by message."""
    if isinstance(exc, PvmError):
        return exc.status
    if isinstance(exc, (ImportError, NotImplementedError)):
        return NotSupported.status
    return HarnessFault.status
