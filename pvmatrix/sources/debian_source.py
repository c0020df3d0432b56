"""debian:linux-source-X[@SUITE]: Debian's kernel source package; the tarball
inside it is the source (same identity and tree as tarball:THAT-TARBALL)."""

from __future__ import annotations

import re

from ..errors import UserError
from . import debian, packages, tarball
from .tree import Source

# linux-source-X.Y (linux-source alone is the metapackage: its version is known once followed)
VERSIONED = re.compile(r"linux-source-(\d+\.\d+)")


def check(spec: str, rest: str) -> None:
    """REST is PACKAGE[@SUITE] of a known suite (see packages.check)."""
    packages.check(rest)


def resolve(spec: str, rest: str) -> Source:
    """REST is PACKAGE[@SUITE]; a metapackage (linux-source) is followed."""
    package = packages.resolve(rest)
    tarballs = sorted(debian.unpacked(package.deb).glob("usr/src/linux-source-*.tar.*"))
    if not tarballs:
        raise UserError(f"Debian package {package.name} ({package.deb.name}) holds no "
                        "kernel source tarball")
    found = tarball.resolve(spec, str(tarballs[0]))
    return Source(spec, "debian", found.identity, found.tree)


def named_version(rest: str) -> str | None:
    """The kernel version X.Y that REST (PACKAGE[@SUITE]) names, before any fetch;
    None for the linux-source metapackage."""
    found = VERSIONED.fullmatch(packages.parse(rest)[0])
    return found.group(1) if found else None
