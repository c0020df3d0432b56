"""A resolved kernel source: its spec, kind, content identity and tree on disk."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass(frozen=True)
class Source:
    spec: str
    kind: str                 # git, tarball, dir or debian
    identity: str             # git:COMMIT or sha256:HEX; keys every cache downstream
    tree: Path

    @property
    def version(self) -> str:
        return kernel_version(self.tree)


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from a kernel tree's Makefile."""
    try:
        head = (tree / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        raise UserError(f"{tree} is not a kernel tree (no Makefile)") from None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL) = (\d+)", head, re.M))
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        raise UserError(f"{tree} is not a kernel tree (no VERSION in its Makefile)")
    return f"{fields['VERSION']}.{fields['PATCHLEVEL']}.{fields.get('SUBLEVEL', '0')}"
