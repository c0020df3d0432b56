"""`pvmatrix bisect` and `pvmatrix bisect-config`.

Imports of pvmatrix stages are function-local here, to keep CLI start-up fast
(see pvmatrix/cli.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..errors import UserError
from ..paths import cache_dir, write_output


def _say(msg: str) -> None:
    print(f"pvmatrix: {msg}", file=sys.stderr, flush=True)


def _cell_args(p) -> None:
    from .. import catalog
    p.add_argument("--cell", required=True,
                   help=f"the cell: a role ({', '.join(catalog.names('role'))}) or a matrix cell id")
    p.add_argument("--xen", help=f"Xen release (default {catalog.default('xen').name})")
    p.add_argument("--hardware", default="default", help="hardware profile (default: default)")
    p.add_argument("--dom0", metavar="KERNEL",
                   help="a kernel to host domU cells (an artifact dir of pvmatrix build, or "
                        "debian:linux-image-...); default: the kernel under test")
    p.add_argument("--toolchain", default="auto")
    p.add_argument("-o", "--output", help="write the result as JSON to this file")


def _dom0(spec: str | None) -> str | None:
    """--dom0, checked before any build starts."""
    if spec and not spec.startswith("debian:"):
        path = Path(spec).resolve()
        if not (path / "bzImage").exists() and not (path / "vmlinux").exists():
            raise UserError(f"--dom0 {spec}: no bzImage or vmlinux there (a pvmatrix artifact "
                            "directory, or debian:linux-image-...)")
        return str(path)
    return spec


def _check_output(output: str | None) -> None:
    """-o's directory must exist before hours of bisection, not after."""
    if output and not Path(output).resolve().parent.is_dir():
        raise UserError(f"-o {output}: directory {Path(output).resolve().parent} does not exist")
    if output and Path(output).is_dir():
        raise UserError(f"-o {output}: a directory, not a file")


def _save(result: dict, output: str | None, kind: str) -> Path:
    path = Path(output) if output else \
        cache_dir("bisect", "results") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_output(path, json.dumps(result, indent=2))
    return path


def _steps_table(steps, prebuilt: bool = False) -> str:
    from tabulate import tabulate
    rows = [(s.label[:60], s.outcome, s.status,
             "prebuilt" if prebuilt else "built" if s.built else "cached", f"{s.build_s:.0f}",
             "remembered" if s.boot_cached else f"{s.boot_s:.0f}", (s.note or s.reason)[:60])
            for s in steps]
    return tabulate(rows, headers=["tried", "answer", "cell", "kernel", "build s", "boot s", ""],
                    disable_numparse=True)


def _modes(args) -> None:
    """A ladder takes its ends from the suite; a git tree needs both refs."""
    if args.ladder and (args.good or args.bad):
        raise UserError("--ladder takes its ends from the suite (narrow them with --versions), "
                        "not --good/--bad")
    if not args.ladder and not (args.good and args.bad):
        raise UserError("bisect needs --good and --bad (commits of --repo), or --ladder")
    if args.versions is not None and not args.ladder:
        raise UserError("--versions narrows a --ladder")


def cmd_bisect(args) -> int:
    _check_output(args.output)
    _modes(args)
    if args.ladder:
        return _ladder(args)
    from .commits import Recipe, bisect
    from .probe import CellSpec
    cell = CellSpec.parse(args.cell, args.xen, args.hardware)
    r = bisect(args.repo or ".", args.good, args.bad, cell,
               Recipe(args.base, args.fragment, args.toolchain), _dom0(args.dom0), say=_say)
    return _commit_report(r, args.output)


def _commit_report(r, output: str | None) -> int:
    print(_steps_table(r.endpoints + r.steps))
    print(f"\n{len(r.steps)} step(s) for {r.candidates} candidate commit(s) "
          f"(log2 bound {r.log2_bound})")
    if r.first_bad:
        print(f"first bad commit: {r.first_bad} {r.subject}")
        good, bad = r.endpoints[0], next((s for s in r.steps if s.label == r.first_bad),
                                          r.endpoints[1])
        print(f"  good ({good.label[:12]}): {good.status}: {good.reason}")
        print(f"  bad  ({bad.label[:12]}): {bad.status}: {bad.reason}")
        for e in bad.evidence:
            print(f"    {e}")
    else:
        print("no single first bad commit: skipped commits hide it; it is one of:")
        for c in r.could_be:
            print(f"  {c}")
    print(f"result: {_save(r.to_dict(), output, 'bisect')}")
    return 0 if r.first_bad else 1


def _commits_line(c: dict) -> str:
    """What stage two of a ladder bisection found between the two upstream tags."""
    head = f"commits {c['good_tag']}..{c['bad_tag']}: "
    if c.get("ends_alike"):
        return (head + "upstream's bad end, built with the recipe, passes too: no upstream "
                "commit breaks the cell; the ABI broke in how Debian built it (config, "
                f"patches or packaging): {c['ends_alike']}")
    if c["first_bad"]:
        return head + f"first bad commit {c['first_bad']} {c['subject']}"
    return head + f"skipped commits hide it: {' '.join(x[:12] for x in c['could_be'])}"


def _ladder(args) -> int:
    """`pvmatrix bisect --ladder`: the first ABI that breaks the cell, then (with
    --repo) the first commit between the two upstream versions."""
    from .commits import Recipe
    from .ladder import bisect
    from .probe import CellSpec
    cell = CellSpec.parse(args.cell, args.xen, args.hardware)
    r = bisect(args.ladder, args.versions, cell, _dom0(args.dom0), args.repo,
               Recipe(args.base, args.fragment, args.toolchain), say=_say)
    print(_steps_table(r.endpoints + r.steps, prebuilt=True))
    print(f"\n{r.kernels_booted} kernel(s) booted, {len(r.endpoints + r.steps)} answer(s) for "
          f"{len(r.rungs)} ABI(s) (bound ceil(log2 N) + 2 = {r.boot_bound})")
    if r.first_bad:
        print(f"first bad ABI: {r.first_bad} (last good: {r.last_good})")
    else:
        print("no single first bad ABI: skipped rungs hide it; it is one of:")
        for p in r.could_be:
            print(f"  {p}")
    if r.commits:
        print(_commits_line(r.commits))
    print(f"result: {_save(r.to_dict(), args.output, 'bisect-ladder')}")
    found = r.commits["first_bad"] if r.commits else r.first_bad
    return 0 if found else 1


def cmd_bisect_config(args) -> int:
    _check_output(args.output)
    from .configs import bisect
    from .probe import CellSpec
    cell = CellSpec.parse(args.cell, args.xen, args.hardware)
    r = bisect(args.source, Path(args.good), Path(args.bad), cell, args.toolchain,
               _dom0(args.dom0), say=_say)
    print(_steps_table(r.endpoints + r.steps))
    print(f"\n{len(r.differences)} option(s) differ; {len(r.steps)} step(s), {r.builds} "
          f"kernel(s) compiled, {r.collapsed} tried set(s) resolved to a config already tried")
    print("smallest set of changes that flips the cell:")
    for sym, (g, b) in r.culprits.items():
        print(f"  {sym}: {g} (good) -> {b} (bad)")
    bad = r.endpoints[1]
    print(f"  bad: {bad.status}: {bad.reason}")
    for e in bad.evidence:
        print(f"    {e}")
    print(f"result: {_save(r.to_dict(), args.output, 'bisect-config')}")
    return 0


def register(sub) -> None:
    b = sub.add_parser("bisect", help="find the first commit of a git tree, or the first "
                                      "kernel ABI of a Debian suite (--ladder), that breaks a cell")
    b.add_argument("--repo", help="the git tree (default: the current directory); with --ladder, "
                                  "go on to bisect its commits between the two upstream versions")
    b.add_argument("--good", help="a ref where the cell passes")
    b.add_argument("--bad", help="a later ref where it does not")
    b.add_argument("--ladder", metavar="PACKAGE",
                   help="bisect the prebuilt kernels of a suite, oldest to newest, e.g. "
                        "debian:linux-image-amd64@trixie-backports (nothing is built)")
    b.add_argument("--versions", metavar="RANGE",
                   help="the ladder's upstream versions, as PEP 440 specifiers: '>=6.18,<7.1'")
    b.add_argument("--base", default="tinyconfig", help="config base (as for pvmatrix build)")
    b.add_argument("-f", "--fragment", action="append", default=[], help="config fragment")
    _cell_args(b)
    b.set_defaults(func=cmd_bisect)
    c = sub.add_parser("bisect-config",
                       help="narrow two configs' difference to the options that flip a cell")
    c.add_argument("--source", required=True, help="kernel source (as for pvmatrix build)")
    c.add_argument("--good", required=True, help="config file where the cell passes")
    c.add_argument("--bad", required=True, help="config file where it does not")
    _cell_args(c)
    c.set_defaults(func=cmd_bisect_config)
