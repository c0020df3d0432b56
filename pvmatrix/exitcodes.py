"""The exit codes of every pvmatrix command, in one table (README: Exit codes).

A code says whose fault it is, as errors.py does for a cell: the kernel's (1),
the input's (2), the harness's (3), or nobody's yet (4: could not run here).
`run`, `rerun`, `boot` and `compare` compute theirs with `for_cells`; a command
that stops on an error exits with its class's code (errors.PvmError.exit_code).
It imports nothing of pvmatrix, so errors.py can take its codes from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

OK = 0            # complete; no regression (run) or no failing cell (rerun, boot)
FAIL = 1          # a regression that retries reproduced (run, compare); a failing cell (rerun, boot)
USAGE = 2         # bad input: a flag, spec, name, ref or file (errors.UserError)
BROKEN = 3        # with --strict: a cell broken; or the harness failed and the command stopped
NOT_RUN = 4       # with --strict: a cell not run (cannot run here yet, or interrupted mid-cell)
INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP (128 + SIGINT, as shells report it)


@dataclass(frozen=True)
class Code:
    """One row of the table: the number, its name and when a command exits with it."""
    code: int
    name: str
    when: str


TABLE = (
    Code(OK, "ok", "complete: no regression (`run`), no failing cell (`rerun`, `boot`); with "
                   "`--strict` also no cell broken or not run"),
    Code(FAIL, "fail", "`run`, `compare`: a cell regressed against the last complete run of the "
                       "spec and its retries did not pass; `rerun`, `boot`: a cell failed"),
    Code(USAGE, "usage", "bad input (a flag, spec, name, ref or file): one line on stderr"),
    Code(BROKEN, "broken", "with `--strict`: a cell is broken (the harness failed, not the "
                           "kernel); any command: the harness failed and the command stopped "
                           "(no container engine, a full disk)"),
    Code(NOT_RUN, "not run", "with `--strict`: a cell is not run (the harness cannot run it here, "
                             "e.g. an HVM guest under nested TCG; or it was interrupted)"),
    Code(INTERRUPTED, "interrupted", "Ctrl-C, SIGTERM or SIGHUP; finished cells are recorded"),
)

# `rerun` and `boot`: the code of each cell status ("skip" and "blocked" never
# fail a job by themselves: a blocked cell names the cell that did not pass)
OF_STATUS = {"pass": OK, "skip": OK, "blocked": OK, "fail": FAIL, "broken": BROKEN,
             "not run": NOT_RUN}
# when several apply, the most telling wins: the kernel's fault, then the harness's
PRECEDENCE = (FAIL, BROKEN, NOT_RUN, OK)


def worst(codes: Iterable[int]) -> int:
    """The code that wins among CODES (OK when there are none)."""
    got = set(codes)
    return next((c for c in PRECEDENCE if c in got), OK)


def for_cells(statuses: Iterable[str], strict: bool, failing: bool | None = None) -> int:
    """A command's code from its cells' STATUSES. FAILING: whether something failed
    in the command's sense (`run`: a reproduced regression), else any `fail` cell.
    Broken and not-run cells count only when STRICT."""
    codes = {OF_STATUS[str(s)] for s in statuses}
    if failing is not None:
        codes.discard(FAIL)
        if failing:
            codes.add(FAIL)
    if not strict:
        codes -= {BROKEN, NOT_RUN}
    return worst(codes)


def markdown_table() -> str:
    """The table as README.md shows it (a unit test keeps the two equal)."""
    rows = ["| code | name | when |", "|---|---|---|"]
    rows += [f"| {c.code} | {c.name} | {c.when} |" for c in TABLE]
    return "\n".join(rows) + "\n"
