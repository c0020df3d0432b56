"""Where pvmatrix keeps its caches and its packaged data."""

from importlib.resources import files
from pathlib import Path

from . import settings

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
