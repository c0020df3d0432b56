"""The pvmatrix command line: a thin layer over the library.

The command modules (this one and each stage's cli.py) import the stages inside
the command functions, not at the top: `pvmatrix --help` and `pvmatrix list` then
start without loading Dask, Docker or the analyzer. Nowhere else is an import
function-local (tests/unit/test_imports.py checks it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from . import __version__, catalog, exitcodes, settings
from .errors import PvmError, UnknownName, UserError, full_disk


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="git:PATH@REF, tarball:PATH, dir:PATH or debian:PACKAGE[@SUITE]")
    p.add_argument("--base", default="tinyconfig",
                   help="make target (tinyconfig, defconfig, ...) or a config file")
    p.add_argument("-f", "--fragment", action="append", default=[],
                   help="Kconfig fragment: a name under kconfigs/ or a path (repeatable)")
    p.add_argument("--toolchain", default="auto", help="toolchain name, or auto by kernel version")
    p.add_argument("-j", "--jobs", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the build manifest as JSON")
    p.add_argument("--store", metavar="URL", help="artifact store: a path, file://, s3://BUCKET/PREFIX "
                   "or any fsspec URL (default: $PVMATRIX_STORE, else the cache's artifacts/)")


def cmd_build(args) -> int:
    from .build import build
    if args.store:
        from .artifacts import open_store
        open_store(args.store).check()
    start = time.monotonic()
    built = build(args.source, args.base, args.fragment, args.toolchain, args.jobs)
    took = time.monotonic() - start
    if args.json:
        print(json.dumps(dict(built.manifest(), cached=built.cached), indent=2))
        return 0
    how = "from cache" if built.cached else f"built in {built.build_s:.0f} s"
    print(f"{built.version} [{built.toolchain}] {how} ({took:.1f} s): {built.url}")
    if not built.dir.exists():
        print(f"  (in a remote store; fetched into {built.dir} when a command needs the files)")
    for name in ("bzImage", "vmlinux", "config", "System.map", "modules", "build.log"):
        if (built.dir / name).exists():
            print(f"  {name:<11} {built.dir / name}")
    _print_unmet(built.unmet)
    return 0


def _print_unmet(unmet: list[dict]) -> None:
    if not unmet:
        print("  every option the fragments asked for is set")
        return
    from tabulate import tabulate
    print(f"  {len(unmet)} option(s) asked for did not stick:")
    rows = [(u["symbol"], u["wanted"], u["got"], u["fragment"], u["reason"]) for u in unmet]
    print(tabulate(rows, headers=["option", "wanted", "got", "fragment", "why"], disable_numparse=True))


def cmd_toolchains(args) -> int:
    from .build.toolchains import all_toolchains
    from .catalog import table
    print(table("toolchains"))
    if args.prepare is not None:
        from .build import engine, toolchains
        wanted = set(args.prepare) or {"all"}
        unknown = wanted - set(all_toolchains()) - {"all"}
        if unknown:
            raise UnknownName("toolchain", min(unknown), all_toolchains())
        for tc in all_toolchains().values():
            if "all" in wanted or tc.name in wanted:
                print(toolchains.ensure_image(engine.client(), tc))
    return 0


def cmd_list(args) -> int:
    print(catalog.table(args.what))
    return 0


def cmd_source(args) -> int:
    from .sources import resolve
    src = resolve(args.source)
    print(f"{src.spec}: Linux {src.version}, {src.identity}\n  tree: {src.tree}")
    return 0


# the commands that may fetch Debian packages: they take --mirror
FETCHING = ("build", "source", "toolchains", "plan", "run", "rerun", "boot", "analyze", "bisect",
            "bisect-config")
MIRROR_HELP = ("Debian archive mirror URL (default: the spec's `mirror`, else the Debian archive "
               "of this host's apt sources)")


class Parser(argparse.ArgumentParser):
    """argparse, with a bad flag stated in one line like every other input error."""

    def error(self, message: str):
        self.exit(2, f"pvmatrix: error: {self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="pvmatrix", description=__doc__)
    p.add_argument("--version", action="version", version=f"pvmatrix {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a kernel (or find it in the cache)")
    _build_args(b)
    b.set_defaults(func=cmd_build)
    s = sub.add_parser("source", help="resolve a kernel source and show its identity")
    s.add_argument("source")
    s.set_defaults(func=cmd_source)
    t = sub.add_parser("toolchains", help="list toolchains; --prepare builds their images")
    t.add_argument("--prepare", nargs="*", metavar="NAME", help="names (default: all)")
    t.set_defaults(func=cmd_toolchains)
    from .matrix.cli import register as register_matrix
    register_matrix(sub)
    from .analyze.cli import register
    register(sub)
    from .boot.cli import register as register_boot
    register_boot(sub)
    from .bisect.cli import register as register_bisect
    register_bisect(sub)
    ls = sub.add_parser("list", help="list a catalog: what varies (roles, Xen versions, ...)")
    ls.add_argument("what", choices=list(catalog.TABLES))
    ls.set_defaults(func=cmd_list)
    for name in FETCHING:
        sub.choices[name].add_argument("--mirror", metavar="URL", help=MIRROR_HELP)
    return p


def _terminate(signum, frame):
    raise KeyboardInterrupt   # SIGTERM, SIGHUP clean up like Ctrl-C: containers, QEMU, temp dirs


def _check(args: argparse.Namespace) -> None:
    """Flags argparse cannot check by type alone."""
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise UserError(f"-j {jobs}: expected 1 or more jobs")


def _quiet_pipe() -> int:
    """stdout's reader left (`pvmatrix ... | head`): exit quietly, as other tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())        # the flush at exit must not fail again
    return 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    args = parser().parse_args(argv)
    try:
        _check(args)
        with settings.use(settings.Settings.from_env(store=getattr(args, "store", None),
                                                     mirror=getattr(args, "mirror", None))):
            return args.func(args)
    except BrokenPipeError:
        return _quiet_pipe()
    except OSError as exc:
        if (fault := full_disk(exc)) is None:
            raise
        return _error(fault)
    except PvmError as exc:
        return _error(exc)
    except KeyboardInterrupt:
        print("pvmatrix: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED


def _error(exc: PvmError) -> int:
    print(f"pvmatrix: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
    return exc.exit_code          # by its class: exitcodes.TABLE


if __name__ == "__main__":
    sys.exit(main())
