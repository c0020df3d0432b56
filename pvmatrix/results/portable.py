"""Published output names no place on the host that made it: a run's records,
pages and reproducers travel (a git repository, a web server) and are read on
other machines.

  - a path into the cache is written `$PVMATRIX_CACHE/...` (a place relative to
    whichever cache reads it; Run.outcomes() expands it back for `rerun`);
  - a path into the results directory is written relative to it;
  - a log is named by its copy in the run (logs/DIGEST.log.gz), never by where
    the boot wrote it; files only the host had (boot dirs, Xen binaries, cpio
    archives) are named by digest only.

host_paths() is the check: publishing refuses output in which it finds any.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from ..digest import short as short_sha256

CACHE_TOKEN = "$PVMATRIX_CACHE"

# where a host's own files live (guest paths in serial logs, /dev/kvm in host
# facts, /usr/bin in a reason, are not the host's layout and are not matched)
HOST_PATH = re.compile(r"(?<![\w.$~-])/(?:root|home|work|tmp|var/tmp|srv|mnt)/[^\s\"'<>|,;)]*")

# record keys that name a host file with no published copy: dropped (each has
# a digest beside it)
HOST_ONLY = {"boot_dir", "binary", "cpio", "qemu_script"}

# a log longer than this is cut to its evidence window (head, tail, and the
# lines around each evidence line), then compressed
CUT_OVER = 4000
HEAD, TAIL, AROUND = 150, 300, 40


@dataclass
class Roots:
    """The host places publishing rewrites: the cache, the results directory."""
    cache: Path
    results: Path
    extra: list[Path] = field(default_factory=list)

    def text(self, s: str) -> str:
        """S with every host root rewritten (see the module docstring)."""
        for root in [self.cache, *self.extra]:
            s = s.replace(str(root).rstrip("/") + "/", CACHE_TOKEN + "/").replace(str(root), CACHE_TOKEN)
        res = str(self.results.resolve()).rstrip("/") + "/"
        return s.replace(res, "")

    def markers(self) -> list[str]:
        return [str(p) for p in (self.cache, self.results.resolve(), *self.extra)
                if len(str(p)) > 1]


def host_paths(text: str, roots: Roots | None = None) -> list[str]:
    """The host paths in TEXT (empty when it is portable)."""
    found = [m.group(0) for m in HOST_PATH.finditer(text)]
    if roots is not None:
        found += [m for m in roots.markers() if m in text and m not in "".join(found)]
    return found


def scrub(data, roots: Roots):
    """DATA (a record as JSON) with HOST_ONLY keys dropped and every string portable."""
    if isinstance(data, dict):
        return {k: scrub(v, roots) for k, v in data.items()
                if not (k in HOST_ONLY and isinstance(v, str) and v.startswith("/"))}
    if isinstance(data, list):
        return [scrub(v, roots) for v in data]
    if isinstance(data, str):
        return roots.text(data)
    return data


def evidence_lines(record: dict, log: str) -> set[int]:
    """The line numbers RECORD's verdict quotes from LOG."""
    return {e.get("line") or 0 for e in (record.get("verdict") or {}).get("evidence") or []
            if e.get("log") == log and e.get("line")}


def cut(lines: list[str], keep: set[int]) -> list[str]:
    """LINES cut to the evidence window: the head, the tail and AROUND lines either
    side of each line number (1-based) in KEEP; each cut says what it left out."""
    if len(lines) <= CUT_OVER:
        return lines
    wanted = set(range(1, HEAD + 1)) | set(range(len(lines) - TAIL + 1, len(lines) + 1))
    for n in keep:
        wanted |= set(range(max(1, n - AROUND), n + AROUND + 1))
    out, gap = [], 0
    for n, line in enumerate(lines, 1):
        if n in wanted:
            if gap:
                out.append(f"[pvmatrix: lines {n - gap}-{n - 1} cut]\n")
                gap = 0
            out.append(line)
        else:
            gap += 1
    return out


def packed_log(text: str, keep: set[int], roots: Roots) -> tuple[str, bytes]:
    """A log as published: (file name by digest, gzip bytes), cut and made portable."""
    body = roots.text("".join(cut(text.splitlines(keepends=True), keep))).encode()
    name = short_sha256(body) + ".log.gz"
    return name, gzip.compress(body, compresslevel=9, mtime=0)
