"""Kernel ladders without the network: trixie-backports', bookworm's and
bookworm-backports' real apt-cache output (tests/fixtures/debian/apt/, captured
with pvmatrix's own apt wrapper) stands in for the suites' lists. Enumeration, the version range, the spec's rows,
the bisection's search over the real ladder with a stand-in boot, the
two-stage hand-off to commit bisection, and every bad input."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import git
import pytest

from pvmatrix import cli
from pvmatrix.bisect import ladder as bisect_ladder, probe
from pvmatrix.bisect.probe import BAD, GOOD, SKIP, CellRun, CellSpec
from pvmatrix.errors import UserError
from pvmatrix.kernel import Kernel
from pvmatrix.matrix import spec
from pvmatrix.sources import debian, ladder

APT = Path(__file__).resolve().parent.parent / "fixtures" / "debian" / "apt"
SUITE = "trixie-backports"
GENERIC = f"debian:linux-image-amd64@{SUITE}"


@pytest.fixture
def apt(monkeypatch):
    """trixie-backports' lists as captured: `apt-cache pkgnames` and `madison`
    answered from the fixture (madison only for the names asked), nothing fetched."""
    asked = []

    def fake(suite, *args, tool="apt-get"):
        assert (APT / f"{suite}.madison").is_file() and tool == "apt-cache"
        asked.append(args[0])
        if args[0] == "pkgnames":
            out = (APT / f"{suite}.pkgnames").read_text()
        else:
            wanted = set(args[1:])
            out = "".join(line + "\n" for line in (APT / f"{suite}.madison").read_text().splitlines()
                          if line.split(" | ")[0] in wanted)
        return subprocess.CompletedProcess([tool, *args], 0, out, "")

    monkeypatch.setattr(debian, "_apt", fake)
    monkeypatch.setattr(debian, "refresh", lambda suite: None)
    return asked


# -- enumeration and range --------------------------------------------------

def test_suites_joined_by_plus_make_one_ladder_each_rung_from_its_own_suite(apt):
    # a stable release and its backports: 6.1 then 6.12 (Xen 4.14's toolstack
    # loads the first as a PV guest, not the second)
    rungs = ladder.ladder("debian:linux-image-amd64@bookworm+bookworm-backports")
    assert {r.suite for r in rungs[:2]} == {"bookworm"}
    assert {r.suite for r in rungs[2:]} == {"bookworm-backports"}
    assert [str(r.upstream) for r in rungs[:3]] == ["6.1.170", "6.1.176", "6.12.43"]
    assert rungs[2].spec == "debian:linux-image-6.12.43+deb12-amd64@bookworm-backports"
    assert len(rungs) == 14
    assert all(a.upstream <= b.upstream for a, b in zip(rungs, rungs[1:]))  # 6.12.90 twice
    with pytest.raises(UserError, match="bookworm\\+bookworm-backports; it has 14 ABI"):
        ladder.ladder("debian:linux-image-amd64@bookworm+bookworm-backports", ">=8")
    with pytest.raises(UserError, match="unknown suite.*nosuch|nosuch"):
        ladder.check("debian:linux-image-amd64@bookworm+nosuch")


def test_trixie_backports_carries_29_generic_abis_oldest_first(apt):
    rungs = ladder.ladder(GENERIC)
    assert len(rungs) == 29
    assert [str(r.upstream) for r in rungs[:4]] == ["6.16.3", "6.16.12", "6.17.8", "6.17.13"]
    assert str(rungs[-1].upstream) == "7.3.4"
    assert all(a.upstream < b.upstream for a, b in zip(rungs, rungs[1:]))  # 6.16.12 after 6.16.3
    first = rungs[0]
    assert (first.package, first.abi, first.version) == \
        ("linux-image-6.16.3+deb13-amd64", "6.16.3+deb13", "6.16.3-1~bpo13+1")
    assert first.spec == f"debian:linux-image-6.16.3+deb13-amd64@{SUITE}"
    assert first.tag == "v6.16.3"
    # the cloud flavour is its own ladder; rt and -dbg packages are in neither
    cloud = ladder.ladder(f"debian:linux-image-cloud-amd64@{SUITE}")
    assert len(cloud) == 29 and all(r.package.endswith("-cloud-amd64") for r in cloud)
    assert not any("-rt-" in r.package or r.package.endswith("-dbg") for r in rungs + cloud)
    assert apt == ["pkgnames", "madison"] * 2


def test_upstream_version_and_tag_from_the_debian_version():
    assert str(ladder.upstream_of("6.18.9-1~bpo13+1")) == "6.18.9"
    assert str(ladder.upstream_of("6.1.128-1")) == "6.1.128"         # bookworm's ABI 6.1.0-31
    assert str(ladder.upstream_of("1:7.3~rc7-1~exp1")) == "7.3rc7"
    assert ladder.upstream_of("not-a-version-1") is None
    # experimental's release candidate (as apt-cache madison shows it), before 7.3 and 7.3.4
    r = ladder.rungs_of([("linux-image-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
                         ("linux-image-7.3-amd64", "7.3~rc7-1~exp1"),
                         ("linux-image-6.1.0-31-amd64", "6.1.128-1")], "sid", "amd64")
    assert [(x.abi, x.tag) for x in r] == [("6.1.0-31", "v6.1.128"), ("7.3", "v7.3-rc7"),
                                           ("7.3.4+deb13", "v7.3.4")]


def test_a_range_keeps_the_rungs_it_allows(apt):
    got = ladder.ladder(GENERIC, ">=6.18,<7.1")
    assert [str(r.upstream) for r in got] == [
        "6.18.5", "6.18.9", "6.18.12", "6.18.15", "6.19.6", "6.19.8", "6.19.10", "6.19.11",
        "6.19.13", "6.19.14", "7.0.4", "7.0.7", "7.0.9", "7.0.10", "7.0.12", "7.0.13"]
    assert [str(r.upstream) for r in ladder.ladder(GENERIC, "~=7.2.0")] == \
        ["7.2.6", "7.2.9", "7.2.11", "7.2.12"]
    assert len(ladder.ladder(GENERIC, "!=7.3.4")) == 28


@pytest.mark.parametrize("package,versions,expected", [
    (GENERIC, ">=6.18,<<7", "versions '>=6.18,<<7': expected version specifiers"),
    (GENERIC, "6.18", "versions '6.18': expected version specifiers"),
    (GENERIC, "", "versions '': expected version specifiers"),
    (f"debian:linux-image-6.18.9+deb13-amd64@{SUITE}", None,
     "a ladder starts from a flavour's metapackage"),
    ("debian:linux-image-amd64", None, "a ladder needs its suite"),
    ("debian:linux-image-amd64@nosuch", None, "unknown Debian suite 'nosuch'"),
])
def test_a_malformed_ladder_is_an_error_before_apt(apt, package, versions, expected):
    with pytest.raises(UserError, match=expected.replace("[", r"\[").replace("(", r"\(")):
        ladder.ladder(package, versions)
    assert apt == []


def test_a_range_that_matches_nothing_names_the_suite_and_what_it_has(apt):
    with pytest.raises(UserError) as err:
        ladder.ladder(GENERIC, ">=8")
    assert str(err.value) == (
        "versions '>=8' matches no amd64 kernel of trixie-backports; it has 29 ABI(s), "
        "6.16.3 to 7.3.4 (series 6.16, 6.17, 6.18, 6.19, 7.0, 7.1, 7.2, 7.3)")
    with pytest.raises(UserError, match="carries no linux-image-ABI-armhf-lpae kernel"):
        ladder.ladder(f"debian:linux-image-armhf-lpae@{SUITE}")


# -- the spec: one row per rung ---------------------------------------------

def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ladder.toml"
    path.write_text('[matrix]\nroles = ["dom0"]\nxen = ["4.17"]\n' + body)
    return path


def test_a_spec_ladder_becomes_one_row_per_abi(apt, tmp_path):
    s = spec.load(_spec(tmp_path, f'[[kernel]]\nname = "bpo"\npackage = "{GENERIC}"\n'
                                  'versions = ">=6.18,<6.19"\n'
                                  '[[kernel]]\nname = "all"\npackage = "debian:linux-image-'
                                  f'cloud-amd64@{SUITE}"\nladder = true\n'))
    names = [k.name for k in s.kernels]
    assert names[:4] == ["bpo-6.18.5", "bpo-6.18.9", "bpo-6.18.12", "bpo-6.18.15"]
    assert len(names) == 4 + 29 and names[4] == "all-6.16.3" and names[-1] == "all-7.3.4"
    assert s.kernel("bpo-6.18.9").package == f"debian:linux-image-6.18.9+deb13-amd64@{SUITE}"
    assert all(k.prebuilt and not k.ladder for k in s.kernels)
    assert all(spec.KERNEL_NAME.fullmatch(n) for n in names)


def test_a_ladder_row_can_host_the_domus(apt, tmp_path):
    path = tmp_path / "ladder.toml"
    path.write_text('[matrix]\nroles = ["dom0"]\ndom0_fallback = "bpo-7.3.4"\n'
                    f'[[kernel]]\nname = "bpo"\npackage = "{GENERIC}"\nversions = ">=7.3"\n')
    s = spec.load(path)
    assert [k.name for k in s.kernels] == ["bpo-7.3.4"] and s.dom0_fallback == "bpo-7.3.4"


def test_two_rungs_of_one_upstream_version_are_named_by_abi():
    rungs = ladder.rungs_of([("linux-image-6.1.0-30-amd64", "6.1.128-1"),
                             ("linux-image-6.1.0-31-amd64", "6.1.128-2")], "bookworm", "amd64")
    assert ladder.row_names("bw", rungs) == ["bw-6.1.0-30", "bw-6.1.0-31"]


@pytest.mark.parametrize("body,expected", [
    ('[[kernel]]\nname = "k"\nsource = "dir:/x"\nladder = true\n',
     "kernel[0]: ladder and versions take a prebuilt package"),
    (f'[[kernel]]\nname = "k"\npackage = "{GENERIC}"\nladder = false\nversions = ">=7"\n',
     "kernel[0]: versions makes a ladder; drop ladder = false"),
    (f'[[kernel]]\nname = "k"\npackage = "{GENERIC}"\nladder = "yes"\n',
     "kernel[0].ladder: expected true or false"),
    (f'[[kernel]]\nname = "k"\npackage = "{GENERIC}"\nversions = ">=6.18,<<7"\n',
     "kernel[0].package: versions '>=6.18,<<7': expected version specifiers"),
    ('[[kernel]]\nname = "k"\npackage = "debian:linux-image-amd64"\nladder = true\n',
     "kernel[0].package: debian:linux-image-amd64: a ladder needs its suite"),
    (f'[[kernel]]\nname = "k"\npackage = "{GENERIC}"\nversions = ">=8"\n',
     "kernel[0]: versions '>=8' matches no amd64 kernel of trixie-backports; it has 29 ABI(s)"),
    (f'[[kernel]]\nname = "k-7.3.4"\npackage = "{GENERIC}"\n'
     f'[[kernel]]\nname = "k"\npackage = "{GENERIC}"\nversions = ">=7.3"\n',
     "kernel: a ladder's row 'k-7.3.4' is also another kernel's name"),
    (f'[[kernel]]\nname = "{"k" * 60}"\npackage = "{GENERIC}"\nversions = ">=7.3"\n',
     "kernel[0].name: row 'kkk"),
])
def test_spec_ladder_errors_name_file_and_key(apt, tmp_path, body, expected):
    path = _spec(tmp_path, body)
    with pytest.raises(UserError) as err:
        spec.load(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value), str(err.value)


# -- the bisection, with a stand-in boot over the real ladder -----------------

class Boots:
    """Stands in for the kernel download and QEMU: rungs from index FIRST_BAD of
    the whole ladder on fail (as a kernel that panics does), FLAKY ones fail
    then pass. Counts kernels."""

    def __init__(self, monkeypatch, first_bad: int, flaky: frozenset[int] = frozenset(),
                 always: str | None = None, run: str = "r"):
        self.rungs = ladder.ladder(GENERIC)
        self.first_bad, self.flaky, self.always, self.run = first_bad, flaky, always, run
        self.booted: list[str] = []
        self.calls: dict[str, int] = {}
        monkeypatch.setattr(probe, "load_kernel", self.load)
        monkeypatch.setattr(probe, "_boot", self.boot)

    def load(self, spec: str) -> Kernel:
        # the content id: another RUN is other packages (its boots are not remembered)
        return Kernel(spec, identity=f"sha256:{self.run}:{spec}")

    def boot(self, kernel: Kernel, cell, dom0, profile) -> CellRun:
        i = next(n for n, r in enumerate(self.rungs) if r.spec == kernel.label)
        self.calls[kernel.label] = self.calls.get(kernel.label, 0) + 1
        if self.calls[kernel.label] == 1:
            self.booted.append(self.rungs[i].abi)
        if self.always:
            return CellRun(self.always, self.always, [], 10.0)
        if i in self.flaky:
            return CellRun("fail" if self.calls[kernel.label] % 2 else "pass", "flaky", [], 10.0)
        return CellRun("fail" if i >= self.first_bad else "pass", "judged", [], 10.0)


CELL = CellSpec("dom0", "4.17", "default")


def test_search_is_binary_with_skips_passed_over():
    for n in range(2, 40):
        for first_bad in range(1, n):
            asked = []
            lo, hi, between = bisect_ladder.search(
                n, lambda i: asked.append(i) or (BAD if i >= first_bad else GOOD))
            assert (lo, hi, between) == (first_bad - 1, first_bad, [])
            assert len(asked) <= math.ceil(math.log2(n - 1)) if n > 2 else not asked
    # every rung between the ends skipped: the first bad one is among them
    assert bisect_ladder.search(5, lambda i: SKIP) == (0, 4, [1, 2, 3])
    # a skip at the middle: its neighbour is asked instead
    answers = {4: SKIP, 5: GOOD, 6: BAD}
    assert bisect_ladder.search(9, lambda i: answers.get(i, GOOD if i < 6 else BAD))[:2] == (5, 6)


@pytest.mark.parametrize("first_bad", range(1, 29))
def test_ladder_bisection_boots_at_most_log2_plus_2_and_remembers(apt, monkeypatch,
                                                                    private_cache, first_bad):
    boots = Boots(monkeypatch, first_bad, run=f"r{first_bad}")
    r = bisect_ladder.bisect(GENERIC, None, CELL, say=lambda m: None)
    rungs = boots.rungs
    assert (r.last_good, r.first_bad) == (rungs[first_bad - 1].package, rungs[first_bad].package)
    assert r.boot_bound == math.ceil(math.log2(29)) + 2 == 7
    assert r.kernels_booted == len(boots.booted) <= r.boot_bound
    assert boots.booted[:2] == [rungs[0].abi, rungs[-1].abi]          # both ends first
    # the next bisection of the same ladder boots nothing: every answer is remembered
    again = bisect_ladder.bisect(GENERIC, None, CELL, say=lambda m: None)
    assert again.kernels_booted == 0 and len(boots.booted) == r.kernels_booted
    assert again.first_bad == r.first_bad
    assert all(s.boot_cached and s.boot_s == 0 for s in again.endpoints + again.steps)


def test_a_flaky_rung_is_passed_over(apt, monkeypatch, private_cache):
    boots = Boots(monkeypatch, first_bad=20, flaky=frozenset({14}))
    r = bisect_ladder.bisect(GENERIC, None, CELL, say=lambda m: None)
    assert r.first_bad == boots.rungs[20].package
    assert any(s.status == "flaky" and s.outcome == SKIP for s in r.steps)


def test_ends_that_do_not_differ_are_an_error(apt, monkeypatch, private_cache):
    boots = Boots(monkeypatch, first_bad=0, always="pass")
    with pytest.raises(UserError) as err:
        bisect_ladder.bisect(GENERIC, ">=7.0", CELL, say=lambda m: None)
    assert str(err.value) == ("ladder bisection: the ends do not differ: 7.0.4+deb13 and "
                              "7.3.4+deb13 are both pass in cell dom0/xen-4.17/default")
    assert len(boots.booted) == 2
    # a range of one ABI: known before any boot
    with pytest.raises(UserError, match="the ends do not differ: it holds one ABI, 6.18.9"):
        bisect_ladder.bisect(GENERIC, "==6.18.9", CELL, say=lambda m: None)
    assert len(boots.booted) == 2


def _tagged_repo(path: Path) -> dict[str, str]:
    """Mainline v6.18 -> v6.19, stable v6.18.5 ... v6.18.15 on v6.18, v6.19.6 on v6.19."""
    repo = git.Repo.init(path)
    shas = {}

    def commit(tag: str) -> None:
        (path / "VERSION").write_text(tag + "\n")
        repo.index.add(["VERSION"])
        shas[tag] = repo.index.commit(tag).hexsha
        repo.create_tag(tag)

    commit("v6.18")
    base = repo.head.commit
    commit("v6.19")
    commit("v6.19.6")
    repo.git.checkout("-q", "-b", "stable-6.18", base.hexsha)
    for tag in ("v6.18.5", "v6.18.9", "v6.18.12", "v6.18.15"):
        commit(tag)
    return shas


def test_two_stage_hands_the_two_upstream_versions_to_commit_bisection(apt, monkeypatch,
                                                                         private_cache, tmp_path):
    shas = _tagged_repo(tmp_path / "linux")
    Boots(monkeypatch, first_bad=8)     # 6.19.6 (rung 8) breaks; bisected: 6.18.5 .. 6.19.6
    handed = {}

    class Found:
        def to_dict(self):
            return {"first_bad": "c" * 40, "subject": "xen: the culprit", "could_be": []}

    from pvmatrix.bisect import commits

    def fake_bisect(repo, good, bad, cell, recipe=None, dom0=None, say=print):
        handed.update(repo=repo, good=good, bad=bad, cell=cell)
        return Found()

    monkeypatch.setattr(commits, "bisect", fake_bisect)
    r = bisect_ladder.bisect(GENERIC, ">=6.18.5,<6.19.8", CELL, repo=tmp_path / "linux",
                             say=lambda m: None)
    assert (r.last_good, r.first_bad) == ("linux-image-6.18.15+deb13-amd64",
                                          "linux-image-6.19.6+deb13-amd64")
    # v6.18.15 is no ancestor of v6.19.6: the bisection starts where 6.19 grew from
    assert handed == {"repo": tmp_path / "linux", "good": shas["v6.18"], "bad": shas["v6.19.6"],
                      "cell": CELL}
    assert r.commits["good_tag"] == "v6.18.15" and r.commits["bad_tag"] == "v6.19.6"
    assert bisect_ladder.good_ref(tmp_path / "linux", shas["v6.18.5"], shas["v6.18.9"]) == \
        shas["v6.18.5"]


def test_two_stage_whose_upstream_ends_both_pass_says_the_break_is_debians(
        apt, monkeypatch, private_cache, capfd, tmp_path):
    # stage two built upstream's bad end with the recipe and it passed (as Xen
    # 4.14 and Debian's 6.12 did for real: the compression is Debian's config)
    _tagged_repo(tmp_path / "linux")
    Boots(monkeypatch, first_bad=8)
    from pvmatrix.bisect import commits
    bad_end = probe.Step("b" * 40, GOOD, "pass", "every expected marker seen")

    def ends_alike(repo, good, bad, cell, recipe=None, dom0=None, say=print):
        probe.check_end(bad_end, BAD, f"end {bad[:12]}", cell)

    monkeypatch.setattr(commits, "bisect", ends_alike)
    code, out, err = _main(capfd, "bisect", "--ladder", GENERIC, "--versions", ">=6.18.5,<6.19.8",
                           "--cell", "dom0", "--repo", str(tmp_path / "linux"),
                           "-o", str(tmp_path / "r.json"))
    assert code == 1, err                       # no first bad commit
    assert "first bad ABI: linux-image-6.19.6+deb13-amd64" in out
    assert "commits v6.18.15..v6.19.6: upstream's bad end, built with the recipe, passes too: " \
           "no upstream commit breaks the cell" in out
    import json
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["first_bad"] == "linux-image-6.19.6+deb13-amd64"
    assert "is not bad: cell dom0/xen-4.17/default is pass" in saved["commits"]["ends_alike"]
    # a good end that is not good is still the user's recipe's fault: one line, exit 2
    with pytest.raises(UserError) as err_:
        probe.check_end(probe.Step("a" * 40, BAD, "fail", "no console"), GOOD, "end a", CELL)
    assert type(err_.value) is UserError


def test_a_git_tree_without_the_ladders_tags_is_an_error_before_any_boot(apt, monkeypatch,
                                                                          private_cache, tmp_path):
    _tagged_repo(tmp_path / "linux")
    boots = Boots(monkeypatch, first_bad=1)
    with pytest.raises(UserError) as err:
        bisect_ladder.bisect(GENERIC, ">=6.18,<7.0", CELL, repo=tmp_path / "linux",
                             say=lambda m: None)
    assert "lacks the upstream tag(s) of the ladder: v6.19.8, v6.19.10, v6.19.11, v6.19.13, " \
           "v6.19.14 (fetch" in str(err.value)
    assert boots.booted == []


# -- the command line ---------------------------------------------------------

def _main(capfd, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.parametrize("versions,expected", [
    (">=8", "versions '>=8' matches no amd64 kernel of trixie-backports; it has 29 ABI(s)"),
    ("==7.3.4", "the ends do not differ: it holds one ABI, 7.3.4+deb13"),
    ("<=6.18,>=7", "versions '<=6.18,>=7' matches no amd64 kernel"),
])
def test_ladder_bad_input_is_one_line_exit_2_before_any_boot(apt, monkeypatch, private_cache,
                                                             capfd, versions, expected):
    boots = Boots(monkeypatch, first_bad=1)
    code, out, err = _main(capfd, "bisect", "--ladder", GENERIC, "--versions", versions,
                           "--cell", "dom0")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("pvmatrix: error: ") and expected in err, err
    assert boots.booted == []


def test_bisect_ladder_command_prints_the_first_bad_abi(apt, monkeypatch, private_cache,
                                                        capfd, tmp_path):
    Boots(monkeypatch, first_bad=7)                 # 6.18.15
    code, out, err = _main(capfd, "bisect", "--ladder", GENERIC, "--versions", ">=6.18,<7.1",
                           "--cell", "dom0", "-o", str(tmp_path / "r.json"))
    assert code == 0, err
    assert "first bad ABI: linux-image-6.18.15+deb13-amd64 (last good: " \
           "linux-image-6.18.12+deb13-amd64)" in out
    assert "bound ceil(log2 N) + 2 = 6" in out and "prebuilt" in out
    import json
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["first_bad"] == "linux-image-6.18.15+deb13-amd64"
    assert saved["kernels_booted"] <= saved["boot_bound"] == 6
