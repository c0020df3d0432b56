"""Kernel sources: git refs, tarballs, directories (Debian packages: tests/real/)."""

import hashlib
import tarfile
from pathlib import Path

import git
import pytest

from pvmatrix import sources
from pvmatrix.errors import PvmError

MAKEFILE = "VERSION = 6\nPATCHLEVEL = {minor}\nSUBLEVEL = 0\n"


@pytest.fixture
def repo(tmp_path):
    """A small git repository shaped like a kernel tree, with two tags."""
    path = tmp_path / "linux"
    r = git.Repo.init(path)
    r.config_writer().set_value("user", "name", "t").set_value("user", "email", "t@t").release()
    for minor in (1, 2):
        (path / "Makefile").write_text(MAKEFILE.format(minor=minor))
        r.index.add(["Makefile"])
        r.index.commit(f"v6.{minor}")
        r.create_tag(f"v6.{minor}")
    return r


def test_git_ref_resolves_to_commit_without_touching_the_work_tree(repo, private_cache):
    work = repo.working_tree_dir
    makefile = Path(work, "Makefile")
    makefile.write_text(makefile.read_text() + "# local edit\n")
    head = repo.head.commit.hexsha
    src = sources.resolve(f"git:{work}@v6.1")
    assert src.identity == f"git:{repo.commit('v6.1').hexsha}"
    assert src.version == "6.1.0"
    assert src.tree.is_relative_to(private_cache)
    assert "local edit" not in (src.tree / "Makefile").read_text()
    # the user's checkout: same HEAD, same uncommitted edit
    assert repo.head.commit.hexsha == head and repo.is_dirty()
    assert makefile.read_text().endswith("# local edit\n")
    again = sources.resolve(f"git:{work}@v6.1")
    assert again == src
    assert sources.resolve(f"git:{work}@v6.2").version == "6.2.0"


def test_git_missing_ref_is_named(repo, private_cache):
    with pytest.raises(PvmError, match=r"ref 'v9\.9' not found in .*linux"):
        sources.resolve(f"git:{repo.working_tree_dir}@v9.9")


def test_git_not_a_repository(tmp_path, private_cache):
    with pytest.raises(PvmError, match="is not a git repository"):
        sources.resolve(f"git:{tmp_path}@main")


def make_tarball(tmp_path, minor=1):
    tree = tmp_path / f"linux-6.{minor}"
    tree.mkdir()
    (tree / "Makefile").write_text(MAKEFILE.format(minor=minor))
    tar = tmp_path / f"linux-6.{minor}.tar.gz"
    with tarfile.open(tar, "w:gz") as fh:
        fh.add(tree, arcname=tree.name)
    return tar


def test_tarball_identity_is_its_sha256(tmp_path, private_cache):
    tar = make_tarball(tmp_path)
    src = sources.resolve(f"tarball:{tar}")
    assert src.identity == "sha256:" + hashlib.sha256(tar.read_bytes()).hexdigest()
    assert src.version == "6.1.0"
    assert sources.resolve(str(tar)).identity == src.identity


def test_directory_identity_follows_content(tmp_path, private_cache):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Makefile").write_text(MAKEFILE.format(minor=1))
    first = sources.resolve(f"dir:{tree}")
    (tree / "extra.c").write_text("int x;\n")
    assert sources.resolve(f"dir:{tree}").identity != first.identity


def test_unreadable_tarball_is_named(tmp_path, private_cache):
    tar = make_tarball(tmp_path)
    bad = tmp_path / "truncated.tar.gz"
    bad.write_bytes(tar.read_bytes()[:40])
    with pytest.raises(PvmError, match=r"cannot unpack .*truncated\.tar\.gz"):
        sources.resolve(f"tarball:{bad}")
    with pytest.raises(PvmError, match=r"nothere\.tar\.xz does not exist"):
        sources.resolve(f"tarball:{tmp_path}/nothere.tar.xz")


def test_not_a_kernel_tree(tmp_path, private_cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PvmError, match="not a kernel tree"):
        sources.resolve(f"dir:{tmp_path}/empty")


def test_unknown_spec_form(private_cache):
    with pytest.raises(PvmError, match="no such file or directory"):
        sources.resolve("/no/such/linux")
