"""Kernel configuration: parsed from a config file, or from the IKCONFIG copy
embedded in the kernel image (or in its configs.ko module)."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..configure import SET
from ..errors import UserError

IKCFG_START, IKCFG_END = b"IKCFG_ST", b"IKCFG_ED"
_HEADER = re.compile(r"^# Linux/\S+ (\S+) Kernel Configuration", re.M)


@dataclass
class KernelConfig:
    """Symbol -> value ('y', 'm', a string or number); unset symbols are absent."""
    source: str
    symbols: dict[str, str] = field(default_factory=dict)
    version: str = ""   # from the header comment, e.g. "6.1.176"

    def get(self, symbol: str) -> str | None:
        return self.symbols.get(_full(symbol))

    def state(self, symbol: str) -> str:
        """'y', 'm' or 'n' for a tristate/bool symbol."""
        value = self.get(symbol)
        return value if value in ("y", "m") else "n"

    def evidence(self, symbol: str) -> str:
        """The option as it reads in the config, e.g. 'CONFIG_XEN_PV=y'."""
        value = self.get(symbol)
        name = _full(symbol)
        return f"{name}={value}" if value is not None else f"{name} is not set"


def parse_config(text: str, source: str) -> KernelConfig:
    """Parse the text of a .config."""
    config = KernelConfig(source)
    for line in text.splitlines():
        match = SET.match(line)
        if match:
            config.symbols[match.group(1)] = match.group(2).strip('"')
    header = _HEADER.search(text)
    if header:
        config.version = header.group(1)
    if not config.symbols:
        raise UserError(f"{source}: not a kernel config (no CONFIG_ lines)")
    return config


def read_config(path: Path) -> KernelConfig:
    """Parse the config file at PATH."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the kernel config ({exc.strerror})") from None
    return parse_config(text, str(path))


def embedded_config(blob: bytes, source: str) -> KernelConfig | None:
    """The IKCONFIG copy inside BLOB (a vmlinux or configs.ko), or None."""
    start = blob.find(IKCFG_START)
    if start < 0:
        return None
    end = blob.find(IKCFG_END, start)
    data = blob[start + len(IKCFG_START):end if end > 0 else None]
    try:
        text = zlib.decompressobj(wbits=31).decompress(data).decode(errors="replace")
    except zlib.error as exc:
        raise UserError(f"{source}: corrupt embedded IKCONFIG ({exc})") from None
    return parse_config(text, f"IKCONFIG in {source}")


def _full(symbol: str) -> str:
    return symbol if symbol.startswith("CONFIG_") else f"CONFIG_{symbol}"
