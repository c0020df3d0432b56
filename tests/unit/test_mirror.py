"""The Debian archive mirror: read from the host's apt sources (real files under
tests/fixtures/apt/), overridden by the spec's `mirror` and by --mirror, carried
to the tasks, keyed in the apt cache; a suite the mirror lacks and a malformed
URL are one-line input errors. No archive host is written in the project."""

import functools
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pvmatrix import aptsources, catalog, cli, settings
from pvmatrix.errors import UserError
from pvmatrix.matrix import spec
from pvmatrix.settings import Settings
from pvmatrix.sources import debian

APT = Path(__file__).resolve().parent.parent / "fixtures" / "apt"
REPO = Path(__file__).resolve().parents[2]
SUITES = catalog.names("suite")


def _etc(tmp_path: Path, files: dict[str, str]) -> Path:
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    for rel, text in files.items():
        (etc / rel).write_text(text)
    return etc


def test_the_deb822_file_of_this_host_gives_its_main_archive_not_security():
    found = aptsources.parse_deb822((APT / "debian.sources").read_text())
    assert [f.suites for f in found] == [("bookworm", "bookworm-updates"), ("bookworm-security",)]
    archive = aptsources.debian_archive(found, SUITES)
    assert archive == found[0].uris[0] and urlsplit(archive).path == "/debian"


def test_one_line_sources_skip_comments_options_and_security():
    found = aptsources.parse_one_line((APT / "sources.list").read_text())
    assert [f.types for f in found] == [("deb",)] * 3          # the deb-src lines are comments
    assert urlsplit(aptsources.debian_archive(found, SUITES)).path == "/debian"
    ours = aptsources.parse_one_line("deb [ arch=amd64 signed-by=/k.gpg ] file:///m sid main # x\n")
    assert ours[0].uris == ("file:///m",) and ours[0].suites == ("sid",)


def test_the_host_directory_is_read_in_apt_order_and_other_archives_are_ignored(tmp_path):
    etc = _etc(tmp_path, {"sources.list.d/google-cloud-sdk.list": (APT / "google-cloud-sdk.list").read_text(),
                          "sources.list.d/nodesource.sources": (APT / "nodesource.sources").read_text(),
                          "sources.list.d/debian.sources": (APT / "debian.sources").read_text()})
    main = aptsources.parse_deb822((APT / "debian.sources").read_text())[0].uris[0]
    assert aptsources.host_mirror(SUITES, etc) == main
    (etc / "sources.list").write_text((APT / "sources.list").read_text())   # read first
    assert aptsources.host_mirror(SUITES, etc) == \
        aptsources.parse_one_line((APT / "sources.list").read_text())[0].uris[0]


def test_no_debian_source_is_one_line_saying_how_to_give_one(tmp_path):
    disabled = (APT / "debian.sources").read_text().replace("Types: deb", "Enabled: no\nTypes: deb")
    etc = _etc(tmp_path, {"sources.list.d/debian.sources": disabled,
                          "sources.list.d/nodesource.sources": (APT / "nodesource.sources").read_text()})
    with pytest.raises(UserError) as err:
        catalog.mirror(etc)
    assert "no Debian archive" in str(err.value) and "--mirror URL" in str(err.value)
    assert "mirror = " in str(err.value) and "\n" not in str(err.value)


def test_this_hosts_own_configuration_is_the_default(private_cache):
    host = aptsources.debian_archive(aptsources.host_sources(), SUITES)
    if host is None:
        pytest.skip("this host has no Debian source")
    with settings.use(Settings.from_env()):
        assert catalog.mirror() == host


def _spec(tmp_path: Path, mirror: str | None) -> Path:
    path = tmp_path / "s.toml"
    head = f'mirror = "{mirror}"\n' if mirror else ""
    path.write_text(head + spec.DEFAULT.read_text())
    return path


def test_flag_over_spec_over_host(tmp_path, private_cache, monkeypatch):
    seen = []
    monkeypatch.setattr(debian, "listed", lambda name, suite: seen.append(catalog.mirror()))
    host = catalog.mirror()
    with settings.use(Settings.from_env()):
        s = spec.load(_spec(tmp_path, "file:///srv/spec-mirror/"))
        assert s.mirror == "file:///srv/spec-mirror"
        assert seen and set(seen) == {"file:///srv/spec-mirror"}      # its checks use it
        assert s.run_settings().mirror == "file:///srv/spec-mirror"
        assert spec.load(_spec(tmp_path, None)).run_settings().mirror == host
    with settings.use(Settings.from_env(mirror="http://127.0.0.1:9/flag")):
        seen.clear()
        assert spec.load(_spec(tmp_path, "file:///srv/spec-mirror")).run_settings().mirror == \
            "http://127.0.0.1:9/flag"
        assert set(seen) == {"http://127.0.0.1:9/flag"}


def test_the_chosen_mirror_travels_to_a_worker(private_cache):
    run = Settings.from_env(mirror="http://127.0.0.1:9/run")
    assert run.to_payload()["mirror"] == "http://127.0.0.1:9/run"
    worker = Settings.from_payload(run.to_payload())
    with settings.use(worker):
        assert catalog.mirror() == "http://127.0.0.1:9/run"


@pytest.mark.parametrize("url", ["htp://x/debian", "http:///debian", "debian", "http://a b/d",
                                 "file://", "http://h/debian?x=1"])
def test_a_malformed_mirror_is_one_line_before_any_work(tmp_path, url, capsys, private_cache):
    with pytest.raises(UserError):
        Settings.from_env(mirror=url)
    assert cli.main(["source", "debian:linux-source-6.1@bookworm", "--mirror", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mirror" in err[0] and "not a Debian mirror URL" in err[0]
    with pytest.raises(UserError, match=r"s\.toml: mirror: .* is not a Debian mirror URL"):
        spec.load(_spec(tmp_path, url.replace('"', "")))


@pytest.fixture
def empty_mirror(tmp_path):
    """An HTTP mirror that carries no suite at all."""
    (tmp_path / "www" / "debian").mkdir(parents=True)
    handler = functools.partial(_Quiet, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/debian"
    server.shutdown()
    server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.skipif(not shutil.which("apt-get"), reason="needs apt-get")
def test_a_suite_the_mirror_does_not_carry_is_one_line_naming_both(empty_mirror, private_cache,
                                                                    capsys):
    assert cli.main(["source", "debian:linux-source-6.1@bookworm", "--mirror", empty_mirror]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"the mirror {empty_mirror} does not carry Debian suite bookworm" in err[0]
    with settings.use(Settings.from_env(mirror=empty_mirror)):
        with pytest.raises(debian.NotCarried):
            debian.refresh("bookworm")
        # looking through every suite skips those the mirror lacks
        with pytest.raises(UserError, match="not found in suite"):
            debian.download("linux-source-6.1")


def test_two_mirrors_never_share_apt_lists(empty_mirror, private_cache):
    other = Path(private_cache.parent / "nothing").as_uri()
    for url in (empty_mirror, other):
        with settings.use(Settings.from_env(mirror=url)), pytest.raises(debian.NotCarried):
            debian.refresh("bookworm")
    a, b = debian.lists_dir("bookworm", empty_mirror), debian.lists_dir("bookworm", other)
    assert a != b and a.parent == b.parent
    assert f" {empty_mirror} bookworm " in (a / "sources.list").read_text()
    assert f" {other} bookworm " in (b / "sources.list").read_text()
    assert not (private_cache / "apt" / "bookworm" / "sources.list").exists()


# hosts of the Debian archive and its mirrors: a URL of a dotted host serving /debian,
# or a *.debian.org/.net archive host
MIRROR_HOST = re.compile(r"\b(deb|ftp|ftp\d*\.[a-z]{2}|security|snapshot|archive|httpredir|"
                         r"cdn-fastly|mirrors?)\.debian\.(org|net)\b|(ftp|https?)://[A-Za-z0-9-]+"
                         r"(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(:\d+)?/debian")


def test_no_archive_host_is_written_in_the_project():
    """Verbatim real files under tests/fixtures/ are the one exception."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    named = [f"{f}:{n}" for f in files if f and not f.startswith("tests/fixtures/")
             and (REPO / f).is_file()
             for n, line in enumerate((REPO / f).read_text(errors="replace").splitlines(), 1)
             if MIRROR_HOST.search(line)]
    assert named == []
    assert MIRROR_HOST.search((APT / "debian.sources").read_text())     # the pattern does find one
