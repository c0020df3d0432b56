"""Where pvmatrix keeps its caches and its packaged data."""

import os
from pathlib import Path

DATA = Path(__file__).parent / "data"
KCONFIGS = Path(__file__).parent.parent / "kconfigs"


def cache_root() -> Path:
    """The cache directory: $PVMATRIX_CACHE, else $XDG_CACHE_HOME/pvmatrix."""
    env = os.environ.get("PVMATRIX_CACHE")
    if env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pvmatrix"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
