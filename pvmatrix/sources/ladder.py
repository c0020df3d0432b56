"""Kernel ladders: every prebuilt kernel ABI a Debian suite carries in one
flavour, oldest first, or those in a version range.

    ladder("debian:linux-image-amd64@trixie-backports", ">=6.18,<7.1")
    ladder("debian:linux-image-amd64@bookworm+bookworm-backports")

Suites joined by "+" make one ladder of all their ABIs (a stable release and
its backports: 6.1 then 6.12), each rung fetched from its own suite.

A ladder starts from a flavour's metapackage (linux-image-amd64,
linux-image-cloud-amd64): its rungs are the suite's linux-image-ABI-FLAVOUR
packages. They are ordered by their upstream Linux version, taken from the
Debian version (6.18.9-1~bpo13+1 is Linux 6.18.9), and the range is a PEP 440
specifier set over that version (packaging.specifiers), so ">=6.18,<7.1" reads
as it would for any Python package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .. import catalog
from ..errors import HarnessFault, UserError
from . import debian, packages

# linux-image-ABI-FLAVOUR: the ABI starts with a version (6.18.9+deb13, 6.1.0-31)
CONCRETE = re.compile(r"linux-image-(?P<abi>\d+\.\d+[^-]*(?:-\d+)?)-(?P<flavour>.+)")


@dataclass(frozen=True)
class Rung:
    """One kernel ABI of a ladder."""
    suite: str
    package: str          # linux-image-6.18.9+deb13-amd64
    abi: str              # 6.18.9+deb13
    version: str          # the Debian version, 6.18.9-1~bpo13+1
    upstream: Version     # Linux 6.18.9

    @property
    def spec(self) -> str:
        """debian:PACKAGE@SUITE, naming this very kernel."""
        return f"debian:{self.package}@{self.suite}"

    @property
    def tag(self) -> str:
        """The upstream git tag of this kernel's version: v6.18.9, v7.0, v7.0-rc5."""
        u = self.upstream
        text = f"v{u.major}.{u.minor}" + (f".{u.micro}" if u.micro else "")
        return text + (f"-rc{u.pre[1]}" if u.pre else "")


def upstream_of(version: str) -> Version | None:
    """The upstream Linux version in Debian version VERSION (epoch and Debian
    revision dropped; 7.0~rc5 is 7.0rc5), or None when it is not one."""
    text = version.split(":", 1)[-1]
    text = text.rpartition("-")[0] if "-" in text else text
    try:
        return Version(text.replace("~", ""))
    except InvalidVersion:
        return None


def flavour_of(meta: str) -> str:
    """The flavour a metapackage stands for: linux-image-cloud-amd64 -> cloud-amd64."""
    if not meta.startswith("linux-image-") or not packages.is_meta(meta):
        raise UserError(f"a ladder starts from a flavour's metapackage such as linux-image-amd64 "
                        f"or linux-image-cloud-amd64, got {meta!r}")
    return meta.removeprefix("linux-image-")


def specifiers(text: str) -> SpecifierSet:
    """A version range as PEP 440 specifiers (">=6.18,<7.1"); malformed: UserError."""
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        spec = None
    if spec is None or not str(spec):
        raise UserError(f"versions {text!r}: expected version specifiers such as '>=6.18,<7.1' "
                        "(operators ==, !=, <, <=, >, >=, ~=, comma-separated)")
    return spec


def parse_madison(text: str) -> list[tuple[str, str]]:
    """(package, Debian version) pairs of `apt-cache madison` output, the first
    (highest) version of each package only."""
    seen: dict[str, str] = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2 and fields[0] not in seen:
            seen[fields[0]] = fields[1]
    return list(seen.items())


def rungs_of(entries: list[tuple[str, str]], suite: str, flavour: str) -> list[Rung]:
    """The rungs of FLAVOUR among ENTRIES (package, version), oldest first. A
    version that is no upstream version cannot be placed and is left out."""
    rungs = []
    for name, version in entries:
        m = CONCRETE.fullmatch(name)
        upstream = upstream_of(version)
        if m and m["flavour"] == flavour and upstream is not None:
            rungs.append(Rung(suite, name, m["abi"], version, upstream))
    return sorted(rungs, key=lambda r: (r.upstream, r.abi))


def select(rungs: list[Rung], spec: SpecifierSet) -> list[Rung]:
    """The rungs whose upstream version SPEC allows (release candidates too)."""
    return [r for r in rungs if spec.contains(r.upstream, prereleases=True)]


def summary(rungs: list[Rung]) -> str:
    """A short account of RUNGS: how many, from which to which, in which series."""
    if not rungs:
        return "none"
    series = dict.fromkeys(f"{r.upstream.major}.{r.upstream.minor}" for r in rungs)
    return (f"{len(rungs)} ABI(s), {rungs[0].upstream} to {rungs[-1].upstream} "
            f"(series {', '.join(series)})")


def _listing(suite: str) -> str:
    """`apt-cache madison` of every linux-image-* package SUITE's lists hold."""
    debian.refresh(suite)
    names = _apt_cache(suite, "pkgnames", "linux-image-")
    wanted = sorted(n for n in names.split() if CONCRETE.fullmatch(n))
    return _apt_cache(suite, "madison", *wanted) if wanted else ""


def _apt_cache(suite: str, *args: str) -> str:
    # debian.py's wrapper: the suite's private lists, never the host's
    done = debian._apt(suite, *args, tool="apt-cache")
    if done.returncode != 0:
        raise HarnessFault(f"apt-cache {args[0]} for Debian suite {suite} failed: "
                           f"{done.stderr.strip()[:200]}")
    return done.stdout


SUITES = "+"      # bookworm+bookworm-backports: one ladder over both suites


def check(package: str, versions: str | None = None
          ) -> tuple[tuple[str, ...], str, SpecifierSet | None]:
    """What can be known of a ladder without apt: (suites, flavour, range)."""
    meta, suite = packages.parse(package)
    flavour = flavour_of(meta)
    if suite is None:
        raise UserError(f"{package}: a ladder needs its suite, e.g. "
                        f"debian:{meta}@trixie-backports or @bookworm{SUITES}bookworm-backports")
    suites = tuple(suite.split(SUITES))
    for name in suites:
        catalog.get("suite", name)
    return suites, flavour, specifiers(versions) if versions is not None else None


def ladder(package: str, versions: str | None = None) -> list[Rung]:
    """The rungs of ladder PACKAGE (debian:linux-image-FLAVOUR@SUITE) within
    VERSIONS (every one without), oldest first; none is a UserError naming what
    the suite has."""
    suites, flavour, spec = check(package, versions)
    every = merged([rungs_of(parse_madison(_listing(s)), s, flavour) for s in suites])
    where = SUITES.join(suites)
    if not every:
        raise UserError(f"{package}: suite {where} carries no linux-image-ABI-{flavour} kernel")
    chosen = select(every, spec) if spec is not None else every
    if not chosen:
        raise UserError(f"versions {versions!r} matches no {flavour} kernel of {where}; "
                        f"it has {summary(every)}")
    return chosen


def merged(per_suite: list[list[Rung]]) -> list[Rung]:
    """One ladder of several suites' rungs, oldest first; a package two suites
    carry is one rung, from the first suite named."""
    seen: dict[str, Rung] = {}
    for rungs in per_suite:
        for r in rungs:
            seen.setdefault(r.package, r)
    return sorted(seen.values(), key=lambda r: (r.upstream, r.abi))


def row_names(prefix: str, rungs: list[Rung]) -> list[str]:
    """A matrix row name per rung: PREFIX-UPSTREAM (bpo-6.18.9), or PREFIX-ABI
    when two rungs share an upstream version."""
    names = [f"{prefix}-{r.upstream}" for r in rungs]
    if len(set(names)) < len(names):
        names = [f"{prefix}-{r.abi.replace('+', '_')}" for r in rungs]
    return names
