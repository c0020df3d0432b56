"""Parsing a boot's serial log into attributed lines, markers and crash signs.

The inits print one fact per line, "PVM key=value ...". dom0 relays command
output as "PVMOUT tag| line" and each guest's console as "PVMG name| line".
Every line gets a region: "host" (Xen, the kernel QEMU or Xen booted, its
init) or the name of the guest it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"PVM ((?:[A-Za-z0-9_.-]+=\S*\s*)+)")
RELAY_GUEST = re.compile(r"PVMG (\S+)\| ?(.*)")
RELAY_OUT = re.compile(r"PVMOUT (\S+)\| ?(.*)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc")

# Crash signs (searched in a line's text). Xen's own: only on "(XEN)" lines.
XEN_CRASH = re.compile(r"Panic on CPU|Xen BUG at|FATAL (PAGE FAULT|TRAP)|Xen call trace"
                       r"|Hardware Dom0 crashed|Dom0 crashed|Reboot in five seconds")
PANIC = re.compile(r"Kernel panic - not syncing")
OOPS = re.compile(r"\bOops[:\s]|\bBUG: |general protection fault|unable to handle "
                  r"(kernel )?(page fault|NULL pointer)|kernel BUG at")


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


def crash_signs(lines: list[Line]) -> dict[str, list[Line]]:
    """Lines showing a Xen crash, a kernel panic or an oops, by kind."""
    out: dict[str, list[Line]] = {"xen": [], "panic": [], "oops": []}
    for ln in lines:
        if ln.is_marker or ln.tag:
            continue
        if ln.is_xen:
            if XEN_CRASH.search(ln.text):
                out["xen"].append(ln)
        elif PANIC.search(ln.text):
            out["panic"].append(ln)
        elif OOPS.search(ln.text):
            out["oops"].append(ln)
    return out
