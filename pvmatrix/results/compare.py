"""Two runs side by side: regressions (pass -> fail), fixes (fail -> pass)
and every other change of status.

A cell that failed but passed on a retry (flaky, see retry.py) counts as
passing on the "before" side: it can pass, so failing now is a regression
worth retrying. On the "after" side it stays a fail, but a flaky one does not
count as a reproduced regression."""

from __future__ import annotations

from dataclasses import dataclass

from ..records import FAIL, PASS
from .store import Run


@dataclass
class Change:
    cell: str
    before: str
    after: str
    reason: str
    flaky_before: bool = False
    flaky_after: bool = False
    retries: str = ""              # the after side's retries summary, if it was retried

    @property
    def kind(self) -> str:
        if (self.before == PASS or self.flaky_before) and self.after == FAIL:
            return "regression"
        if self.before == FAIL and self.after == PASS:
            return "fix"
        return "changed"

    @property
    def reproduced(self) -> bool:
        """A regression that is not known to be flaky (what fails a job)."""
        return self.kind == "regression" and not self.flaky_after


def statuses(run: Run) -> dict[str, dict]:
    return {r["cell"]["id"]: r for r in run.records()}


def compare(a: Run, b: Run) -> list[Change]:
    """Every cell present in both runs whose status differs, in cell order."""
    old, new = statuses(a), statuses(b)
    out = []
    for cell in sorted(set(old) & set(new)):
        before, after = old[cell]["verdict"]["status"], new[cell]["verdict"]["status"]
        flaky_before, flaky_after = bool(old[cell].get("flaky")), bool(new[cell].get("flaky"))
        if before != after or flaky_before != flaky_after or (flaky_before and after == FAIL):
            out.append(Change(cell, before, after, new[cell]["verdict"].get("reason", ""),
                              flaky_before, flaky_after,
                              (new[cell].get("retries") or {}).get("summary", "")))
    return out


def regressions(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.kind == "regression"]


def reproduced(changes: list[Change]) -> list[Change]:
    """Regressions that are not flaky: the ones that make a run or compare exit 1."""
    return [c for c in changes if c.reproduced]
