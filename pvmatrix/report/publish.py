"""Publishing a run: its folder under results/ made portable and complete in
place (the store's records are the input; publishing again gives the same
folder), its pages written, its verdicts added to the spec's history, and the
older runs of the spec pruned (their verdicts stay in the history).

A published run folder:

    run.json, spec.toml, cells/*.json, tasks/*.json   the records, no host path
                                                      (see results/portable.py)
    logs/DIGEST.log.gz                                each log once, cut to its
                                                      evidence window, gzip
    logs/CELL.rerun.sh, logs/DIGEST.qemu.sh           the reproducers (a boot's QEMU
                                                      script once, shared by its cells)
    report.html, report.md                            the pages
    report.json                                       each cell's verdict and its record's
                                                      path (jsonout.published)
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import settings
from ..errors import UserError
from ..paths import write_whole
from ..results import history, store
from ..results.index import Index
from ..results.portable import CACHE_TOKEN, Roots, evidence_lines, host_paths, packed_log, scrub
from ..results.records import safe_name
from . import html, jsonout, markdown
from ..digest import short as short_sha256

MAX_BYTES = 20 * 1024 * 1024           # a published run folder
DEFAULT_SPEC = "default"
PUBLISHED_SCRIPT = "# pvmatrix: published reproducer"


@dataclass
class Published:
    run: store.Run
    bytes: int
    logs: int
    pruned: list[str] = field(default_factory=list)


def roots_for(results: Path) -> Roots:
    """The host places of this machine: the cache in effect, the results directory."""
    home_cache = Path.home() / ".cache" / "pvmatrix"     # the default, if the run used it
    return Roots(settings.current().cache_root(), results, [home_cache])


def _source(run: store.Run, path: str) -> Path | None:
    """Where a log a record names is: in the run (relative), or on the host."""
    p = Path(path)
    p = p if p.is_absolute() else run.dir / p
    return p if p.is_file() else None


def _log_keys(rec: dict) -> dict[str, str]:
    """The record's logs worth publishing: kind -> path (a copy in the run first)."""
    logs = rec.get("logs") or {}
    out = {}
    for kind in ("serial", "build"):
        for key in (f"{kind}_copy", kind):
            if logs.get(key):
                out[kind] = logs[key]
                break
    return out


class Logs:
    """The run's logs, each published once, by digest."""

    def __init__(self, run: store.Run, roots: Roots, records: list[dict]):
        self.run, self.roots, self.names = run, roots, {}
        self.keep: dict[str, set[int]] = {}
        for rec in records:
            for kind, where in _log_keys(rec).items():
                raw = (rec.get("logs") or {}).get(kind) or where
                self.keep.setdefault(where, set()).update(evidence_lines(rec, raw))

    def name(self, where: str | None) -> str | None:
        """The published name (logs/...) of the log at WHERE, or None if it is gone."""
        if not where:
            return None
        if where.startswith("logs/") and where.endswith(".log.gz"):
            return where if (self.run.dir / where).is_file() else None
        if where not in self.names:
            src = _source(self.run, where)
            if src is None:
                self.names[where] = None
            else:
                name, data = packed_log(src.read_text(errors="replace"),
                                        self.keep.get(where, set()), self.roots)
                write_whole(self.run.dir / "logs" / name, data)
                self.names[where] = f"logs/{name}"
        return self.names[where]


def _portable_record(rec: dict, logs: Logs, run: store.Run, results: Path) -> dict:
    """REC as published: logs by their published copies, reproducers relative."""
    rec = json.loads(json.dumps(rec))
    old = rec.get("logs") or {}
    published = {kind: logs.name(where) for kind, where in _log_keys(rec).items()}
    by_raw = {old.get(kind): name for kind, name in published.items() if old.get(kind)}
    by_raw.update({old.get(f"{kind}_copy"): name for kind, name in published.items()
                   if old.get(f"{kind}_copy")})
    rec["logs"] = {k: v for k, v in published.items() if v}
    for e in (rec.get("verdict") or {}).get("evidence") or []:
        if e.get("log"):
            e["log"] = by_raw.get(e["log"]) or (e["log"] if e["log"] in published.values() else "")
    for attempt in (rec.get("retries") or {}).get("attempts") or []:
        if attempt.get("serial"):
            attempt["serial"] = logs.name(attempt["serial"])
    if rec.get("reproduce"):
        rec["reproduce"] = _reproducers(run, rec, results, logs.roots)
    return scrub(rec, logs.roots)


def _reproducers(run: store.Run, rec: dict, results: Path, roots: Roots) -> dict:
    """The cell's reproducers, rewritten portable: `pvmatrix rerun` of the run
    folder next to the script, and the plain QEMU script with its cache paths
    as $PVMATRIX_CACHE."""
    cell = rec["cell"]["id"]
    base = run.dir / "logs" / safe_name(cell)
    rerun = Path(f"{base}.rerun.sh")
    write_whole(rerun, f"#!/bin/sh\n# Reruns cell {cell} of run {run.id} from the cached inputs it "
                       f"used\n# (a real boot, the outcome cache bypassed); exit 0 when it passes.\n"
                       f"cd \"$(dirname \"$0\")/../..\" && exec pvmatrix rerun {run.id} '{cell}' \"$@\"\n")
    rerun.chmod(0o755)
    out = {"command": f"pvmatrix rerun {results.name}/{run.id} {cell}",
           "rerun_script": f"logs/{rerun.name}"}
    if script := _shared_script(run, rec, Path(f"{base}.qemu.sh"), roots):
        out["qemu_script"] = script
    return out


def _shared_script(run: store.Run, rec: dict, per_cell: Path, roots: Roots) -> str | None:
    """The cell's QEMU script, published once per boot: the cells of one boot
    share logs/DIGEST.qemu.sh (a shared boot's script is tens of KB, and one
    boot hosts dozens of cells). None: the cell has none."""
    if per_cell.is_file():
        text = _portable_script(per_cell.read_text(), roots)
        name = f"logs/{short_sha256(text)}.qemu.sh"
        if not (run.dir / name).is_file():
            write_whole(run.dir / name, text)
            (run.dir / name).chmod(0o755)
        per_cell.unlink()
        return name
    old = (rec.get("reproduce") or {}).get("qemu_script")     # published before
    return old if old and (run.dir / old).is_file() else None


def _portable_script(text: str, roots: Roots) -> str:
    """A QEMU script written at boot time (cache paths, in any shell quoting) as
    one that runs against the reader's cache: the script is kept verbatim with
    the cache as @CACHE@, and filled in when it runs."""
    if text.startswith("#!/bin/sh\n" + PUBLISHED_SCRIPT):
        return text
    body = roots.text(text).replace(CACHE_TOKEN, "@CACHE@")
    return ("#!/bin/sh\n" + PUBLISHED_SCRIPT + ": the boot's QEMU script, run against the\n"
            "# pvmatrix cache that has its inputs ($PVMATRIX_CACHE, else ~/.cache/pvmatrix).\n"
            'cache=${PVMATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pvmatrix}\n'
            'script=$(mktemp) || exit 2\n'
            "trap 'rm -f \"$script\"' EXIT\n"
            "sed \"s|@CACHE@|$cache|g\" >\"$script\" <<'PVMATRIX_SCRIPT'\n"
            + body.rstrip("\n") + "\nPVMATRIX_SCRIPT\n"
            'sh "$script" "$@"\n')


def _tidy_logs(run: store.Run, records: list[dict]) -> int:
    """Remove the run's log files no record names any more; the number kept."""
    named = set()
    for rec in records:
        named |= {v for v in (rec.get("logs") or {}).values() if v}
        named |= {v for k, v in (rec.get("reproduce") or {}).items() if k != "command" and v}
        named |= {a.get("serial") for a in (rec.get("retries") or {}).get("attempts") or []}
    kept = 0
    for p in (run.dir / "logs").glob("*") if (run.dir / "logs").is_dir() else []:
        if f"logs/{p.name}" in named:
            kept += 1
        else:
            p.unlink()
    return kept


def _portable_tree(run: store.Run, roots: Roots) -> None:
    """run.json and the task outcomes, their host paths rewritten."""
    meta = run.meta
    spec = Path(meta.get("spec_path") or "")
    if spec.is_absolute():        # a spec outside the checkout: its name under specs/
        parts = spec.parts
        meta["spec_path"] = ("/".join(parts[len(parts) - 1 - parts[::-1].index("specs"):])
                             if "specs" in parts else spec.name)
    store.write_json(run.dir / "run.json", scrub(meta, roots))
    for p in sorted((run.dir / "tasks").glob("*.json")) if (run.dir / "tasks").is_dir() else []:
        text = p.read_text()
        if (new := roots.text(text)) != text:
            write_whole(p, new)


def published_files(run_dir: Path):
    """(path, text) of every file in a published run folder (logs decompressed)."""
    for p in sorted(run_dir.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            data = p.read_bytes()
            if p.suffix == ".gz":
                data = gzip.decompress(data)
            yield p, data.decode(errors="replace")


def check(run_dir: Path, roots: Roots | None = None) -> int:
    """The folder's size in bytes; UserError if it names a host path or is too big."""
    size = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    for p, text in published_files(run_dir):
        if found := host_paths(text, roots):
            raise UserError(f"{p}: names host path {found[0]!r} after publishing (set "
                            "PVMATRIX_CACHE to the cache the run used)")
    if size > MAX_BYTES:
        raise UserError(f"{run_dir}: {size / 2**20:.1f} MB published, over the "
                        f"{MAX_BYTES / 2**20:.0f} MB a run may take")
    return size


def write_pages(run: store.Run) -> None:
    """report.html, report.md, report.json in the run folder."""
    write_whole(run.dir / "report.html", html.render(run))
    write_whole(run.dir / "report.md", markdown.render(run))
    write_whole(run.dir / "report.json", jsonout.published(run) + "\n")


def publish(run: store.Run, results: Path, prune: bool = True) -> Published:
    """Publish RUN (a complete run under RESULTS) in place; with PRUNE, remove the
    folders of its spec's older runs."""
    meta = run.meta
    if meta.get("state") != "complete":
        raise UserError(f"run {run.id}: {meta.get('state')}, not complete: finish it "
                        "(pvmatrix run --resume) before publishing")
    roots = roots_for(results)
    records = run.records()
    logs = Logs(run, roots, records)
    for rec in records:
        new = _portable_record(rec, logs, run, results)
        store.write_json(run.dir / "cells" / f"{safe_name(rec['cell']['id'])}.json", new,
                         compact=True)
    _portable_tree(run, roots)
    records = run.records()
    kept = _tidy_logs(run, records)
    older = older_runs(run, results)
    for old in older:                     # their verdicts first: the page's strips show them
        history.add(results, meta["spec_name"], history.Entry.of(old.meta, old.records()))
    history.add(results, meta["spec_name"], history.Entry.of(run.meta, records))
    write_pages(run)
    if meta["spec_name"] == DEFAULT_SPEC:           # results/matrix.*: the README links them
        write_whole(results / "matrix.html", html.render(run, run.id))
        write_whole(results / "matrix.md", markdown.render(run, run.id))
    size = check(run.dir, roots)
    done = Published(run, size, kept)
    if prune:
        done.pruned = remove(older, results)
    return done


def older_runs(run: store.Run, results: Path) -> list[store.Run]:
    """RUN's spec's runs older than RUN (not one still running)."""
    spec, started = run.meta["spec_name"], run.meta.get("started") or 0
    return [old for old in store.all_runs(results)
            if old.id != run.id and old.meta.get("spec_name") == spec
            and old.meta.get("state") != "running" and (old.meta.get("started") or 0) < started]


def remove(runs: list[store.Run], results: Path) -> list[str]:
    """Remove RUNS' folders and their rows in the index (the history keeps them)."""
    index = Index(results)
    try:
        for old in runs:
            index.forget(old.id)
            shutil.rmtree(old.dir)
    finally:
        index.close()
    return [old.id for old in runs]


def latest_complete(results: Path) -> list[store.Run]:
    """The latest complete run of each spec under RESULTS, oldest spec first."""
    latest: dict[str, store.Run] = {}
    for run in store.all_runs(results):
        if run.meta.get("state") == "complete":
            latest[run.meta["spec_name"]] = run
    return sorted(latest.values(), key=lambda r: (r.meta.get("started") or 0, r.id))
