"""Parsing a boot's serial log into attributed lines, markers and crash signs.

The inits print one fact per line, "PVM key=value ...". dom0 relays command
output as "PVMOUT tag| line" and each guest's console as "PVMG name| line".
Every line gets a region: "host" (Xen, the kernel QEMU or Xen booted, its
init) or the name of the guest it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .. import catalog

MARKER = re.compile(r"PVM ((?:[A-Za-z0-9_.-]+=\S*\s*)+)")
RELAY_GUEST = re.compile(r"PVMG (\S+)\| ?(.*)")
RELAY_OUT = re.compile(r"PVMOUT (\S+)\| ?(.*)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc")



@dataclass
class Line:
    no: int                  # 1-based line number in the serial log
    text: str                # the line as logged (cleaned), relay prefix removed
    region: str = "host"     # "host" or a guest name
    fields: dict[str, str] = field(default_factory=dict)  # a marker's key=values
    tag: str | None = None   # relayed command output: its tag
    seen_s: float | None = None  # when the harness first saw it (live boots)

    @property
    def is_marker(self) -> bool:
        return bool(self.fields)

    @property
    def is_xen(self) -> bool:
        return self.region == "host" and self.text.lstrip().startswith("(XEN)")


def parse_fields(text: str) -> dict[str, str]:
    """The key=value pairs of the marker in TEXT, or {}."""
    m = MARKER.search(text)
    if not m:
        return {}
    return dict(tok.split("=", 1) for tok in m.group(1).split())


def clean(raw: str) -> str:
    return ANSI.sub("", raw).replace("\r", "").rstrip()


def parse_line(no: int, raw: str, seen_s: float | None = None) -> Line:
    text = clean(raw)
    m = RELAY_GUEST.search(text)
    if m:
        inner = m.group(2)
        return Line(no, inner, m.group(1), parse_fields(inner), seen_s=seen_s)
    m = RELAY_OUT.search(text)
    if m:
        return Line(no, m.group(2), "host", {}, tag=m.group(1), seen_s=seen_s)
    fields = parse_fields(text)
    region = fields.get("guest", "host") if fields else "host"
    return Line(no, text, region, fields, seen_s=seen_s)


def parse(text: str, seen: dict[int, float] | None = None) -> list[Line]:
    """All lines of a serial log; SEEN maps line numbers to harness times."""
    seen = seen or {}
    return [parse_line(i, raw, seen.get(i)) for i, raw in enumerate(text.split("\n"), 1)]


def parse_file(path: Path, seen: dict[int, float] | None = None) -> list[Line]:
    return parse(Path(path).read_text(errors="replace"), seen)


def matches(fields: dict[str, str], pattern: str, subst: dict[str, str] | None = None) -> bool:
    """Whether a marker carries every key=value of PATTERN ("key=*": any value)."""
    if not fields:
        return False
    for tok in pattern.format(**(subst or {})).split():
        key, _, want = tok.partition("=")
        if key not in fields or (want != "*" and fields[key] != want):
            return False
    return True


def find(lines: list[Line], pattern: str, subst: dict[str, str] | None = None) -> Line | None:
    return next((ln for ln in lines if matches(ln.fields, pattern, subst)), None)


@lru_cache(maxsize=None)
def death_pattern(kind: str) -> re.Pattern:
    """One regular expression for every death of KIND in data/deaths.toml
    (panic, oops, xen, domain)."""
    pats = [d.pattern for d in catalog.all("death").values() if d.kind == kind]
    return re.compile("|".join(f"(?:{p})" for p in pats) or r"(?!)")


def death_kind(line: Line) -> str | None:
    """The kind of death LINE announces: "xen" or "domain" for Xen's own lines
    (a Xen crash wins), "panic" or "oops" for the kernel's, "halt" for either
    halting the machine; None for none."""
    if line.is_marker or line.tag:
        return None
    kinds = ("xen", "domain", "halt") if line.is_xen else ("panic", "oops", "halt")
    return next((k for k in kinds if death_pattern(k).search(line.text)), None)


def crash_signs(lines: list[Line]) -> dict[str, list[Line]]:
    """Lines showing a Xen crash, a kernel panic, an oops or a halt, by kind (a
    domain crash is judged per guest: see verdicts._domain_crash)."""
    out: dict[str, list[Line]] = {"xen": [], "panic": [], "oops": [], "halt": []}
    for ln in lines:
        kind = death_kind(ln)
        if kind in out:
            out[kind].append(ln)
    return out
