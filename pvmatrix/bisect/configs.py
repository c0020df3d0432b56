"""Config bisection: the smallest set of option changes that flips a cell.

Between a good and a bad config of one source, the difference is a set of
option changes. Delta debugging (Zeller's ddmin) narrows it to a set from
which no single chunk can be dropped: each tried set is applied to the good
config as a fragment and resolved by the kernel's olddefconfig (so Kconfig
dependencies hold), and a tried set that resolves to a config already tried
is answered from that config, not rebuilt. Each build reuses the warm output
tree nearest to its config (see warm.py), so a step rebuilds only what the
changed options touch.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import configure
from ..errors import KernelFault, NotSupported, UserError
from .probe import BAD, GOOD, SKIP, CellSpec, Step, check_cell, check_end, probe, to_dict
from .. import sources
from .. import build


@dataclass
class Result:
    source: str
    cell: str
    differences: dict[str, list[str]]      # symbol -> [good value, bad value]
    culprits: dict[str, list[str]] = field(default_factory=dict)
    endpoints: list[Step] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    builds: int = 0                        # kernels actually compiled
    collapsed: int = 0                     # tried sets that resolved to a config already tried

    def to_dict(self) -> dict:
        return to_dict(self)


def _options(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise UserError(f"config {path} does not exist")
    return configure.parse_config(configure.normalized(path.read_text(errors="replace")), str(path))


def differences(good: Path, bad: Path) -> dict[str, tuple[str, str]]:
    """Every option whose value differs ('n' when unset or absent)."""
    g, b = _options(good), _options(bad)
    return {s: (g.get(s, "n"), b.get(s, "n")) for s in sorted(set(g) | set(b))
            if g.get(s, "n") != b.get(s, "n")}


def _fragment(changes: dict[str, str], where: Path) -> Path:
    fh = tempfile.NamedTemporaryFile("w", suffix=".config", dir=where, delete=False)
    with fh:
        for sym, value in changes.items():
            fh.write(f"# {sym} is not set\n" if value == "n" else f"{sym}={value}\n")
    return Path(fh.name)


def ddmin(changes: list[str], fails) -> list[str]:
    """A 1-minimal subset of CHANGES for which FAILS(subset) is True (Zeller's
    ddmin); FAILS(CHANGES) must be True. FAILS may return None (cannot tell):
    such a subset is treated as not failing."""
    n = 2
    while len(changes) >= 2:
        size = len(changes) / n
        chunks = [changes[round(i * size):round((i + 1) * size)] for i in range(n)]
        for chunk in chunks:
            if fails(chunk):
                changes, n = chunk, 2
                break
        else:
            for i in range(n):
                rest = [c for j, ch in enumerate(chunks) if j != i for c in ch]
                if n > 2 and fails(rest):
                    changes, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(changes):
                    break
                n = min(2 * n, len(changes))
    return changes


def bisect(source_spec: str, good: Path, bad: Path, cell: CellSpec, toolchain: str = "auto",
           dom0: str | None = None, say=print) -> Result:
    """Narrow the difference between GOOD and BAD (config files of SOURCE_SPEC)
    to the smallest set of option changes that makes CELL stop passing."""
    good, bad = Path(good), Path(bad)
    diff = differences(good, bad)
    if not diff:
        raise UserError(f"configs {good} and {bad} set every option alike")
    check_cell(cell)
    source = sources.resolve(source_spec)
    result = Result(source_spec, str(cell), {s: list(v) for s, v in diff.items()})
    with tempfile.TemporaryDirectory(prefix="pvmatrix-bisect-config-") as scratch:
        _search(result, source, good, bad, diff, cell, toolchain, dom0, say, Path(scratch))
    return result


def _search(result: Result, source, good: Path, bad: Path, diff: dict, cell: CellSpec,
            toolchain: str, dom0: str | None, say, scratch: Path) -> None:
    by_config: dict[str, Step] = {}

    def attempt(label: str, base: Path, changes: dict[str, str]) -> Step:
        frag = [str(_fragment(changes, scratch))] if changes else []
        try:
            b = build.build_source(source, str(base), frag, toolchain)
        except (KernelFault, NotSupported) as exc:      # as in probe.try_kernel
            return Step(label, SKIP, "build failed", str(exc), [str(exc)])
        if b.config_sha256 in by_config:
            seen = by_config[b.config_sha256]
            result.collapsed += 1
            return Step(label, seen.outcome, seen.status, seen.reason, seen.evidence, b.key,
                        note=f"resolved to the config of {seen.label}: not rebuilt")
        s = probe(label, b, cell, dom0)
        result.builds += s.built
        by_config[b.config_sha256] = s
        return s

    for label, base, want in (("good", good, GOOD), ("bad", bad, BAD)):
        say(f"bisect-config: {label} config {base}: building and running {cell}")
        s = attempt(label, base, {})
        result.endpoints.append(s)
        check_end(s, want, f"config {base}", cell)

    def fails(subset: list[str]) -> bool:
        changes = {sym: diff[sym][1] for sym in subset}
        label = ", ".join(f"{s}={v}" for s, v in changes.items())
        s = attempt(label, good, changes)
        result.steps.append(s)
        say(f"bisect-config: {label[:120]}: {s.outcome} ({s.status}{'; ' + s.note if s.note else ''})")
        return s.outcome == BAD

    culprits = ddmin(list(diff), fails)
    result.culprits = {s: list(diff[s]) for s in culprits}
