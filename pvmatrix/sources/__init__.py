"""Kernel sources: a git ref, a tarball, a directory or a Debian package.

Each resolves to a read-only tree on disk and a content identity (commit id
or sha256) that keys every cache downstream.

Spec forms: ``git:PATH@REF``, ``tarball:PATH``, ``dir:PATH``,
``debian:PACKAGE[@SUITE]``; a bare existing path is a tarball or directory.
One module per kind (git, tarball, directory, debian_source); debian.py
fetches and unpacks Debian packages for every stage, packages.py resolves
prebuilt kernel packages (following metapackages).
"""

from __future__ import annotations

import json
from pathlib import Path

from . import debian_source, directory, git, tarball
from ..digest import sha256_remembered
from ..errors import UserError
from .git import commit_of, open_repo, worktree
from .tree import Source, kernel_version

__all__ = ["Source", "check", "commit_of", "describe", "kernel_version", "named_version",
           "open_repo", "resolve", "sha256_remembered", "worktree"]

# kind -> resolve(spec, rest after "kind:")
KINDS = {"git": git.resolve, "tarball": tarball.resolve, "dir": directory.resolve,
         "debian": debian_source.resolve}
# kind -> check(spec, rest): what can be known without fetching or unpacking
CHECKS = {"git": git.check, "tarball": tarball.check, "dir": directory.check,
          "debian": debian_source.check}


def _kind(spec: str) -> tuple[str, str]:
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        return _guess(spec), spec
    return kind, rest


def check(spec: str) -> None:
    """SPEC's form, path, git ref or Debian suite (and package, where the lists
    are fresh), as resolve() would find them, before any fetch or unpack."""
    kind, rest = _kind(spec)
    CHECKS[kind](spec, rest)


def named_version(spec: str) -> str | None:
    """The kernel version SPEC names before any fetch (debian:linux-source-X.Y:
    X.Y), else None: the version is known once the tree is."""
    kind, rest = _kind(spec)
    return debian_source.named_version(rest) if kind == "debian" else None


def resolve(spec: str) -> Source:
    """Turn a source spec into a Source with its tree ready on disk."""
    kind, rest = _kind(spec)
    return KINDS[kind](spec, rest)


def _guess(spec: str) -> str:
    path = Path(spec)
    if path.is_dir():
        return "dir"
    if path.is_file():
        return "tarball"
    raise UserError(f"source {spec!r}: no such file or directory, and not one of "
                    "git:PATH@REF, tarball:PATH, dir:PATH, debian:PACKAGE[@SUITE]")


def describe(source: Source) -> str:
    return json.dumps({"spec": source.spec, "identity": source.identity,
                       "tree": str(source.tree), "version": source.version})
