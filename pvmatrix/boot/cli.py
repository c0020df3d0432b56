"""`pvmatrix boot KERNEL --role ROLE`: run cells and show their verdicts. For a
distribution's CI (`pvmatrix boot debian:PACKAGE@SUITE`): plain lines when
stdout is not a terminal, a final summary line per role, `--junit FILE`, and
the exit codes of exitcodes.py (`--strict`: broken and not-run roles too).

Imports of pvmatrix stages are function-local here, to keep CLI start-up fast
(see pvmatrix/cli.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import catalog
from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("boot", help="boot a kernel for real (bare metal, Xen dom0, domU) "
                                    "and judge each role from the serial log")
    p.add_argument("kernel", help="a build's artifacts dir, an unpacked kernel package, "
                                  "or debian:linux-image-X[@SUITE]")
    p.add_argument("--role", action="append", choices=catalog.names("role"),
                   help="role to run (repeatable; default: all)")
    p.add_argument("--xen", help=f"Xen release ({', '.join(catalog.names('xen'))}; default "
                                 f"{catalog.default('xen').name}) or a xen binary")
    p.add_argument("--hardware", help="hardware profile (name or TOML) giving the QEMU devices")
    p.add_argument("--device", action="append", metavar="QEMU_DEVICE",
                   help="emulated device instead of a profile (repeatable; see `pvmatrix "
                        "list devices`; default: the default profile's)")
    p.add_argument("--guest-kernel", help="domU kernel, if not the dom0 kernel")
    p.add_argument("--parallel", action="store_true",
                   help="start the domUs together (faster; PVH guests were flaky that way "
                        "under TCG)")
    p.add_argument("--json", action="store_true", help="print the cells as JSON")
    p.add_argument("--junit", type=Path, metavar="FILE",
                   help="also write the roles as JUnit XML (a test case per role)")
    p.add_argument("--strict", action="store_true",
                   help="also exit non-zero for a role broken (exit 3) or not run (exit 4); "
                        "see README: Exit codes")
    p.set_defaults(func=cmd_boot)


def _devices(args) -> tuple[list[str] | None, object]:
    if args.hardware and args.device:
        raise UserError("give --hardware or --device, not both")
    if not args.hardware:
        return args.device, None
    from ..analyze.hardware import load_profile
    profile = load_profile(args.hardware)
    names = profile.qemu_devices
    if not names:
        raise UserError(f"hardware profile {args.hardware}: no device names a QEMU device")
    return names, profile


def cmd_boot(args) -> int:
    from . import devices, xen
    from .kernel import load
    names, profile = _devices(args)
    devices.plan(names)                  # an unknown device or Xen: an error before any work
    version = xen.check(args.xen)
    _check_output(args.junit)
    kernel = load(args.kernel)
    guest = load(args.guest_kernel) if args.guest_kernel else None
    results, cells = boot_roles(args, kernel, guest, version, names, profile)
    if args.json:
        print(json.dumps([c.to_dict() for c in cells], indent=2, default=str))
    elif sys.stdout.isatty():
        _print(cells)
    return report(results, args, sys.stdout)


def boot_roles(args, kernel, guest, version: str, names, profile):
    """Each requested role's result (ci.RoleResult, in the order asked) and the
    harness cells: one boot per group of roles, each stopped only by its own error."""
    from . import ci
    from .harness import run_cells
    from ..errors import Interrupted, PvmError
    wanted = list(dict.fromkeys(args.role or catalog.names("role")))
    to_boot, cannot = ci.split(wanted, version)
    results = ci.not_run(cannot, version, kernel.label) if cannot else []
    groups = [[r for r in to_boot if not catalog.get("role", r).xen]]
    groups += catalog.xen_boots([r for r in to_boot if catalog.get("role", r).xen])
    cells = []
    for group in (g for g in groups if g):
        try:
            got = run_cells(kernel, group, version, names, guest, profile, parallel=args.parallel)
        except (UserError, Interrupted):     # bad input, or stopped: the command stops
            raise
        except PvmError as exc:      # this boot's roles get its status; the others still boot
            results += ci.stopped(group, version, kernel.label, exc)
            continue
        cells += got
        results += [ci.RoleResult.of(c) for c in got]
    results.sort(key=lambda r: wanted.index(r.role))
    return results, cells


def report(results, args, out) -> int:
    """What a CI job reads: plain lines (not on a terminal, not --json), the
    summary per role, the JUnit file; returns the exit code."""
    from . import ci
    if not args.json and not out.isatty():
        print("\n".join(ci.plain_lines(results)), file=out)
    print("\n".join(ci.summary(results, args.strict)), file=out if not args.json else sys.stderr)
    if args.junit:
        from ..paths import write_output
        write_output(args.junit, junit_xml(results, args.kernel))
    return ci.exit_code(results, args.strict)


def junit_xml(results, kernel: str) -> str:
    """RESULTS as JUnit XML: one suite (the kernel argument), a case per role."""
    from ..report import junit
    cases = [junit.Case(kernel, f"{kernel}/{r.role}" + (f"/xen-{r.xen}" if r.xen else ""),
                         f"boot.{r.role}", str(r.verdict.status), r.verdict.reason,
                         r.verdict.detail, tuple(e.text for e in r.verdict.evidence[:12]),
                         float(r.seconds or 0))
             for r in results]
    return junit.document(f"pvmatrix boot {kernel}", cases)


def _check_output(path: Path | None) -> None:
    """--junit names a file, before any boot (its folder is made when written)."""
    if path is not None and path.is_dir():
        raise UserError(f"--junit {path}: is a directory, expected a file name")


def _print(cells) -> None:
    from tabulate import tabulate
    rows = [(c.role, c.kernel, c.xen or "-", c.verdict.detail,
             f"{c.seconds:.1f}" if c.seconds is not None else "-",
             f"{c.boot.wall_s:.1f}", f"{c.boot.peak_rss_mb:.0f}", c.verdict.reason[:70])
            for c in cells]
    print(tabulate(rows, headers=["role", "kernel", "xen", "verdict", "role s", "boot s",
                                  "peak MB", "why"], disable_numparse=True))
    for c in cells:
        for name, hw in c.devices.items():
            word = "ok" if hw.get("ok") else "FAILED"
            print(f"  {c.role}: {name} at {hw['pci']}: {word}: {hw.get('reason')}"
                  + (f" ({hw['frame_evidence']})" if hw.get("frame_evidence") else ""))
        if not c.verdict.ok:
            print(f"  {c.role}: {c.verdict.detail}: {c.verdict.reason}")
            for e in c.verdict.evidence[:8]:
                print(f"    {'L' + str(e.line) if e.line else '--':>6} {e.text[:110]}")
    if cells:
        print(f"  logs: {sorted({str(c.boot.dir) for c in cells})}")
