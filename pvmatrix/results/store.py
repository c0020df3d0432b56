"""The results store: one directory per run under results/ (or --results DIR).

    RESULTS/RUN_ID/run.json          run id, spec name and digest, tool version, host facts, state
                                     (records.RunRecord, schema pvmatrix.run/1)
    RESULTS/RUN_ID/spec.toml         the spec as it was
    RESULTS/RUN_ID/cells/ID.json     one record per cell, written atomically as it finishes
                                     (records.CellRecord, schema pvmatrix.cell/1)
    RESULTS/RUN_ID/tasks/KEY.json    each finished task's outcome (what --resume reuses)
    RESULTS/RUN_ID/.lock             locked (flock) by the process running the run
    RESULTS/index.sqlite             the index across runs (index.py)
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .. import __version__, settings
from ..errors import UserError, disk
from ..paths import partial_dir, write_whole
from .portable import CACHE_TOKEN
from .records import CellRecord, RunFlags, RunRecord, safe_name

LOCK = ".lock"


def write_json(path: Path, data, compact: bool = False) -> None:
    """Write DATA to PATH atomically (temporary file in the same dir, then rename;
    a full disk is errors.NoSpace, and nothing is left half-written); COMPACT:
    no indentation (a published run's records: a quarter smaller)."""
    write_whole(path, json.dumps(data, default=str, **({"separators": (",", ":")} if compact
                                                        else {"indent": 2})))


@dataclass
class Run:
    """One run's directory."""
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def meta(self) -> dict:
        return json.loads((self.dir / "run.json").read_text())

    def update(self, **fields) -> None:
        """Change FIELDS of run.json (a RunRecord's: an unknown field is an error)."""
        write_json(self.dir / "run.json", RunRecord.from_dict({**self.meta, **fields}).to_dict())

    def record(self, record: CellRecord) -> Path:
        path = self.dir / "cells" / f"{safe_name(record.cell.id)}.json"
        write_json(path, record.to_dict())
        return path

    def records(self, parts: tuple[str, ...] | None = None) -> list[dict]:
        """The run's cell records; PARTS: only the cells whose id's
        part after the kernel (a stage or a role: "analyze", "dom0") is one of
        them, told from the file names without parsing the rest."""
        cells = self.dir / "cells"
        names = [n for n in os.listdir(cells) if n.endswith(".json")] if cells.is_dir() else []
        if parts is not None and (kernels := self.meta.get("kernels")):
            prefixes = tuple(f"{safe_name(k)}_{part}{end}" for k in kernels for part in parts
                             for end in ("_", ".json"))
            names = [n for n in names if n.startswith(prefixes)]
        out = []
        for p in (cells / n for n in sorted(names)):
            try:
                out.append(json.loads(p.read_text()))
            except ValueError:
                continue                 # cannot happen with atomic writes; never fatal
        return out

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold RUN/.lock while this process runs the run (new or resumed): another
        pvmatrix running it (a second --resume) is refused, naming the run."""
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise UserError(f"run {self.id} is being run by another pvmatrix (pid {holder}): "
                                "wait for it to end, or start a new run without --resume") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)              # and with it the lock (the file stays: no race on it)

    def save_outcome(self, outcome: dict) -> None:
        write_json(self.dir / "tasks" / f"{outcome['key']}.json", outcome)

    def outcomes(self) -> dict[str, dict]:
        """Each finished task's outcome; a published run's name the cache as
        $PVMATRIX_CACHE (portable.py), read here as the cache in effect."""
        found = {}
        cache = str(settings.current().cache_root())
        for p in (self.dir / "tasks").glob("*.json"):
            try:
                found[p.stem] = json.loads(p.read_text().replace(CACHE_TOKEN, cache))
            except ValueError:
                continue
        return found


def create(results: Path, spec, host: dict | None = None, flags: RunFlags | None = None) -> Run:
    """A new run of SPEC under RESULTS; HOST: what it runs on (matrix.host.facts());
    FLAGS: how it was asked to run (what --resume continues with)."""
    with disk(results):
        results.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    d = results / run_id
    tmp = partial_dir(results, "new-run")       # the run appears whole, or not at all
    try:
        with disk(results):
            (tmp / "cells").mkdir()
            (tmp / "tasks").mkdir()
            (tmp / "spec.toml").write_text(spec.text)
        write_json(tmp / "run.json", RunRecord(
            run_id=run_id, spec_name=spec.name, spec_path=str(spec.path), spec_sha256=spec.digest,
            tool_version=__version__, host=host or {}, started=time.time(),
            kernels=[k.name for k in spec.kernels], flags=flags).to_dict())
        tmp.chmod(0o755)
        os.rename(tmp, d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Run(d)


def open_run(results: Path, name: str) -> Run:
    """A run by id, by path, or 'latest'."""
    path = Path(name)
    if (path / "run.json").exists():
        return Run(path)
    if name == "latest":
        runs = all_runs(results)
        if not runs:
            raise UserError(f"{results}: no runs yet")
        return runs[-1]
    if (results / name / "run.json").exists():
        return Run(results / name)
    raise UserError(f"run {name!r}: not found in {results} (give a run id, a run directory or 'latest')")


def all_runs(results: Path) -> list[Run]:
    if not results.is_dir():
        return []
    return sorted((Run(p.parent) for p in results.glob("*/run.json")),
                  key=lambda r: (r.meta.get("started") or 0, r.id))


def last_unfinished(results: Path, spec_name: str) -> Run | None:
    for run in reversed(all_runs(results)):
        meta = run.meta
        if meta.get("spec_name") == spec_name:
            return run if meta.get("state") != "complete" else None
    return None


def remove(run: Run) -> None:
    shutil.rmtree(run.dir)
