"""Kernel sources: a git ref, a tarball, a directory or a Debian package.

Each resolves to a read-only tree on disk and a content identity (commit id
or sha256) that keys every cache downstream.

Spec forms: ``git:PATH@REF``, ``tarball:PATH``, ``dir:PATH``,
``debian:PACKAGE[@SUITE]``; a bare existing path is a tarball or directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import debian
from ..artifacts import sha256_file
from ..errors import PvmError
from ..paths import cache_dir


@dataclass(frozen=True)
class Source:
    spec: str
    kind: str
    identity: str
    tree: Path

    @property
    def version(self) -> str:
        return kernel_version(self.tree)


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from a kernel tree's Makefile."""
    try:
        head = (tree / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        raise PvmError(f"{tree} is not a kernel tree (no Makefile)") from None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL) = (\d+)", head, re.M))
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        raise PvmError(f"{tree} is not a kernel tree (no VERSION in its Makefile)")
    return f"{fields['VERSION']}.{fields['PATCHLEVEL']}.{fields.get('SUBLEVEL', '0')}"


def resolve(spec: str) -> Source:
    """Turn a source spec into a Source with its tree ready on disk."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in ("git", "tarball", "dir", "debian"):
        kind, rest = _guess(spec), spec
    if kind == "git":
        path, sep, ref = rest.rpartition("@")
        if not sep or not path or not ref:
            raise PvmError(f"git source {spec!r}: expected git:PATH@REF")
        return _git(spec, Path(path), ref)
    if kind == "tarball":
        return _tarball(spec, Path(rest))
    if kind == "dir":
        return _directory(spec, Path(rest))
    package, _, suite = rest.partition("@")
    return _debian(spec, package, suite or None)


def _guess(spec: str) -> str:
    path = Path(spec)
    if path.is_dir():
        return "dir"
    if path.is_file():
        return "tarball"
    raise PvmError(f"source {spec!r}: no such file or directory, and not one of "
                   "git:PATH@REF, tarball:PATH, dir:PATH, debian:PACKAGE[@SUITE]")


def open_repo(path: Path, what: str = ""):
    """The git repository at PATH (gitpython), or a one-line error (WHAT prefixes it)."""
    import git
    try:
        return git.Repo(path)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError):
        raise PvmError(f"{what}{path} is not a git repository") from None


def commit_of(repo, ref: str, what: str = "", where: Path | None = None) -> str:
    """REF's commit id in REPO, or a one-line error (WHAT prefixes it; WHERE
    names the repository as the user gave it)."""
    import git
    try:
        return repo.commit(ref).hexsha
    except (git.BadName, ValueError, git.GitCommandError):
        raise PvmError(f"{what}ref {ref!r} not found in {where or repo.working_dir}") from None


def _git(spec: str, path: Path, ref: str) -> Source:
    what = f"git source {spec!r}: "
    repo = open_repo(path, what)
    commit = commit_of(repo, ref, what, path)
    tree = cache_dir("trees") / f"git-{commit}"
    if not (tree / "Makefile").exists():
        worktree(repo, tree, commit)
    return Source(spec, "git", f"git:{commit}", tree)


def worktree(repo, tree: Path, commit: str) -> Path:
    """TREE as a detached worktree of REPO at COMMIT (made unless it is one
    already): the user's own working tree and HEAD stay as they are."""
    if not (tree / ".git").exists():
        if tree.exists():                 # half made (interrupted): start again
            shutil.rmtree(tree)
        repo.git.worktree("prune")
        repo.git.worktree("add", "--detach", "--force", str(tree), commit)
    return tree


def sha256_remembered(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so repeats are instant."""
    st = path.stat()
    memo = cache_dir("identity") / hashlib.sha256(
        f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    if memo.exists():
        return memo.read_text()
    digest = sha256_file(path)
    memo.write_text(digest)
    return digest


def _kernel_root(top: Path) -> Path:
    """The directory holding the kernel's Makefile: TOP or its only subdirectory."""
    if (top / "Makefile").exists():
        return top
    subdirs = [p for p in top.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / "Makefile").exists():
        return subdirs[0]
    raise PvmError(f"{top}: no kernel Makefile at the top or in its only directory")


def _tarball(spec: str, path: Path) -> Source:
    if not path.is_file():
        raise PvmError(f"tarball source {spec!r}: {path} does not exist")
    try:
        digest = sha256_remembered(path)
    except OSError as exc:
        raise PvmError(f"tarball source {spec!r}: cannot read {path}: {exc.strerror}") from None
    tree = cache_dir("trees") / f"sha256-{digest}"
    if not tree.exists():
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=tree.parent))
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="tar")
            kroot = _kernel_root(tmp)
            os.rename(kroot, tree) if kroot != tmp else os.rename(tmp, tree)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise PvmError(f"tarball source {spec!r}: cannot unpack {path}: {exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    kernel_version(tree)
    return Source(spec, "tarball", f"sha256:{digest}", tree)


def _directory(spec: str, path: Path) -> Source:
    """A local tree, identified by the sha256 of its files' paths and contents.

    Per-file digests are remembered by (size, mtime) in one memo per tree, so
    a repeat only stats the files."""
    if not path.is_dir():
        raise PvmError(f"directory source {spec!r}: {path} is not a directory")
    kernel_version(path)
    memo_path = cache_dir("identity") / (
        "dir-" + hashlib.sha256(str(path.resolve()).encode()).hexdigest() + ".json")
    memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    fresh, listing = {}, []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            full = Path(root, name)
            if full.is_symlink() or not full.is_file():
                continue
            rel, st = str(full.relative_to(path)), full.stat()
            seen = memo.get(rel)
            if seen and seen[:2] == [st.st_size, st.st_mtime_ns]:
                digest = seen[2]
            else:
                digest = sha256_file(full)
            fresh[rel] = [st.st_size, st.st_mtime_ns, digest]
            listing.append(f"{rel}\0{digest}")
    memo_path.write_text(json.dumps(fresh))
    digest = hashlib.sha256("\n".join(listing).encode()).hexdigest()
    return Source(spec, "dir", f"sha256:{digest}", path.resolve())


def _debian(spec: str, package: str, suite: str | None) -> Source:
    """A Debian linux-source-X package: the tarball inside it is the source."""
    deb = debian.download(package, suite)
    unpacked = cache_dir("debs") / deb.stem
    if not unpacked.exists():
        tmp = Path(tempfile.mkdtemp(prefix=".deb-", dir=unpacked.parent))
        debian.extract(deb, tmp)
        os.rename(tmp, unpacked)
    tarballs = sorted(unpacked.glob("usr/src/linux-source-*.tar.*"))
    if not tarballs:
        raise PvmError(f"Debian package {package} ({deb.name}) holds no kernel source tarball")
    found = _tarball(spec, tarballs[0])
    return Source(spec, "debian", found.identity, found.tree)


def describe(source: Source) -> str:
    return json.dumps({"spec": source.spec, "identity": source.identity,
                       "tree": str(source.tree), "version": source.version})
