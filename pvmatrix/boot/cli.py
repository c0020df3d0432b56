"""`pvmatrix boot KERNEL --role ROLE`: run cells and show their verdicts."""

from __future__ import annotations

import json

from ..errors import PvmError

ALL = ("baremetal", "dom0", "domU-pv", "domU-pvh")


def register(sub) -> None:
    p = sub.add_parser("boot", help="boot a kernel for real (bare metal, Xen dom0, domU) "
                                    "and judge each role from the serial log")
    p.add_argument("kernel", help="a build's artifacts dir, an unpacked kernel package, "
                                  "or debian:linux-image-X[@SUITE]")
    p.add_argument("--role", action="append", choices=ALL,
                   help="role to run (repeatable; default: all four)")
    p.add_argument("--xen", default="4.17", help="Xen version (4.14, 4.17, 4.20) or a xen binary")
    p.add_argument("--hardware", help="hardware profile (name or TOML) giving the QEMU devices")
    p.add_argument("--device", action="append", metavar="QEMU_DEVICE",
                   help="emulated device instead of a profile (repeatable; "
                        "default: e1000e, ich9-ahci)")
    p.add_argument("--guest-kernel", help="domU kernel, if not the dom0 kernel")
    p.add_argument("--parallel", action="store_true",
                   help="start the domUs together (faster; PVH guests were flaky that way "
                        "under TCG)")
    p.add_argument("--json", action="store_true", help="print the cells as JSON")
    p.set_defaults(func=cmd_boot)


def _devices(args) -> tuple[list[str] | None, object]:
    if args.hardware and args.device:
        raise PvmError("give --hardware or --device, not both")
    if not args.hardware:
        return args.device, None
    from ..analyze.hardware import load_profile
    profile = load_profile(args.hardware)
    names = [d.qemu for d in profile.devices if d.qemu]
    if not names:
        raise PvmError(f"hardware profile {args.hardware}: no device names a QEMU device")
    return names, profile


def cmd_boot(args) -> int:
    from .harness import run_cells
    from .kernel import load
    names, profile = _devices(args)
    kernel = load(args.kernel)
    guest = load(args.guest_kernel) if args.guest_kernel else None
    cells = run_cells(kernel, list(args.role or ALL), args.xen, names, guest, profile,
                      parallel=args.parallel)
    if args.json:
        print(json.dumps([c.to_dict() for c in cells], indent=2, default=str))
    else:
        _print(cells)
    return 0 if all(c.verdict.ok for c in cells) else 1


def _print(cells) -> None:
    from tabulate import tabulate
    rows = [(c.role, c.kernel, c.xen or "-", c.verdict.status,
             f"{c.seconds:.1f}" if c.seconds is not None else "-",
             f"{c.boot.wall_s:.1f}", f"{c.boot.peak_rss_mb:.0f}", c.verdict.reason[:70])
            for c in cells]
    print(tabulate(rows, headers=["role", "kernel", "xen", "verdict", "role s", "boot s",
                                  "peak MB", "why"]))
    for c in cells:
        for name, hw in c.devices.items():
            extra = ""
            if "disk_read" in hw:
                extra = f", disk {'read' if hw['disk_read'] else 'not read'}"
            if hw["netif"]:
                extra += f", netif {' '.join(hw['netif'])}"
            print(f"  {c.role}: {name} at {hw['pci']}: driver {hw['driver'] or 'none'}{extra}")
        if not c.verdict.ok:
            print(f"  {c.role}: {c.verdict.status}: {c.verdict.reason}")
            for e in c.verdict.evidence[:8]:
                print(f"    {'L' + str(e.line) if e.line else '--':>6} {e.text[:110]}")
    if cells:
        print(f"  logs: {sorted({str(c.boot.dir) for c in cells})}")
