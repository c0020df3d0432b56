"""Where pvmatrix keeps its caches and its packaged data."""

import os
import re
import shutil
import socket
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Sequence

from . import settings
from .errors import UserError, disk

# a plain directory, never a zip: the data goes to containers and QEMU as paths
PACKAGE = Path(str(files("pvmatrix")))
DATA = PACKAGE / "data"


def _shipped(name: str) -> Path:
    """Data folder NAME of the repository's top level: installed inside the
    package (setup.py maps it there), or in the checkout of an editable install."""
    installed = PACKAGE / name
    return installed if installed.is_dir() else PACKAGE.parent / name


KCONFIGS = _shipped("kconfigs")
SPECS = _shipped("specs")


def cache_root() -> Path:
    """The cache directory of the settings in effect: $PVMATRIX_CACHE, else
    $XDG_CACHE_HOME/pvmatrix."""
    root = settings.current().cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_output(path: Path | str, text: str) -> None:
    """TEXT into the file PATH the user named (-o), making its folder; a path
    that cannot be written is their input's fault, in one line (a full disk is
    not: errors.NoSpace)."""
    path = Path(path)
    try:
        with disk(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError as exc:
        raise UserError(f"-o {path}: cannot write: {exc.strerror or exc}") from None


# -- writing whole: a reader (or the next run) never sees a half-written file or tree

def write_whole(path: Path, data: str | bytes) -> None:
    """Write DATA to PATH atomically: a temporary file beside it, then a rename;
    on any failure the temporary is removed (a full disk: errors.NoSpace)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with disk(path.parent), os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_whole(src: Path | str, dest: Path) -> None:
    """Copy SRC to DEST atomically, as write_whole."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
    os.close(fd)
    try:
        with disk(dest.parent):
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def partial_dir(parent: Path, what: str) -> Path:
    """A new private directory in PARENT to fill and then rename into place whole,
    named .WHAT-PID@HOST-... (after the stale ones of dead processes are removed)."""
    sweep_partial(parent, what)
    with disk(parent):
        return Path(tempfile.mkdtemp(prefix=f".{what}-{os.getpid()}@{socket.gethostname()}-",
                                     dir=parent))


def sweep_partial(parent: Path, what: str) -> None:
    """Remove PARENT's partial directories of WHAT left by processes of this host
    now dead (a SIGKILL, a power cut): nothing else would ever remove them. Those
    of other hosts (a shared store) are theirs to judge."""
    host = re.escape(socket.gethostname())
    pattern = re.compile(rf"\.{re.escape(what)}-(\d+)@{host}-")
    for entry in parent.glob(f".{what}-*"):
        m = pattern.match(entry.name)
        if m and not _alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether PATH lies inside one of ROOTS, after symlinks."""
    real = Path(path).resolve()
    return any(real.is_relative_to(Path(r).resolve()) for r in roots)


def confined(path: Path, roots: Sequence[Path] | None, what: str, name: str) -> Path:
    """PATH, if ROOTS is None (a path the user named) or it lies inside one of
    them after symlinks (a spec is untrusted input)."""
    if roots is not None and not inside(path, roots):
        allowed = ", ".join(str(r) for r in roots)
        raise UserError(f"{what} {name!r}: outside the folders a spec may use ({allowed})")
    return path
