"""Progress of a run: one live status line on a terminal (per stage, done of
total, tasks that did not pass; the cells by status; elapsed), plain lines when
the output is not a TTY."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import TextIO

from ..records import PASS, SKIP, STATUSES
from .cells import STAGES


class Progress:
    def __init__(self, totals: Counter, stream: TextIO = sys.stderr, tty: bool | None = None):
        self.totals, self.done, self.bad = totals, Counter(), Counter()
        self.cells: Counter = Counter()      # by status: a task's static `not run` is no failure
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def line(self) -> str:
        parts = []
        for stage in STAGES:
            if self.totals[stage]:
                bad = f" ({self.bad[stage]} not pass)" if self.bad[stage] else ""
                parts.append(f"{stage} {self.done[stage]}/{self.totals[stage]}{bad}")
        if self.cells:
            parts.append(f"{sum(self.cells.values())} cells: " + ", ".join(
                f"{self.cells[s]} {s}" for s in STATUSES if self.cells[s]))
        return " | ".join(parts) + f" | {self.elapsed():.0f} s"

    def begin(self) -> None:
        if self.tty:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        else:
            total = sum(self.totals.values())
            self._say(f"pvmatrix: {total} tasks: " + ", ".join(
                f"{self.totals[s]} {s}" for s in STAGES if self.totals[s]))

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()

    def _say(self, text: str) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\r\033[K")
            self.stream.write(text + "\n")
            self.stream.flush()

    def finished(self, stage: str, kernel: str, statuses: list[str], seconds: float,
                 cached: bool, note: str = "") -> None:
        """A task ended: count it, and say so (plain mode, or when it did not pass)."""
        self.done[stage] += 1
        self.cells.update(statuses)
        worst = next((s for s in statuses if s not in (PASS, SKIP)), PASS)
        if worst != PASS:
            self.bad[stage] += 1
        if not self.tty or worst != PASS:
            how = "cached" if cached else f"{seconds:.1f} s"
            # a task owning no cells (a shared host boot): its cells are told by their own tasks
            said = ", ".join(statuses) or "host boot, its guests' cells follow"
            count = f"{self.done[stage]}/{self.totals[stage]}"
            self._say(f"[{self.elapsed():6.1f} s] {stage:<7} {count:>7} {kernel}: "
                      f"{said} ({how}){' ' + note if note else ''}")
        elif self.tty:
            self._draw()

    def end(self) -> None:
        if self._stop.is_set():           # ended already (Ctrl-C during the retries)
            return
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        self._say(f"pvmatrix: {self.line()}")
