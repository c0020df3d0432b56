"""Debian prebuilt kernel packages: debian:PACKAGE[@SUITE] to one concrete
.deb, with its version and content id.

A metapackage (linux-image-amd64, linux-source) is followed to the package
it depends on today (linux-image-6.1.0-31-amd64, linux-source-6.1): a name
with a version number in it is already concrete. Which package a
metapackage meant is remembered per refresh of the suite's lists, so a run
asks apt once and a new kernel in the archive is seen within a day.

A prebuilt kernel (`Prebuilt`) is every package holding its files: the
linux-image-ABI package itself in the old packaging; since 6.19 that one is
empty and depends on linux-base-ABI (config, modules.builtin/order),
linux-binary-ABI (usr/lib/modules/ABI/vmlinuz) and linux-modules-ABI. They
are unpacked into one kernel tree with module indexes (modules.dep,
modules.alias) made there, since no package ships them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import catalog
from ..digest import sha256_id
from ..errors import UserError
from ..kernel import in_dir, make_module_indexes
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


@dataclass(frozen=True)
class Prebuilt:
    """A prebuilt kernel: its linux-image-ABI package first, then every other
    package holding its files (none in the old packaging)."""
    parts: tuple[Package, ...]

    @property
    def image(self) -> Package:
        return self.parts[0]

    @property
    def name(self) -> str:
        return self.image.name

    @property
    def suite(self) -> str:
        return self.image.suite

    @property
    def version(self) -> str:
        return self.image.version

    @property
    def spec(self) -> str:
        return self.image.spec

    @property
    def abi(self) -> str:
        """uname -r of the kernel, e.g. 7.2.13+deb14-cloud-amd64."""
        return self.name.removeprefix("linux-image-")

    @property
    def digest(self) -> str:
        """The kernel's content id: the .deb's sha256 when one package holds it
        (as before the split), else the sha256 over every part's name and digest."""
        if len(self.parts) == 1:
            return self.image.digest
        text = "".join(f"{p.name} {p.digest}\n" for p in self.parts)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def provenance(self) -> list[dict]:
        """Every package: name, version, suite and the sha256 of its .deb."""
        return [{"name": p.name, "version": p.version, "suite": p.suite, "sha256": p.digest}
                for p in self.parts]


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


def kernel_parts(name: str, depends: list[str]) -> list[str]:
    """The packages holding the files of kernel package NAME (linux-image-ABI),
    from its DEPENDS: NAME, then each linux-WORD-ABI it depends on (linux-base,
    linux-binary, linux-modules since the split; none before it)."""
    abi = name.removeprefix("linux-image-")
    own = re.compile(rf"linux-[a-z]+-{re.escape(abi)}")
    return [name] + [d for d in depends if own.fullmatch(d) and d != name]


def check(spec: str, fetch: bool = False) -> None:
    """debian:PACKAGE[@SUITE] names a known suite and, where the suites' lists
    are fresh, a package they hold; nothing is downloaded unless FETCH, which
    first brings a named suite's lists up to date (a run does, before any work)."""
    name, suite = parse(spec)
    debian.check_name(name)
    if suite is not None:
        catalog.get("suite", suite)
        if fetch:
            debian.refresh(suite)
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
    return _package(name, suite)


def resolve_kernel(spec: str) -> Prebuilt:
    """debian:PACKAGE[@SUITE] of a kernel image: the linux-image-ABI package (a
    metapackage followed) and every package holding its files, downloaded from
    the one suite the image comes from."""
    image = resolve(spec)
    names = _remembered("parts", image.name, image.suite,
                        lambda: kernel_parts(image.name, debian.depends(image.name, image.suite)))
    return Prebuilt((image, *(_package(n, image.suite) for n in names[1:])))


def unpacked_kernel(kernel: Prebuilt) -> Path:
    """The files of every part of KERNEL in one tree, with module indexes (see
    debian.unpacked: whole or absent)."""
    return debian.unpacked(*(p.deb for p in kernel.parts), finish=_indexed)


def unpacked_name(kernel: Prebuilt) -> str:
    """The name of unpacked_kernel(KERNEL)'s folder under debs/, from the
    parts' digests alone (no .deb needed: a recorded kernel's files are found)."""
    return debian.tree_key([p.digest.removeprefix("sha256:") for p in kernel.parts], finished=True)


def _indexed(root: Path) -> None:
    """Module indexes for the kernel under ROOT, unless it ships them."""
    modules = in_dir(root, "").modules
    if modules is not None and not (modules / "modules.alias").exists():
        make_module_indexes(modules)


def _package(name: str, suite: str | None) -> Package:
    deb = debian.download(name, suite)
    version = deb.name.split("_")[1] if deb.name.count("_") >= 2 else ""
    return Package(name, suite or debian.suite_of(deb), deb, version, sha256_id(deb))


def _followed(name: str, suite: str) -> str:
    """concrete(NAME), remembered until the suite's lists are next refreshed."""
    return _remembered("meta", name, suite, lambda: concrete(name, debian.depends(name, suite)))


def _remembered(what: str, name: str, suite: str, ask: Callable[[], object]):
    """ASK()'s answer about NAME in SUITE, remembered until the suite's lists
    are next refreshed."""
    debian.refresh(suite)                    # a day old: a new kernel may be out
    stamp = debian.stamp(suite)
    lists = stamp.stat().st_mtime_ns if stamp.exists() else 0
    prefix = "" if what == "meta" else f"{what}:"          # a meta answer keeps its old key
    key = hashlib.sha256(f"{prefix}{name}@{suite}:{stamp.parent.name}:{lists}".encode()).hexdigest()[:24]
    memo = cache_dir("packages") / f"{key}.json"
    if memo.exists():
        return json.loads(memo.read_text())
    answer = ask()
    memo.write_text(json.dumps(answer))
    return answer
