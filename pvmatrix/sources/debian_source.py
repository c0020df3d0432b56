"""debian:linux-source-X[@SUITE]: Debian's kernel source package; the tarball
inside it is the source (same identity and tree as tarball:THAT-TARBALL)."""

from __future__ import annotations

from ..errors import UserError
from . import debian, packages, tarball
from .tree import Source


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
