"""Debian packages fetched with apt into a private cache.

The host's apt state is never touched: each suite has its own archive cache
under the pvmatrix cache, and a sources list and lists directory per mirror
(catalog.mirror(): --mirror, the spec's, else the host's), so the lists of two
mirrors never mix. The .debs are shared: a package version is the same file on
every mirror.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .. import catalog, settings
from ..digest import sha256_remembered, short as short_sha256
from ..errors import HarnessFault, NoSpace, UserError
from ..paths import cache_dir, cache_root, partial_dir

LISTS_MAX_AGE_S = 24 * 3600
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# what apt-get update says of a suite the mirror does not carry
NOT_CARRIED = ("does not have a Release file", "404  Not Found", "404 Not Found")


class NotCarried(UserError):
    """The mirror has no such suite: the user's mirror or suite is wrong."""


def suites() -> list[str]:
    """The Debian suites pvmatrix may fetch from, in lookup order (data/suites.toml)."""
    return catalog.names("suite")


@contextmanager
def _locked(suite: str, what: str = "apt") -> Iterator[None]:
    """One apt run per suite at a time (across threads and processes): apt's own
    lock is off (it wants the host's dpkg lock), and two concurrent updates of
    one lists directory fail."""
    with open(cache_dir("apt", suite) / f".{what}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def lists_dir(suite: str, mirror: str | None = None) -> Path:
    """SUITE's apt state from MIRROR (default: the mirror in effect): its sources
    list, lists, package cache and `updated` stamp (made by the first apt run)."""
    mirror = mirror or catalog.mirror()
    return cache_root() / "apt" / suite / "mirrors" / short_sha256(mirror)


def stamp(suite: str) -> Path:
    """The file whose mtime is the last apt-get update of SUITE from the mirror in effect."""
    return lists_dir(suite) / "updated"


def _apt(suite: str, *args: str, tool: str = "apt-get") -> subprocess.CompletedProcess:
    conf = catalog.get("suite", suite)
    mirror = catalog.mirror()
    root = cache_dir("apt", suite)
    state = lists_dir(suite, mirror)
    src = state / "sources.list"
    for d in (state / "lists/partial", root / "cache/archives/partial", root / "debs"):
        d.mkdir(parents=True, exist_ok=True)
    opts = [
        f"-o=Dir::Etc::SourceList={src}", "-o=Dir::Etc::SourceParts=/dev/null",
        f"-o=Dir::State::Lists={state}/lists", f"-o=Dir::Cache={root}/cache",
        # kept (images often turn it off): a look-up then takes 0.2 s, not 0.9 s
        f"-o=Dir::Cache::pkgcache={state}/pkgcache.bin",
        f"-o=Dir::Cache::srcpkgcache={state}/srcpkgcache.bin",
        f"-o=Dir::State::status=/dev/null", "-o=APT::Sandbox::User=root",
        "-o=Debug::NoLocking=1", "-o=APT::Get::List-Cleanup=0",
    ]
    with _locked(suite):       # every apt run of the suite reads sources.list under this lock
        line = f"deb [signed-by={KEYRING}] {mirror} {suite} {conf.components}\n"
        if not src.exists() or src.read_text() != line:   # a new mtime voids apt's pkgcache
            src.write_text(line)
        return subprocess.run([tool, "-q", *opts, *args], cwd=root / "debs",
                              capture_output=True, text=True, env=settings.current().child_env())


def _fresh(stamp: Path) -> bool:
    return stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE_S


def refresh(suite: str) -> None:
    """apt-get update SUITE's private lists, unless they are under a day old.
    NotCarried: the mirror has no such suite."""
    updated = stamp(suite)
    if _fresh(updated):
        return
    with _locked(suite, "update"):         # the first of several concurrent callers updates
        if _fresh(updated):
            return
        done = _apt(suite, "update")
        if any(s in done.stdout + done.stderr for s in NOT_CARRIED):
            raise NotCarried(f"the mirror {catalog.mirror()} does not carry Debian suite {suite} "
                             "(no Release file): give another mirror with --mirror URL or the "
                             "spec's mirror key")
        if done.returncode != 0:
            raise HarnessFault(f"apt-get update for Debian suite {suite} from {catalog.mirror()} "
                               f"failed: {_first_error(done.stderr)}")
        updated.touch()


def listed(package: str, suite: str) -> bool | None:
    """Whether SUITE's lists hold PACKAGE; None when they are not fresh (a check
    at spec load downloads nothing)."""
    if not _fresh(stamp(suite)):
        return None
    done = _apt(suite, "show", "--no-all-versions", package, tool="apt-cache")
    return done.returncode == 0 and bool(done.stdout.strip())


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if line.startswith(("E:", "W:")):
            return line
    return text.strip().splitlines()[-1] if text.strip() else "no output"


def check_name(package: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", package):
        raise UserError(f"not a Debian package name: {package!r}")


def download(package: str, suite: str | None = None) -> Path:
    """Download the .deb of PACKAGE (from SUITE, else the first suite having it)."""
    check_name(package)
    tried = [suite] if suite else suites()
    for name in tried:
        debs = cache_dir("apt", name, "debs")
        have = sorted(debs.glob(f"{package}_*.deb"))
        if have:
            return have[-1]
        try:
            refresh(name)
        except NotCarried:
            if suite:
                raise
            continue                       # looking through every suite: the mirror's will do
        done = _apt(name, "download", package)
        if done.returncode == 0:
            have = sorted(debs.glob(f"{package}_*.deb"))
            if have:
                return have[-1]
        if "Unable to locate" not in done.stderr and "no installation candidate" not in done.stderr \
                and "Can't select" not in done.stderr:
            raise HarnessFault(f"downloading Debian package {package} from {name} failed: "
                               f"{_first_error(done.stderr)}")
    raise UserError(f"Debian package {package} not found in suite(s) {', '.join(tried)}")


def depends(package: str, suite: str) -> list[str]:
    """The direct dependencies of PACKAGE in SUITE, e.g. the current kernel a
    metapackage such as linux-image-amd64 points to."""
    refresh(suite)
    done = _apt(suite, "depends", package, tool="apt-cache")
    if done.returncode != 0:
        raise UserError(f"Debian package {package} not found in suite {suite}: {_first_error(done.stderr)}")
    return [line.split(":", 1)[1].strip().strip("<>") for line in done.stdout.splitlines()
            if line.strip().startswith(("Depends:", "|Depends:"))]


def suite_of(deb: Path) -> str:
    """The suite a .deb from download() came from (it sits in apt/SUITE/debs)."""
    return deb.parent.parent.name


def unpacked(*debs: Path, finish: Callable[[Path], None] | None = None) -> Path:
    """The files of DEBS, for every stage: unpacked once into the cache, keyed by
    the packages' sha256 (one .deb alone: its own), FINISH(tree) run on the
    tree, and renamed into place whole (a reader never sees a half-made tree;
    of two concurrent unpackers the first rename wins). A failure leaves
    nothing behind; the tree of a killed process is removed at the next call; a
    full disk is one line (errors.NoSpace)."""
    dest = cache_dir("debs") / _tree_key(debs, finish is not None)
    if dest.exists():
        return dest
    tmp = partial_dir(dest.parent, "unpack")
    try:
        for deb in debs:
            _unpack(deb, tmp, dest.parent)
        if finish is not None:
            finish(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _tree_key(debs: tuple[Path, ...], finished: bool) -> str:
    return tree_key([sha256_remembered(d) for d in debs], finished)


def tree_key(digests: list[str], finished: bool) -> str:
    """The folder under debs/ of the packages with sha256 DIGESTS (HEX, in
    order): one .deb as it is: its sha256; several, or a finished tree: the
    sha256 over theirs (a tree made from the same packages another way is
    another tree)."""
    if len(digests) == 1 and not finished:
        return digests[0]
    return hashlib.sha256("\n".join(["tree/1", *digests]).encode()).hexdigest()


def _unpack(deb: Path, into: Path, cache: Path) -> None:
    done = subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], capture_output=True, text=True)
    if done.returncode != 0:
        if "No space left on device" in done.stderr or "Disk quota exceeded" in done.stderr:
            raise NoSpace(cache)
        raise HarnessFault(f"cannot unpack {deb}: {_first_line(done.stderr)}")


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "no output").strip()
