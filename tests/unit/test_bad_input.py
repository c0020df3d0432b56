"""Bad input to every subcommand, through the command line: exit 2, one line on
stderr, no traceback, nothing left behind, and nothing quoted from a file that
is not a Kconfig fragment. Bad input fails before any container or QEMU starts.

The table runs in-process through `pvmatrix.cli.main(argv)` (a child process
costs ~0.3 s of interpreter start and imports per case); a few of its cases, the
closed pipe and the full disk also run as real child processes, so the console
entry point and the process boundary stay covered."""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from pvmatrix import cli, settings
from matrix_helpers import fake_run, small_spec

SECRET = "SECRET-FIRST-LINE-do-not-publish"
GOOD_KERNEL = '[[kernel]]\nname = "k"\nsource = "dir:{tree}"\n'


def _spec(body: str) -> str:
    return '[matrix]\nroles = []\nhardware = ["default"]\n' + body


# name -> spec text ({tree}, {repo}, {secret} are filled in)
SPECS = {
    "malformed": "[matrix\n",
    "no-kernels": "kernel = []\n",
    "unknown-xen": '[matrix]\nxen = ["9.9"]\n' + GOOD_KERNEL,
    "unknown-role": '[matrix]\nroles = ["domU-nosuch"]\n' + GOOD_KERNEL,
    "unknown-hardware": _spec("").replace('"default"', '"no-such-box"') + GOOD_KERNEL,
    "unknown-toolchain": _spec(GOOD_KERNEL + 'toolchain = "gcc-1"\n'),
    "unknown-suite": _spec('[[kernel]]\nname = "k"\nsource = "debian:linux-source-6.1@nosuch"\n'),
    "unknown-source-form": _spec('[[kernel]]\nname = "k"\nsource = "svn:/x"\n'),
    "unknown-package-suite": _spec('[[kernel]]\nname = "k"\npackage = "debian:linux-image-amd64@nosuch"\n'),
    "missing-ref": _spec('[[kernel]]\nname = "k"\nsource = "git:{repo}@no-such-ref"\n'),
    "missing-dir": _spec('[[kernel]]\nname = "k"\nsource = "dir:/no/such/tree"\n'),
    "unknown-fragment": _spec(GOOD_KERNEL + 'fragments = ["no-such-fragment"]\n'),
    "broken-fragment": _spec(GOOD_KERNEL + 'fragments = ["{specdir}/broken.config"]\n'),
    "unknown-base": _spec(GOOD_KERNEL + 'base = "sillyconfig"\n'),
    "unsafe-name": _spec('[[kernel]]\nname = "../../escape"\nsource = "dir:{tree}"\n'),
    "empty-name": _spec('[[kernel]]\nname = ""\nsource = "dir:{tree}"\n'),
    "dot-name": _spec('[[kernel]]\nname = ".hidden"\nsource = "dir:{tree}"\n'),
    "secret-fragment": _spec(GOOD_KERNEL + 'fragments = ["{secret}"]\n'),
    "secret-base": _spec(GOOD_KERNEL + 'base = "{secret}"\n'),
    "shadow-fragment": _spec(GOOD_KERNEL + 'fragments = ["/etc/shadow"]\n'),
    "outside-hardware": _spec("").replace('"default"', '"/etc/passwd"') + GOOD_KERNEL,
    "escape-by-name": _spec(GOOD_KERNEL + 'fragments = ["../../../../../../etc/ssl/openssl"]\n'),
}

# (what, argv); {T} is the test's folder, {run} a recorded run's id
CASES = [
    *[(f"plan {name}", ["plan", f"{{T}}/specs/{name}.toml"]) for name in SPECS],
    *[(f"run {name}", ["run", f"{{T}}/specs/{name}.toml", "--results", "{T}/results"])
      for name in ("malformed", "no-kernels", "unsafe-name", "secret-fragment", "missing-ref")],
    ("run --retries -1", ["run", "{T}/specs/good.toml", "--retries", "-1", "--results", "{T}/results"]),
    ("run bad scheduler file", ["run", "{T}/specs/good.toml", "--scheduler", "{T}/specs/good.toml",
                                "--results", "{T}/results"]),
    ("run new results", ["run", "{T}/specs/unsafe-name.toml", "--results", "{T}/new-results"]),
    ("plan no such spec", ["plan", "{T}/specs/none.toml"]),
    ("build -j -1", ["build", "dir:{T}/tree", "-j", "-1"]),
    ("build missing ref", ["build", "git:{T}/repo@no-such-ref"]),
    ("build no such dir", ["build", "dir:{T}/none"]),
    ("build secret fragment", ["build", "dir:{T}/tree", "-f", "{secret}"]),
    ("build secret base", ["build", "dir:{T}/tree", "--base", "{secret}"]),
    ("build unknown toolchain", ["build", "dir:{T}/tree", "--toolchain", "gcc-1"]),
    ("source no such repo", ["source", "git:{T}/none@main"]),
    ("source unknown form", ["source", "{T}/none"]),
    ("toolchains --prepare unknown", ["toolchains", "--prepare", "gcc-1"]),
    ("rerun no such run", ["rerun", "{T}/none", "k/build"]),
    ("report no such run", ["report", "nope", "--results", "{T}/results"]),
    ("report -o a directory", ["report", "{run}", "--results", "{T}/results", "-o", "{T}/specs"]),
    ("report --format unknown", ["report", "{run}", "--format", "pdf"]),
    ("export -o a directory", ["export", "--kcidb", "{run}", "--results", "{T}/results",
                               "-o", "{T}/specs"]),
    ("export no such run", ["export", "--kcidb", "nope", "--results", "{T}/results"]),
    ("compare no such runs", ["compare", "a", "b", "--results", "{T}/results"]),
    ("history no such cell", ["history", "nope/", "--results", "{T}/results"]),
    ("history new results", ["history", "nope/", "--results", "{T}/new-history"]),
    ("analyze no such kernel", ["analyze", "{T}/none"]),
    ("analyze -j -1", ["analyze", "{T}/tree", "-j", "-1"]),
    ("hw show unknown", ["hw", "show", "no-such-box"]),
    ("hw import no such file", ["hw", "import", "{T}/none"]),
    ("hw import -o a directory", ["hw", "import", "{lspci}", "-o", "{T}/specs"]),
    ("hw without command", ["hw"]),
    ("boot no such kernel", ["boot", "{T}/none"]),
    ("boot unknown xen", ["boot", "{T}/none", "--xen", "9.9"]),
    ("boot unknown hardware", ["boot", "{T}/none", "--hardware", "no-such-box"]),
    ("bisect no such repo", ["bisect", "--repo", "{T}/none", "--good", "a", "--bad", "b", "--cell", "dom0"]),
    ("bisect -o a directory", ["bisect", "--repo", "{T}/repo", "--good", "a", "--bad", "b", "--cell", "dom0",
                               "-o", "{T}/specs"]),
    ("bisect missing ref", ["bisect", "--repo", "{T}/repo", "--good", "HEAD", "--bad", "no-such-ref",
                            "--cell", "dom0"]),
    ("bisect ladder malformed range", ["bisect", "--ladder", "debian:linux-image-amd64@trixie-backports",
                                       "--versions", ">=6.18,<<7", "--cell", "dom0"]),
    ("bisect ladder of a concrete package", ["bisect", "--ladder",
                                             "debian:linux-image-6.18.9+deb13-amd64@trixie-backports",
                                             "--cell", "dom0"]),
    ("bisect ladder without a suite", ["bisect", "--ladder", "debian:linux-image-amd64", "--cell", "dom0"]),
    ("bisect ladder and refs", ["bisect", "--ladder", "debian:linux-image-amd64@trixie-backports",
                                "--good", "a", "--cell", "dom0"]),
    ("bisect without refs", ["bisect", "--repo", "{T}/repo", "--cell", "dom0"]),
    ("bisect-config no such configs", ["bisect-config", "--source", "dir:{T}/tree", "--good", "{T}/none",
                                       "--bad", "{T}/none", "--cell", "dom0"]),
    ("list unknown", ["list", "nothing"]),
    ("unknown command", ["frobnicate"]),
]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A private cache and results, a kernel-like tree, a git repo, a secret."""
    t = tmp_path_factory.mktemp("bad")
    tree = t / "tree"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    repo = t / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README").write_text("x\n")
    _git(repo, "add", "README")
    _git(repo, "commit", "-qm", "one")
    secret = t / "secret.txt"
    secret.write_text(f"{SECRET}\nCONFIG_X=y\n")
    specs = t / "specs"
    specs.mkdir()
    (specs / "broken.config").write_text("CONFIG_OK=y\nCONFIG_A=maybe\n")
    fill = {"tree": tree, "repo": repo, "secret": secret, "specs": specs, "specdir": specs}
    for name, text in {**SPECS, "good": _spec(GOOD_KERNEL)}.items():
        (specs / f"{name}.toml").write_text(text.format(**fill))
    env = {**os.environ, "PVMATRIX_CACHE": str(t / "cache"), "PYTHONPATH": str(REPO)}
    old = os.environ.get("PVMATRIX_CACHE")
    os.environ["PVMATRIX_CACHE"] = str(t / "cache")
    try:
        run = fake_run(t / "results", small_spec(t, "fake"))
    finally:
        os.environ.pop("PVMATRIX_CACHE") if old is None else os.environ.update(PVMATRIX_CACHE=old)
    (t / "work").mkdir()
    lspci = REPO / "tests/fixtures/analyze/pci-host/lspci-nvmm.txt"
    return {"T": t, "run": run.id, "secret": secret, "lspci": lspci, "env": env}


def _files(top: Path) -> set[str]:
    """Every path under TOP, but the private cache (free to fill)."""
    return {str(p.relative_to(top)) for p in top.rglob("*")
            if not p.relative_to(top).parts[0] == "cache"}


# Table cases that also run as a real child process (`python -m pvmatrix.cli`):
# a malformed spec, an unknown name, an argparse error.
IN_A_CHILD = ("plan malformed", "plan unknown-role", "unknown command")
assert set(IN_A_CHILD) <= {c[0] for c in CASES}

_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _pvmatrix_caches() -> list:
    """Every functools cache of pvmatrix's loaded modules (catalog, schemas, probes)."""
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "pvmatrix" or name.startswith("pvmatrix.")):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and \
                    getattr(value, "__module__", None) == name:
                found.append(value)
    return found


@pytest.fixture
def in_process(world, monkeypatch, capfd):
    """main(ARGV) in this process, as the child would run it: in the empty work/
    folder, under the private cache, with fresh caches and settings; returns
    (exit code, stdout, stderr). Signal handlers, logging and caches are put back
    afterwards, so no case sees another's state."""
    monkeypatch.setenv("PVMATRIX_CACHE", str(world["T"] / "cache"))
    work = world["T"] / "work"
    assert not any(work.iterdir()), f"an earlier case left {sorted(os.listdir(work))} in {work}"
    monkeypatch.chdir(work)
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    root = logging.getLogger()
    log_state = (list(root.handlers), root.level)
    capfd.readouterr()

    def run(argv: list[str]) -> tuple[int, str, str]:
        for cached in _pvmatrix_caches():      # catalog, spec and probe results of earlier calls
            cached.cache_clear()
        assert settings._current.get() is None, "settings left in effect before main()"
        try:
            code = cli.main(argv)              # any exception escaping main fails the test
        except SystemExit as exc:              # argparse: a bad flag or command
            code = exc.code
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        out, err = capfd.readouterr()
        assert settings._current.get() is None, "main() left its settings in effect"
        return code, out, err

    yield run
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    root.handlers[:], root.level = log_state
    for cached in _pvmatrix_caches():
        cached.cache_clear()


def _child(world, args: list[str], **kw) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "pvmatrix.cli", *args], env=world["env"],
                          capture_output=True, text=True, timeout=60, **kw)
    return done.returncode, done.stdout, done.stderr


def _fill(world, argv: list[str]) -> list[str]:
    return [a.format(T=world["T"], run=world["run"], secret=world["secret"], lspci=world["lspci"])
            for a in argv]


def _check_bad_input(world, run, argv: list[str]) -> None:
    t = world["T"]
    before = _files(t)
    code, out, err = run(_fill(world, argv))
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("pvmatrix: error: "), err
    assert SECRET not in err + out
    assert _files(t) == before, "left behind: " + ", ".join(sorted(_files(t) ^ before))


@pytest.mark.parametrize("argv", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(world, in_process, argv):
    _check_bad_input(world, in_process, argv)


@pytest.mark.parametrize("argv", [c[1] for c in CASES if c[0] in IN_A_CHILD],
                         ids=[c[0] for c in CASES if c[0] in IN_A_CHILD])
def test_bad_input_through_the_console_entry_point(world, argv):
    """The same, in a real child process: what a user's shell sees."""
    _check_bad_input(world, functools.partial(_child, world, cwd=world["T"] / "work"), argv)


def test_a_spec_names_file_key_and_value(world, in_process):
    """An unknown hardware profile (once named only by its value) and an unsafe
    kernel name: the file, the key and the value."""
    t = world["T"]
    for name, key, value in [("unknown-hardware", "matrix.hardware", "'no-such-box'"),
                             ("unsafe-name", "kernel[0].name", "'../../escape'"),
                             ("no-kernels", "kernel", "[]"),
                             ("missing-ref", "kernel[0].source", "'no-such-ref'"),
                             ("secret-fragment", "kernel[0].fragments", "secret.txt"),
                             ("shadow-fragment", "kernel[0].fragments", "/etc/shadow"),
                             ("outside-hardware", "matrix.hardware", "outside the folders")]:
        code, out, err = in_process(["plan", str(t / "specs" / f"{name}.toml")])
        assert f"{t}/specs/{name}.toml: {key}: " in err and value in err, err


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs, filled up (root only; else skipped)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        (mnt / "results").mkdir()
        with open(mnt / "fill", "wb") as fh:
            try:
                fh.write(b"\0" * 128 * 1024)
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_is_one_line_and_leaves_no_half_index(world, full_disk):
    for argv in (["history", "x/", "--results", str(full_disk / "results")],
                 ["report", world["run"], "--results", str(world["T"] / "results"),
                  "-o", str(full_disk / "report.md")]):
        done = subprocess.run([sys.executable, "-m", "pvmatrix.cli", *argv], env=world["env"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("pvmatrix: error: no space left on device under "
                                      f"{full_disk}/"), done.stderr
        assert len(done.stderr.splitlines()) == 1
    assert not (full_disk / "results" / "index.sqlite").exists()   # it would never be rebuilt


def test_a_closed_pipe_ends_quietly(world):
    """`pvmatrix report ... | head`: the reader left; no traceback, SIGPIPE's exit code."""
    child = subprocess.Popen([sys.executable, "-m", "pvmatrix.cli", "report", world["run"],
                              "--format", "json", "--results", str(world["T"] / "results")],
                             env=world["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141 and err == "", err
