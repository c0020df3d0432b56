"""A guest's lifecycle chain in a serial log: which of its lines are its boot's
and which are each lifecycle step's (roles riding on one guest, roles.toml
`where` and `order`; dom0-init.sh guest_life, guest-init.sh life).

The guest's console (relayed once it ends) is cut at its own markers: its boot
runs to its first `stage=ready`; a step runs from `stage=ready step=S` to
`stage=resumed step=S`, and what follows belongs to the next step. dom0's lines
(in real time) are cut at its `stage=begin step=S` markers and go by their
`step=` field. A log from before the chain (one step, no step= fields) is one
step: the judged role's."""

from __future__ import annotations

from dataclasses import dataclass

from .markers import Line, matches
from .roles import Role

BOOT = 0                                   # the boot's part; step i's is i (from 1)
COMMON = ("start", "create", "exit", "retry")   # dom0's markers of the guest as a whole


@dataclass
class Parts:
    """The last attempt of one guest, cut into its boot and its steps."""
    steps: tuple[str, ...]
    console: list[list[Line]]      # per part: the guest's console lines
    host: list[list[Line]]         # per part: dom0's markers and xl output after the last create
    common: list[Line]             # dom0's markers of the whole guest, and all before the last create
    begins: list[Line | None]      # per part: where dom0 began it (None: the boot; not begun)

    def index(self, step: str | None) -> int:
        return self.steps.index(step) + 1 if step in self.steps else BOOT

    def own(self, role: Role) -> list[Line]:
        """ROLE's lines: the boot's (a plain role in a chain: up to the guest's
        first ready marker, included), and a lifecycle role's step's too."""
        i = self.index(role.lifecycle)
        lines = self.common + self.console[BOOT] + self.host[BOOT]
        if i == BOOT and self.steps:
            lines += [ln for ln in self.console[1][:1] if matches(ln.fields, "stage=ready")]
        if i != BOOT:
            lines += self.console[i] + self.host[i]
        return sorted(lines, key=lambda ln: ln.no)

    def began(self, step: str) -> bool:
        """Whether dom0 began STEP (or the guest said ready for it)."""
        i = self.index(step)
        return bool(self.host[i] or any(matches(ln.fields, "stage=ready") for ln in self.console[i]))

    def end(self, role: Role) -> int | None:
        """The last log line of ROLE's time in dom0's stream: before the next part
        began (None: to the end)."""
        nxt = [b for b in self.begins[self.index(role.lifecycle) + 1:] if b]
        return nxt[0].no - 1 if nxt else None


def steps_of(chain: tuple[Role, ...], role: Role) -> tuple[str, ...]:
    """The guest's steps in order; a role alone (an old log) is its own one step."""
    steps = tuple(r.lifecycle for r in chain if r.lifecycle)
    return steps or ((role.lifecycle,) if role.lifecycle else ())


def cut(mine: list[Line], guest: str, created: Line, steps: tuple[str, ...],
        default: str | None) -> Parts:
    """The lines of GUEST (MINE: its console and dom0's lines on it) cut into its
    boot and STEPS; a marker without step= is DEFAULT's (an old log's one step)."""
    n = len(steps) + 1
    parts = Parts(steps, [[] for _ in range(n)], [[] for _ in range(n)], [], [None] * n)
    p = BOOT
    for ln in (x for x in mine if x.region == guest and "guest" not in x.fields and not x.tag):
        stage = ln.fields.get("stage")
        if stage == "ready":
            p = parts.index(ln.fields.get("step", default)) or p
        parts.console[p].append(ln)
        if stage == "resumed":
            p = min(p + 1, n - 1)
    p = BOOT
    for ln in (x for x in mine if "guest" in x.fields or x.tag):
        stage = ln.fields.get("stage")
        if ln.no <= created.no or stage in COMMON:
            parts.common.append(ln)
            continue
        if ln.fields:
            p = parts.index(ln.fields.get("step", default)) or p
            if stage == "begin":
                parts.begins[p] = parts.begins[p] or ln
        parts.host[p].append(ln)
    return parts
