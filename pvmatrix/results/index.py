"""The SQLite index across runs: which runs there were, and every cell's
status in each, so "the history of this cell" is one query. It can always be
rebuilt from the run directories (they are the truth)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import NoSpace, disk

from .records import CellRecord
from .store import Run, all_runs

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, spec_name TEXT, spec_sha256 TEXT,
    started REAL, finished REAL, state TEXT, dir TEXT);
CREATE TABLE IF NOT EXISTS cells (run_id TEXT, cell_id TEXT, kernel TEXT, stage TEXT,
    column_name TEXT, status TEXT, detail TEXT, reason TEXT, inputs TEXT, finished REAL,
    PRIMARY KEY (run_id, cell_id));
CREATE INDEX IF NOT EXISTS cells_by_id ON cells (cell_id, finished);
"""


@contextmanager
def _disk(results: Path) -> Iterator[None]:
    """A full disk under RESULTS is errors.NoSpace (SQLite rolls back what it was writing)."""
    try:
        with disk(results):
            yield
    except sqlite3.OperationalError as exc:
        if "full" in str(exc):                   # "database or disk is full"
            raise NoSpace(results) from None
        raise


class Index:
    def __init__(self, results: Path):
        self.results = results
        self.path = path = results / "index.sqlite"
        with _disk(results):
            results.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            self.db = sqlite3.connect(path, timeout=30)
        try:
            with _disk(results):
                self.db.executescript(SCHEMA)
                if fresh:
                    self.rebuild(results)
        except BaseException:
            self.db.close()
            if fresh:                # a half-made index would never be rebuilt
                path.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        self.db.close()

    def add_run(self, run: Run) -> None:
        m = run.meta
        with _disk(self.results), self.db:
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?)",
                            (run.id, m.get("spec_name"), m.get("spec_sha256"), m.get("started"),
                             m.get("finished"), m.get("state"), str(run.dir)))

    def add_cell(self, run_id: str, record: CellRecord) -> None:
        c, v = record.cell, record.verdict
        with _disk(self.results), self.db:
            self.db.execute("INSERT OR REPLACE INTO cells VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (run_id, c.id, c.kernel, c.stage, c.column, str(v.status),
                             v.detail, v.reason, json.dumps(record.inputs, sort_keys=True),
                             record.finished))

    def forget(self, run_id: str) -> None:
        """RUN_ID's rows (its folder was pruned: its verdicts live on in the history)."""
        with _disk(self.results), self.db:
            self.db.execute("DELETE FROM cells WHERE run_id = ?", (run_id,))
            self.db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def rebuild(self, results: Path) -> None:
        for run in all_runs(results):
            self.add_run(run)
            for rec in run.records():
                self.add_cell(run.id, CellRecord.from_dict(rec))

    def history(self, cell_id: str) -> list[tuple]:
        """(run_id, started, state, cell_id, status, detail, reason) per run, oldest first;
        CELL_ID may be a prefix ending in '/' or contain '%' wildcards."""
        pattern = cell_id + "%" if cell_id.endswith("/") else cell_id
        return self.db.execute(
            "SELECT c.run_id, r.started, r.state, c.cell_id, c.status, c.detail, c.reason "
            "FROM cells c JOIN runs r USING (run_id) WHERE c.cell_id LIKE ? "
            "ORDER BY r.started, c.cell_id", (pattern,)).fetchall()

    def previous_run(self, spec_name: str, before_run: str) -> str | None:
        """The baseline of BEFORE_RUN: the latest complete run of SPEC_NAME before it
        that recorded cells (an interrupted or killed run has only some of its
        cells, and as a baseline could hide a regression)."""
        row = self.db.execute(
            "SELECT r.run_id FROM runs r WHERE r.spec_name = ? AND r.run_id != ? AND "
            "r.state = 'complete' AND "
            "EXISTS (SELECT 1 FROM cells c WHERE c.run_id = r.run_id) "
            "AND r.started < (SELECT COALESCE(MAX(started), 1e18) FROM runs WHERE run_id = ?) "
            "ORDER BY r.started DESC LIMIT 1", (spec_name, before_run, before_run)).fetchone()
        return row[0] if row else None
