"""`pvmatrix boot KERNEL --role ROLE`: run cells and show their verdicts.

Imports of pvmatrix stages are function-local here, to keep CLI start-up fast
(see pvmatrix/cli.py).
"""

from __future__ import annotations

import json

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
    from .harness import run_cells
    from .kernel import load
    names, profile = _devices(args)
    devices.plan(names)                  # an unknown device or Xen: an error before any work
    xen.check(args.xen)
    kernel = load(args.kernel)
    guest = load(args.guest_kernel) if args.guest_kernel else None
    cells = run_cells(kernel, list(args.role or catalog.names("role")), args.xen, names, guest,
                      profile, parallel=args.parallel)
    if args.json:
        print(json.dumps([c.to_dict() for c in cells], indent=2, default=str))
    else:
        _print(cells)
    return 0 if all(c.verdict.ok for c in cells) else 1


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
