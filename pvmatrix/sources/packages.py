"""Debian prebuilt kernel packages: debian:PACKAGE[@SUITE] to one concrete
.deb, with its version and content id.

A metapackage (linux-image-amd64, linux-source) is followed to the package
it depends on today (linux-image-6.1.0-31-amd64, linux-source-6.1): a name
with a version number in it is already concrete. Which package a
metapackage meant is remembered per refresh of the suite's lists, so a run
asks apt once and a new kernel in the archive is seen within a day.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .. import catalog
from ..digest import sha256_id
from ..errors import UserError
from ..paths import cache_dir
from . import debian


@dataclass(frozen=True)
class Package:
    """One downloaded Debian package."""
    name: str          # the concrete package, e.g. linux-image-6.1.0-31-amd64
    suite: str
    deb: Path
    version: str       # the Debian version, e.g. 6.1.128-1
    digest: str        # sha256:HEX of the .deb: its content id

    @property
    def spec(self) -> str:
        """debian:NAME@SUITE, naming this very package."""
        return f"debian:{self.name}@{self.suite}"


def parse(spec: str) -> tuple[str, str | None]:
    """debian:PACKAGE[@SUITE] (the prefix is optional) -> (PACKAGE, SUITE or None)."""
    name, _, suite = spec.removeprefix("debian:").partition("@")
    return name, suite or None


def is_meta(name: str) -> bool:
    """A name without a version number names a metapackage."""
    return re.search(r"\d+\.\d+", name) is None


def concrete(name: str, depends: list[str]) -> str:
    """The package metapackage NAME stands for, from its DEPENDS: the first one
    of its own family (linux-image-*, linux-source-*); NAME itself otherwise."""
    if not is_meta(name):
        return name
    family = "-".join(name.split("-")[:2]) + "-"
    return next((d for d in depends if d.startswith(family)), name)


def check(spec: str) -> None:
    """debian:PACKAGE[@SUITE] names a known suite and, where the suites' lists
    are fresh, a package they hold; nothing is downloaded."""
    name, suite = parse(spec)
    debian.check_name(name)
    if suite is not None:
        catalog.get("suite", suite)
    tried = [suite] if suite else debian.suites()
    if all(debian.listed(name, s) is False for s in tried):
        raise UserError(f"Debian package {name} not found in suite(s) {', '.join(tried)}")


def resolve(spec: str) -> Package:
    """debian:PACKAGE[@SUITE]: the concrete package, downloaded (from SUITE, else
    the first suite having it; a metapackage is looked up in the first suite)."""
    name, suite = parse(spec)
    if is_meta(name):
        suite = suite or debian.suites()[0]
        name = _followed(name, suite)
    deb = debian.download(name, suite)
    version = deb.name.split("_")[1] if deb.name.count("_") >= 2 else ""
    return Package(name, suite or debian.suite_of(deb), deb, version, sha256_id(deb))


def _followed(name: str, suite: str) -> str:
    """concrete(NAME), remembered until the suite's lists are next refreshed."""
    debian.refresh(suite)                    # a day old: a new kernel may be out
    stamp = debian.stamp(suite)
    lists = stamp.stat().st_mtime_ns if stamp.exists() else 0
    key = hashlib.sha256(f"{name}@{suite}:{stamp.parent.name}:{lists}".encode()).hexdigest()[:24]
    memo = cache_dir("packages") / f"{key}.json"
    if memo.exists():
        return json.loads(memo.read_text())
    package = concrete(name, debian.depends(name, suite))
    memo.write_text(json.dumps(package))
    return package
