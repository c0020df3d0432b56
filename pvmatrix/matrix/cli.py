"""The matrix subcommands: plan, run, rerun, report, export, compare, history.

Imports of pvmatrix stages are function-local here, to keep CLI start-up fast
(see pvmatrix/cli.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

RESULTS_HELP = "results directory (default: ./results)"
STRICT_HELP = ("also exit non-zero for a cell broken (exit 3) or not run (exit 4); see README: "
               "Exit codes")


def register(sub) -> None:
    p = sub.add_parser("plan", help="show the cells of a spec without running them")
    p.add_argument("spec", nargs="?", default=None, help="matrix spec (default: the shipped one)")
    p.set_defaults(func=cmd_plan)

    r = sub.add_parser("run", help="run the matrix of a spec (default: the shipped one)")
    r.add_argument("spec", nargs="?", default=None)
    r.add_argument("--resume", action="store_true", help="continue the last unfinished run of the spec, "
                        "the way it started (its --recheck, --confirm, --retries, --bisect and store)")
    r.add_argument("--recheck", action="store_true",
                   help="boot again (and retry failed builds) even when verdicts are cached")
    r.add_argument("--confirm", action="store_true",
                   help="boot the roles the static analysis rules out (e.g. dom0 of a kernel "
                        "without CONFIG_XEN_DOM0) anyway: their cells get the boot's verdict "
                        "and keep the static evidence")
    r.add_argument("--scheduler", metavar="ADDR",
                   help="Dask scheduler tcp://HOST:8786 or a scheduler file (default: embedded)")
    r.add_argument("--results", type=Path, default=Path("results"), help=RESULTS_HELP)
    r.add_argument("--retries", type=int, default=2, metavar="N",   # records.RunFlags.retries
                   help="run each cell that regressed N more times before calling it a "
                        "regression (default: 2; 0: no retries)")
    r.add_argument("--bisect", action="store_true",
                   help="bisect each reproduced regression of a kernel built from another commit "
                        "of the same git tree (results in the run's bisect/ directory)")
    r.add_argument("--store", metavar="URL",
                   help="artifact store for builds (default: $PVMATRIX_STORE, else the cache's artifacts/)")
    r.add_argument("--strict", action="store_true", help=STRICT_HELP)
    r.set_defaults(func=cmd_run)

    rr = sub.add_parser("rerun", help="one cell of a recorded run again, for real, from the "
                                      "cached inputs that run used")
    rr.add_argument("run_dir", help="the run directory, e.g. results/20261121-233019-0ecd")
    rr.add_argument("cell", help="cell id, e.g. tiny-6.1/baremetal/default")
    rr.set_defaults(func=cmd_rerun)

    rep = sub.add_parser("report", help="a recorded run as a table, Markdown, HTML, JSON or JUnit")
    rep.add_argument("run", help="run id, run directory, or 'latest'")
    rep.add_argument("--format", default="terminal",
                     choices=["terminal", "markdown", "html", "json", "junit"])
    rep.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    rep.add_argument("--results", type=Path, default=Path("results"), help=RESULTS_HELP)
    rep.set_defaults(func=cmd_report)

    pub = sub.add_parser("publish", help="a complete run made portable in place (relative links, "
                         "logs beside the page, no host path), its pages and the spec's history "
                         "written, the spec's older run folders pruned")
    pub.add_argument("run", nargs="?", help="run id, run directory, or 'latest'")
    pub.add_argument("--all", action="store_true",
                     help="the latest complete run of every spec under --results")
    pub.add_argument("--keep-old", action="store_true",
                     help="keep the spec's older run folders (default: pruned, kept in history/)")
    pub.add_argument("--screenshot", type=Path, metavar="PNG",
                     help="also a PNG of the page in headless Chromium")
    pub.add_argument("--results", type=Path, default=Path("results"), help=RESULTS_HELP)
    pub.set_defaults(func=cmd_publish)

    e = sub.add_parser("export", help="a recorded run for other tools (KCIDB JSON for KernelCI)")
    fmt = e.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--kcidb", metavar="RUN",
                     help="KCIDB I/O JSON of RUN (run id, run directory, or 'latest')")
    e.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    e.add_argument("--results", type=Path, default=Path("results"), help=RESULTS_HELP)
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("compare", help="regressions and fixes between two runs")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--results", type=Path, default=Path("results"), help=RESULTS_HELP)
    c.set_defaults(func=cmd_compare)

    h = sub.add_parser("history", help="a cell's status across runs")
    h.add_argument("cell", help="cell id, e.g. debian-6.1-generic/dom0/xen-4.17/default "
                                "(a trailing / matches every cell under it)")
    h.add_argument("--results", type=Path, default=Path("results"), help=RESULTS_HELP)
    h.set_defaults(func=cmd_history)


def cmd_plan(args: argparse.Namespace) -> int:
    from tabulate import tabulate
    from .plan import make_plan, toolchain_of
    from .spec import load
    plan = make_plan(load(args.spec))
    rows = []
    for t in plan.tasks:
        res = " ".join(f"{k}={v:g}" for k, v in t.resources.items()) or "-"
        for c in t.cells:
            rows.append((t.stage, c.id, c.column, t.key[:len(t.stage) + 9], ", ".join(t.deps) or "-", res))
    print(tabulate(rows, headers=["stage", "cell", "column", "task", "after", "resources"], disable_numparse=True))
    built = [(k.name, k.source, toolchain_of(k)) for k in plan.spec.kernels if not k.prebuilt]
    if built:
        print()
        print(tabulate(built, headers=["kernel", "source", "toolchain"], disable_numparse=True))
    print(f"\n{len(plan.cells)} cells in {len(plan.tasks)} tasks, spec {plan.spec.name} "
          f"({plan.spec.path})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run
    if args.store:
        from ..artifacts import open_store
        open_store(args.store).check()      # the settings carry it to every task
    if args.retries < 0:
        from ..errors import UserError
        raise UserError(f"--retries {args.retries}: must be 0 or more")
    from ..results.records import RunFlags
    flags = RunFlags(recheck=args.recheck, retries=args.retries, bisect=args.bisect,
                     store=args.store, confirm=args.confirm)
    code, _ = run(args.spec, args.results, args.resume, flags, args.scheduler, after=_bisect,
                  strict=args.strict)
    return code


def _bisect(*args) -> None:
    """`pvmatrix run --bisect` (or a resumed run that started with it), imported only then."""
    from ..bisect.after_run import bisect_regressions
    bisect_regressions(*args)


def cmd_rerun(args: argparse.Namespace) -> int:
    from .rerun import open_dir, rerun
    return rerun(open_dir(args.run_dir), args.cell)


def cmd_report(args: argparse.Namespace) -> int:
    from ..paths import write_output
    from ..report import html, render
    from ..results.store import open_run
    run = open_run(args.results, args.run)
    if args.format == "html" and args.output:
        text = html.render(run, os.path.relpath(run.dir, args.output.resolve().parent))
    else:
        text = render(run, args.format)
    if args.output:
        write_output(args.output, text)
        print(f"{args.format} report of run {run.id} -> {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..report.browser import screenshot
    from ..report.publish import latest_complete, publish
    from ..results.store import open_run
    if bool(args.run) == args.all:
        raise UserError("publish: give a RUN or --all")
    runs = latest_complete(args.results) if args.all else [open_run(args.results, args.run)]
    for run in runs:
        done = publish(run, args.results, prune=not args.keep_old)
        print(f"published run {run.id} (spec {run.meta['spec_name']}): "
              f"{done.bytes / 2**20:.1f} MB, {done.logs} log files"
              + (f"; pruned {', '.join(done.pruned)}" if done.pruned else ""), file=sys.stderr)
    if args.screenshot and runs:
        screenshot(runs[-1].dir / "report.html", args.screenshot)
        print(f"screenshot of {runs[-1].id} -> {args.screenshot}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..paths import write_output
    from ..report import kcidb
    from ..results.store import open_run
    run = open_run(args.results, args.kcidb)
    data = kcidb.to_kcidb(run)
    text = json.dumps(data, indent=2, default=str) + "\n"
    if args.output:
        write_output(args.output, text)
        print(f"KCIDB export of run {run.id} -> {args.output} ({len(data['checkouts'])} checkouts, "
              f"{len(data['builds'])} builds, {len(data['tests'])} tests)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tabulate import tabulate
    from .. import exitcodes
    from ..results.compare import compare
    from ..results.store import open_run
    a, b = open_run(args.results, args.run_a), open_run(args.results, args.run_b)
    changes = compare(a, b)
    order = {"regression": 0, "fix": 1, "changed": 2}
    changes.sort(key=lambda ch: (order[ch.kind], ch.cell))
    if not changes:
        print(f"runs {a.id} and {b.id}: no cell changed status")
        return exitcodes.OK
    print(tabulate([(ch.kind, ch.cell, ch.before, ch.after, ch.reason[:80]) for ch in changes],
                   headers=["change", "cell", a.id, b.id, "why (now)"], disable_numparse=True))
    n = sum(ch.kind == "regression" for ch in changes)
    flaky = sum(ch.kind == "regression" and not ch.reproduced for ch in changes)
    print(f"\n{n} regression(s){f' ({flaky} flaky)' if flaky else ''}, "
          f"{sum(ch.kind == 'fix' for ch in changes)} fix(es)")
    return exitcodes.FAIL if n - flaky else exitcodes.OK


def cmd_history(args: argparse.Namespace) -> int:
    import time
    from tabulate import tabulate
    from ..errors import UserError
    from ..results.index import Index
    if not (args.results / "index.sqlite").is_file() and not args.results.is_dir():
        raise UserError(f"--results {args.results}: no such results directory")
    index = Index(args.results)
    rows = index.history(args.cell)
    index.close()
    if not rows:
        raise UserError(f"cell {args.cell!r}: no record in {args.results} "
                        "(see `pvmatrix plan` for cell ids)")
    print(tabulate([(run, time.strftime("%Y-%m-%d %H:%M", time.gmtime(started or 0)), state, cell,
                     status, detail, reason[:70])
                    for run, started, state, cell, status, detail, reason in rows],
                   headers=["run", "started", "run state", "cell", "status", "detail", "why"], disable_numparse=True))
    return 0
