"""Benchmark `pvmatrix run` on the default spec and write bench/results/matrix.json.

    python3 bench/matrix.py [--runs 3] [--cold | --cold-only | --warm-only]

- warm_rerun_s: the default spec again with nothing changed (median of RUNS
  runs of the real CLI, wall clock): no builds, no boots, verdicts from cache.
- one_changed_s: the default spec with one kernel changed: the cloud kernel
  becomes trixie's linux-image-cloud-amd64 (a different package, so its
  analysis and boots are redone; nothing else is). Measured once per changed
  kernel: a second measure would be warm.
- cold_default_s: with --cold, a run with an empty cache (every build, image
  and boot from scratch; about half an hour here). Without --cold, the wall
  time of the first complete run of the default spec found in the results
  directory whose tasks were not cached (that run's own record), if any.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "matrix.json"
DEFAULT = REPO / "specs" / "default.toml"


def timed_run(spec: Path, results: Path, env: dict | None = None) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pvmatrix.cli", "run", str(spec), "--results",
                           str(results)], cwd=REPO, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, done.returncode, done.stderr


def changed_spec(tmp: Path) -> Path:
    text = DEFAULT.read_text().replace('"debian:linux-image-cloud-amd64@bookworm"',
                                       '"debian:linux-image-cloud-amd64@trixie"')
    assert "cloud-amd64@trixie" in text
    path = tmp / "default.toml"            # same name: runs are compared with the default's
    path.write_text(text)
    return path


def redone(results: Path) -> list[str]:
    """Cells of the latest run that were not answered from a cache."""
    latest = max(results.glob("*/run.json"), key=lambda p: json.loads(p.read_text())["started"])
    cells = [json.loads(p.read_text()) for p in latest.parent.glob("cells/*.json")]
    return sorted(c["cell"]["id"] for c in cells
                  if c["cell"]["stage"] in ("build", "analyze", "boot") and not c.get("cached"))


def recorded_cold(results: Path) -> dict | None:
    """The first complete default run that built or booted something, from its record."""
    for run_json in sorted(results.glob("*/run.json")):
        meta = json.loads(run_json.read_text())
        if meta.get("spec_name") != "default" or meta.get("state") != "complete":
            continue
        cells = [json.loads(p.read_text()) for p in run_json.parent.glob("cells/*.json")]
        if any(not c.get("cached") and c["cell"]["stage"] in ("build", "boot") for c in cells):
            return {"run_id": meta["run_id"], "wall_s": meta.get("wall_s")}
    return None


def warm_figures(out: dict, args) -> None:
    timed_run(DEFAULT, args.results)                               # make sure everything is cached
    warm = []
    for _ in range(args.runs):
        secs, code, err = timed_run(DEFAULT, args.results)
        if "(cached)" not in err:
            print(err, file=sys.stderr)
        warm.append(secs)
    out["warm_rerun_s"] = round(statistics.median(warm), 2)
    out["warm_rerun_all_s"] = [round(x, 2) for x in warm]
    out["warm_measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.warm_only:
        return
    with tempfile.TemporaryDirectory(prefix="pvmatrix-bench-") as tmp:
        secs, code, err = timed_run(changed_spec(Path(tmp)), args.results)
        out["one_changed_s"] = round(secs, 2)
        out["one_changed_what"] = "debian-6.1-cloud -> debian:linux-image-cloud-amd64@trixie"
        out["one_changed_cells_redone"] = redone(args.results)
        out["one_changed_measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    timed_run(DEFAULT, args.results)                               # back to the default's state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also measure a run from an empty cache")
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--cold-only", action="store_true",
                        help="keep the warm and one-changed figures already in the JSON")
    parser.add_argument("--warm-only", action="store_true",
                        help="keep the one-changed figure already in the JSON (a second "
                             "measure of the same change finds its analysis cached)")
    args = parser.parse_args()
    out = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}

    if not args.cold_only:
        warm_figures(out, args)
    if args.cold or args.cold_only:
        with tempfile.TemporaryDirectory(prefix="pvmatrix-cold-") as tmp:
            env = dict(os.environ, PVMATRIX_CACHE=str(Path(tmp) / "cache"))
            secs, code, err = timed_run(DEFAULT, Path(tmp) / "results", env)
            cells = [json.loads(p.read_text()) for p in Path(tmp).glob("results/*/cells/*.json")]
            statuses: dict[str, int] = {}
            for c in cells:
                statuses[c["verdict"]["status"]] = statuses.get(c["verdict"]["status"], 0) + 1
            builds = [c for c in cells if c["cell"]["stage"] == "build"]
            built = sorted(c["cell"]["id"] for c in builds
                           if not c.get("cached") and c["verdict"]["status"] == "pass")
            # a figure only for a run that really built every kernel
            out["cold_default_s"] = (round(secs, 1) if code == 0 and builds
                                     and len(built) == len(builds) else None)
            out["cold_default_check"] = {"exit": code, "cells": statuses, "built": built,
                                         "stderr_tail": err.strip().splitlines()[-3:]}
            out["cold_default_how"] = ("bench/matrix.py --cold: empty pvmatrix cache (builds, "
                                       "ccache, downloads, dom0 userspace); container images kept")
    elif not str(out.get("cold_default_how", "")).startswith("bench/matrix.py --cold") \
            and (cold := recorded_cold(args.results)) and cold["wall_s"]:
        # a recorded first run only stands in for a --cold measure there is not
        out["cold_default_s"] = cold["wall_s"]
        out["cold_default_how"] = (f"wall time of run {cold['run_id']} (first default run that "
                                   "built/booted; caches may have held toolchain images, sources "
                                   "or ccache from earlier work)")
    out.setdefault("cold_default_s", None)
    out.pop("note", None)
    out.pop("partial", None)
    out["host"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                   "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
