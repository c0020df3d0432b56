"""The `analyze` and `hw` subcommands: thin wrappers over pvmatrix.analyze.

Imports of pvmatrix stages are function-local here, to keep CLI start-up fast
(see pvmatrix/cli.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:
    """Add `analyze` and `hw` to the argparse subparsers object SUB."""
    a = sub.add_parser("analyze", help="static Xen capability and hardware coverage of a kernel")
    a.add_argument("kernel", help="builder artifacts dir, linux-image .deb, debian:PACKAGE[@SUITE] "
                   "(a metapackage is followed), directory, bzImage or vmlinux")
    a.add_argument("--hardware", metavar="PROFILE",
                   help="shipped profile name (see `pvmatrix list hardware`) or a profile TOML file")
    a.add_argument("--json", action="store_true", help="print the analysis as JSON (schema pvmatrix.analyze/1)")
    a.add_argument("-j", "--jobs", type=int, default=2, help="processes for the module scan (default 2)")
    a.set_defaults(func=cmd_analyze)

    h = sub.add_parser("hw", help="hardware profiles")
    hsub = h.add_subparsers(dest="hw_command", required=True)
    ls = hsub.add_parser("list", help="list the shipped profiles")
    ls.set_defaults(func=cmd_hw_list)
    show = hsub.add_parser("show", help="print a profile as TOML")
    show.add_argument("profile")
    show.set_defaults(func=cmd_hw_show)
    imp = hsub.add_parser("import", help="make a profile from lspci -nn / -nvmm output or a /sys/bus/pci copy")
    imp.add_argument("source", help="a file with lspci output ('-' for stdin), or a /sys/bus/pci directory")
    imp.add_argument("--name", help="profile name (default: the source's file name)")
    imp.add_argument("-o", "--output", help="write the TOML here instead of stdout")
    imp.set_defaults(func=cmd_hw_import)

    w = sub.add_parser("which", help="which recorded kernel drives a machine's storage and "
                       "network and passes a role (from the recorded runs)")
    w.add_argument("--hardware", required=True, metavar="DUMP",
                   help="the machine: lspci -nn/-vvnn/-nnvmm output, a /sys/bus/pci copy, "
                   "or a shipped machine's name")
    w.add_argument("--role", help="the role to pass (default: Xen's host role, dom0)")
    w.add_argument("--xen", help="the Xen release (default: any)")
    w.add_argument("--results", type=Path, default=Path("results"),
                   help="results directory (default: ./results)")
    w.set_defaults(func=cmd_which)


def cmd_which(args: argparse.Namespace) -> int:
    from ..report.which import render, which
    print(render(which(args.hardware, args.results, args.role, args.xen)))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from . import analyze
    result = analyze(args.kernel, hardware=args.hardware, jobs=args.jobs)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print_analysis(result)
    return 0


def print_analysis(result) -> None:
    from tabulate import tabulate
    data = result.as_dict()
    kernel = data["kernel"]
    print(f"{kernel['input']}: Linux {result.release or '?'}")
    print(f"  config: {kernel['config_source'] or 'none found'}; modules: {kernel['modules'] or 'none'}")
    if data["modules"]:
        m = data["modules"]
        print(f"  {m['scanned']} modules ({m['from_cache']} from cache), {m['pci_aliases']} PCI aliases,"
              f" {len(m['unreadable'])} unreadable")
    rows = [(c["name"], _yes(c["supported"]), c["form"] or "", "; ".join(c["evidence"]))
            for c in data["capabilities"]]
    print()
    print(tabulate(rows, headers=["capability", "", "form", "evidence"], disable_numparse=True))
    if data["hardware"]:
        rows = [(d["name"][:44], d["ids"], d["qemu"] or "", d["status"], d["driver"] or "",
                 d["evidence"][0] if d["evidence"] else "") for d in data["hardware"]["devices"]]
        print(f"\nhardware profile {data['hardware']['profile']}:")
        print(tabulate(rows, headers=["device", "ids", "qemu", "status", "driver", "evidence"], disable_numparse=True))
    for problem in data["problems"]:
        print(f"warning: {problem}", file=sys.stderr)


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def cmd_hw_list(args: argparse.Namespace) -> int:
    from ..catalog import table
    print(table("hardware"))
    return 0


def cmd_hw_show(args: argparse.Namespace) -> int:
    from .hardware import load_profile
    sys.stdout.write(load_profile(args.profile).to_toml())
    return 0


def cmd_hw_import(args: argparse.Namespace) -> int:
    from ..paths import write_output
    from .hwimport import import_profile
    if args.source == "-":
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as tmp:
            tmp.write(sys.stdin.read())
            tmp.flush()
            profile = import_profile(Path(tmp.name), args.name or "imported")
    else:
        profile = import_profile(Path(args.source), args.name)
    text = profile.to_toml()
    if args.output:
        write_output(args.output, text)
        print(f"{len(profile.devices)} devices -> {args.output}")
    else:
        sys.stdout.write(text)
    return 0
