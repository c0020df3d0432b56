"""Matrix specs (TOML): which kernels, built how. Errors name file and key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PvmError
from .paths import KCONFIGS

DEFAULT = KCONFIGS.parent / "specs" / "default.toml"


@dataclass
class KernelSpec:
    name: str
    source: str
    base: str = "tinyconfig"
    fragments: list[str] = field(default_factory=list)
    toolchain: str = "auto"


@dataclass
class Spec:
    path: Path
    kernels: list[KernelSpec]


def _want(path: Path, key: str, value, kind, what: str, item=None):
    if not isinstance(value, kind) or (item and not all(isinstance(x, item) for x in value)):
        raise PvmError(f"{path}: {key}: expected {what}, got {value!r}")
    return value


def load(path: str | Path | None) -> Spec:
    path = Path(path) if path else DEFAULT
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise PvmError(f"spec {path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PvmError(f"spec {path}: not valid TOML: {exc}") from None
    entries = _want(path, "kernel", data.get("kernel"), list, "a list of [[kernel]] tables")
    kernels, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"kernel[{i}]"
        _want(path, where, entry, dict, "a table")
        unknown = set(entry) - {"name", "source", "base", "fragments", "toolchain"}
        if unknown:
            raise PvmError(f"{path}: {where}: unknown key(s) {', '.join(sorted(unknown))}")
        name = _want(path, f"{where}.name", entry.get("name"), str, "a string")
        if name in seen:
            raise PvmError(f"{path}: {where}.name: duplicate kernel name {name!r}")
        seen.add(name)
        kernels.append(KernelSpec(
            name=name,
            source=_want(path, f"{where}.source", entry.get("source"), str, "a source string"),
            base=_want(path, f"{where}.base", entry.get("base", "tinyconfig"), str, "a string"),
            fragments=_want(path, f"{where}.fragments", entry.get("fragments", []), list,
                            "a list of fragment names", item=str),
            toolchain=_want(path, f"{where}.toolchain", entry.get("toolchain", "auto"), str,
                            "a toolchain name")))
    return Spec(path, kernels)
