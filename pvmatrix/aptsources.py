"""The host's own apt sources, read to find the Debian archive mirror: no archive
host is named in pvmatrix. Both formats are read: one-line entries
(/etc/apt/sources.list, sources.list.d/*.list) and deb822 stanzas
(sources.list.d/*.sources, `Enabled: no` skipped).

The mirror of Debian's main archive is the URI of the first `deb` source whose
suites include a Debian suite name (the catalog's, or an alias such as stable):
bookworm-security and bookworm-updates are not among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from .errors import UserError

HOST_APT = Path("/etc/apt")
ALIASES = ("oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental")
SCHEMES = ("http", "https", "ftp", "file")
HOW = "give one with --mirror URL or `mirror = \"URL\"` at the top of the spec"


@dataclass(frozen=True)
class AptSource:
    """One source of the host's apt configuration."""
    types: tuple[str, ...]         # deb, deb-src
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    where: str                     # the file it is in


def parse_one_line(text: str, where: str = "") -> list[AptSource]:
    """The sources of a one-line file (`deb [OPTIONS] URI SUITE COMPONENT...`)."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "[" in line:                  # options may hold spaces: [ arch=amd64 signed-by=... ]
            head, _, rest = line.partition("[")
            line = head + rest.partition("]")[2]
        words = line.split()
        if len(words) >= 3:
            found.append(AptSource((words[0],), (words[1],), (words[2],), tuple(words[3:]), where))
    return found


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()


def parse_deb822(text: str, where: str = "") -> list[AptSource]:
    """The enabled sources of a deb822 .sources file."""
    return [AptSource(tuple(f.get("types", "").split()), tuple(f.get("uris", "").split()),
                      tuple(f.get("suites", "").split()), tuple(f.get("components", "").split()),
                      where)
            for f in _stanzas(text) if f.get("enabled", "yes").lower() not in ("no", "false")]


def host_sources(etc: Path = HOST_APT) -> list[AptSource]:
    """Every source of the apt configuration under ETC, in apt's order."""
    found: list[AptSource] = []
    files = [etc / "sources.list"] + sorted((etc / "sources.list.d").glob("*"))
    for path in files:
        if path.suffix not in (".list", ".sources") or not path.is_file():
            continue
        try:
            text = path.read_text()
        except OSError:
            continue
        parse = parse_deb822 if path.suffix == ".sources" else parse_one_line
        found += parse(text, str(path))
    return found


def debian_archive(found: list[AptSource], suites: Iterable[str]) -> str | None:
    """The URI of FOUND that serves Debian's main archive, or None."""
    names = set(suites) | set(ALIASES)
    for src in found:
        if "deb" in src.types and names & set(src.suites) and src.uris:
            return src.uris[0].rstrip("/")
    return None


def host_mirror(suites: Iterable[str], etc: Path = HOST_APT) -> str:
    """The Debian archive of the host's apt configuration; a UserError when it has none."""
    url = debian_archive(host_sources(etc), suites)
    if url is None:
        raise UserError(f"no Debian archive among the host's apt sources ({etc}/sources.list, "
                        f"{etc}/sources.list.d/): {HOW}")
    return check_url(url, f"{etc}/sources.list.d")


def check_url(url: str, where: str) -> str:
    """URL, if it can be a Debian mirror (else a UserError naming WHERE it came from)."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in SCHEMES and not any(c.isspace() for c in url) \
            and not parts.query and not parts.fragment \
            and bool(parts.hostname if parts.scheme != "file" else parts.path)
    except ValueError:
        ok = False
    if not ok:
        raise UserError(f"{where}: {url!r} is not a Debian mirror URL "
                        f"(expected {', '.join(s + '://...' for s in SCHEMES)})")
    return url.rstrip("/")
