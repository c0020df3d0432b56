"""Two runs side by side: regressions (pass -> fail), fixes (fail -> pass)
and every other change of status."""

from __future__ import annotations

from dataclasses import dataclass

from .cells import FAIL, PASS
from .store import Run


@dataclass
class Change:
    cell: str
    before: str
    after: str
    reason: str

    @property
    def kind(self) -> str:
        if self.before == PASS and self.after == FAIL:
            return "regression"
        if self.before == FAIL and self.after == PASS:
            return "fix"
        return "changed"


def statuses(run: Run) -> dict[str, dict]:
    return {r["cell"]["id"]: r for r in run.records()}


def compare(a: Run, b: Run) -> list[Change]:
    """Every cell present in both runs whose status differs, in cell order."""
    old, new = statuses(a), statuses(b)
    out = []
    for cell in sorted(set(old) & set(new)):
        before, after = old[cell]["verdict"]["status"], new[cell]["verdict"]["status"]
        if before != after:
            out.append(Change(cell, before, after, new[cell]["verdict"].get("reason", "")))
    return out


def regressions(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.kind == "regression"]
