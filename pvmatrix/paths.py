"""Where pvmatrix keeps its caches and its packaged data."""

import errno
from importlib.resources import files
from pathlib import Path

from . import settings
from .errors import UserError

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
    not: cli.main states it)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:         # a failed write() names no file: name it
            raise OSError(errno.ENOSPC, exc.strerror, str(path)) from None
        raise UserError(f"-o {path}: cannot write: {exc.strerror or exc}") from None
