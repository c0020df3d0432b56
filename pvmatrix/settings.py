"""Settings: what pvmatrix takes from its flags and its environment, read in one
place. This module is the only reader of os.environ in pvmatrix, including the
environment handed to child processes (`Settings.child_env`); no command
writes to os.environ.

A run's settings travel with its tasks (`to_payload`): a Dask worker, here or
on another host, runs each task under the run's store and cache
(`from_payload`), and keeps only what belongs to its host (its QEMU, its
container engine, its disk budgets, its PATH).

Deep code asks `current()`: the settings `use()` put in effect in this context
(the CLI for a command, a worker for a task), else this process's environment.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

from .aptsources import check_url
from .errors import UserError

ACCELS = ("tcg", "kvm")


def _text(name: str, value: str) -> str:
    return value


def _path(name: str, value: str) -> Path:
    return Path(value)


def _count(unit: str) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        try:
            return max(0, int(value))
        except ValueError:
            raise UserError(f"{name}={value!r}: not a number of {unit}") from None
    return parse


def _mirror(name: str, value: str) -> str:
    return check_url(value, name)


def _accel(name: str, value: str) -> str:
    if value not in ACCELS:
        raise UserError(f"{name}={value!r}: not one of {', '.join(ACCELS)}")
    return value


# field -> (variables, the first one set wins; parser). An empty variable counts as unset.
VARIABLES: dict[str, tuple[tuple[str, ...], Callable]] = {
    "cache": (("PVMATRIX_CACHE",), _path),
    "store": (("PVMATRIX_STORE",), _text),
    "s3_endpoint": (("PVMATRIX_S3_ENDPOINT", "AWS_ENDPOINT_URL"), _text),
    "xl_debug": (("PVMATRIX_XL_DEBUG",), _text),
    "cache_home": (("XDG_CACHE_HOME",), _path),
    "qemu": (("PVMATRIX_QEMU",), _text),
    "accel": (("PVMATRIX_ACCEL",), _accel),
    "warm_trees": (("PVMATRIX_WARM_TREES",), _count("trees")),
    "boot_keep_mb": (("PVMATRIX_BOOT_KEEP_MB",), _count("MiB")),
    "snapshot_keep_mb": (("PVMATRIX_SNAPSHOT_KEEP_MB",), _count("MiB")),
    "docker_host": (("DOCKER_HOST",), _text),
    "runtime_dir": (("XDG_RUNTIME_DIR",), _path),
    "mirror": ((), _mirror),                 # a flag or the spec's key, never the environment
}
# What a run decides for all its tasks; the rest is each host's own.
TRAVELS = ("cache", "store", "s3_endpoint", "xl_debug", "mirror")


@dataclass(frozen=True)
class Settings:
    """Every setting, typed; None: not set (the code that uses it has the default)."""
    cache: Path | None = None            # PVMATRIX_CACHE (else cache_home/pvmatrix)
    store: str | None = None             # --store, else PVMATRIX_STORE (else the cache's artifacts/)
    s3_endpoint: str | None = None       # PVMATRIX_S3_ENDPOINT, else AWS_ENDPOINT_URL
    xl_debug: str = ""                   # PVMATRIX_XL_DEBUG: relay `xl -vvv create`
    cache_home: Path | None = None       # XDG_CACHE_HOME (else ~/.cache)
    qemu: str | None = None              # PVMATRIX_QEMU: the QEMU program
    accel: str | None = None             # PVMATRIX_ACCEL: tcg or kvm, instead of the probe
    warm_trees: int = 8                  # PVMATRIX_WARM_TREES
    boot_keep_mb: int = 4096             # PVMATRIX_BOOT_KEEP_MB
    snapshot_keep_mb: int = 2048         # PVMATRIX_SNAPSHOT_KEEP_MB (0: no snapshots)
    docker_host: str | None = None       # DOCKER_HOST
    runtime_dir: Path | None = None      # XDG_RUNTIME_DIR
    mirror: str | None = None            # --mirror, else the spec's (else the host's apt sources)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags) -> "Settings":
        """Settings from ENVIRON (default: this process's) and FLAGS (field=value;
        a None flag is not given). A malformed value is a UserError naming its variable."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for name, (variables, parse) in VARIABLES.items():
            var = next((v for v in variables if environ.get(v)), None)
            if var is not None:
                values[name] = parse(var, environ[var])
        for name, value in flags.items():
            if value is not None:
                parse = VARIABLES[name][1]
                values[name] = parse(f"--{name.replace('_', '-')}", value) \
                    if isinstance(value, str) else value
        return cls(**values, environ=MappingProxyType(environ))   # read-only, not copied

    def cache_root(self) -> Path:
        """The cache directory (not created here)."""
        if self.cache:
            return self.cache
        home = self.cache_home or Path(self.environ.get("HOME") or Path.home()) / ".cache"
        return home / "pvmatrix"

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment of a child process (podman, QEMU, git, apt): this host's,
        plus EXTRA."""
        return {**self.environ, **extra}

    def to_payload(self) -> dict[str, str]:
        """What travels with a run's tasks: the settings it decides that are set."""
        return {name: str(value) for name in TRAVELS if (value := getattr(self, name))}

    @classmethod
    def from_payload(cls, payload: Mapping[str, str],
                     environ: Mapping[str, str] | None = None) -> "Settings":
        """The settings a worker runs a task under: the run's (PAYLOAD) over its own."""
        return cls.from_env(environ, **payload)


_current: ContextVar[Settings | None] = ContextVar("pvmatrix_settings", default=None)


def current() -> Settings:
    """The settings in effect: those `use` set in this context, else this process's
    environment (read afresh)."""
    return _current.get() or Settings.from_env()


@contextmanager
def use(settings: Settings) -> Iterator[Settings]:
    """Put SETTINGS in effect in this context (thread, task) for the block."""
    token = _current.set(settings)
    try:
        yield settings
    finally:
        _current.reset(token)
