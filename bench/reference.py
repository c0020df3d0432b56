#!/usr/bin/env python3
"""Nightly-run benchmark (issue 17): how long a spec takes on this machine, cold
and warm, and how many QEMU boots it makes. Writes bench/results/reference.json
for specs/reference.toml, and the same figures into bench/results/matrix.json
(beside bench/matrix.py's) for specs/default.toml.

    python3 bench/reference.py [--spec specs/reference.toml] [--dry-run]

Steps, each a real `pvmatrix run` (the CLI in a child process, wall clock):
- cold_s: the spec from an empty pvmatrix cache (a fresh temporary one; the
  container images stay, as in bench/matrix.py --cold), into fresh results;
- warm_one_changed_s: then, with that cache, the spec with one kernel changed
  (its first source-built kernel gets one more fragment, CHANGE_FRAGMENT: a
  new config, so its build, analysis and boots are redone; a prebuilt-only spec
  swaps its first package's suite instead);
- domU_cell_marginal_s: with that cache, a guest-only spec (the spec's first
  Xen release and booted profile, role GUEST_ROLE) of the dom0 fallback
  kernel, run once to warm it, then again with one more guest kernel of the
  spec (analysis cached, its domU cell not): the second run's time minus a
  warm rerun of the first;
- boots: the QEMU boots the cold run made, from its records (each boot task
  not answered from cache is one boot; each retry attempt another).
With --marginal only the guest-only steps run, on the user's cache, and only
domU_cell_marginal_s is written (the file's other figures stay).
With --warm RUN (a finished run of the spec, made with the user's own cache)
cold_s is not measured: the warm steps run on that cache (PVMATRIX_CACHE as
the user has it), and RUN's own wall time and boots are recorded as
`run_s` and `boots`, with how warm its cache was (`run_cache`: its builds
cached or not, from its records). RUN must have been made by this code's boot
harness (its records' inputs say which): another harness's verdicts are never
reused, so every boot would be redone.
Nothing is measured with --dry-run: it prints the steps and the specs it
would write. The goals are the issue's (GOALS), recorded beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
REFERENCE = REPO / "specs" / "reference.toml"
DEFAULT = REPO / "specs" / "default.toml"
OUT = {REFERENCE.resolve(): RESULTS / "reference.json", DEFAULT.resolve(): RESULTS / "matrix.json"}
GOALS = {"cold_s": 7200, "warm_one_changed_s": 600, "domU_cell_marginal_s": 15}
CHANGE_FRAGMENT = "hw/nvme"
GUEST_ROLE = "domU-pv"


@dataclass
class Step:
    """One timed `pvmatrix run`: its spec text, and where the spec goes."""
    key: str
    what: str
    spec: str                 # TOML text, written to a file named after the spec
    results: str              # the results folder's name under the work dir


def spec_data(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def toml(data: dict) -> str:
    """DATA as spec TOML (strings, lists of strings, tables, [[kernel]])."""
    def value(v) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(json.dumps(x) for x in v) + "]"
        return json.dumps(v)
    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, (dict, list))
             or (isinstance(v, list) and not (v and isinstance(v[0], dict)))]
    for table, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{table}]"] + [f"{k} = {value(x)}" for k, x in v.items()]
    for k in data.get("kernel", []):
        lines += ["", "[[kernel]]"] + [f"{key} = {value(x)}" for key, x in k.items()]
    return "\n".join(lines) + "\n"


def changed(data: dict) -> tuple[dict, str]:
    """DATA with one kernel changed, and what changed."""
    out = json.loads(json.dumps(data))
    built = next((k for k in out["kernel"] if "source" in k), None)
    if built is not None:
        built["fragments"] = [*built.get("fragments", []), CHANGE_FRAGMENT]
        return out, f"{built['name']}: + fragment {CHANGE_FRAGMENT}"
    k = out["kernel"][0]
    name, _, suite = k["package"].partition("@")
    k["package"] = f"{name}@{'trixie' if suite != 'trixie' else 'bookworm'}"
    return out, f"{k['name']}: package -> {k['package']}"


def guest_only(data: dict, extra: bool) -> tuple[dict, str]:
    """The spec's dom0 kernel hosting its own GUEST_ROLE cell under the first Xen
    release and booted profile; with EXTRA one more guest kernel of the spec."""
    m = data.get("matrix", {})
    names = [k["name"] for k in data["kernel"]]
    host = m.get("dom0_fallback") or names[0]
    other = next(n for n in names if n != host)
    kernels = [k for k in data["kernel"] if k["name"] == host or (extra and k["name"] == other)]
    hw = (m.get("boot_hardware") or m.get("hardware") or ["default"])[:1]
    spec = {"matrix": {"name": f"{m.get('name', 'spec')}-guest", "xen": m.get("xen", ["4.17"])[:1],
                       "hardware": hw, "roles": [GUEST_ROLE], "dom0_fallback": host},
            "kernel": kernels}
    return spec, other


def steps(spec: Path) -> list[Step]:
    data = spec_data(spec)
    name = data.get("matrix", {}).get("name", spec.stem)
    data.setdefault("matrix", {})["name"] = name
    one, what = changed(data)
    guest, _ = guest_only(data, extra=False)
    guest2, other = guest_only(data, extra=True)
    return [Step("cold_s", f"{name} from an empty cache", toml(data), "cold"),
            Step("warm_one_changed_s", f"{name}, one kernel changed ({what})", toml(one), "cold"),
            Step("guest_warmup", f"guest-only spec of the dom0 kernel ({GUEST_ROLE}), to warm it",
                 toml(guest), "guest"),
            Step("guest_warm_s", "the same guest-only spec again (all cached)", toml(guest), "guest"),
            Step("guest_plus_one_s", f"the guest-only spec with {other} as one more guest kernel",
                 toml(guest2), "guest")]


def timed_run(spec_file: Path, results: Path, env: dict) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pvmatrix.cli", "run", str(spec_file),
                           "--results", str(results)], cwd=REPO, capture_output=True, text=True,
                          env=env)
    return time.perf_counter() - start, done.returncode, done.stderr


def latest_run(results: Path) -> Path:
    return max(results.glob("*/run.json"), key=lambda p: json.loads(p.read_text())["started"]).parent


def boots(run_dir: Path) -> int:
    """QEMU boots a run made: the boot directories of its boot task outcomes not
    answered from cache (a Xen boot of many cells, or of many guest kernels in
    a shared boot, is one; a retry is a task and a boot of its own), plus each
    dom0 parked during the run (a snapshot made after it started, boot/snapshot.py)."""
    started = json.loads((run_dir / "run.json").read_text())["started"]
    dirs: set[str] = set()
    parked: set[str] = set()
    for p in (run_dir / "tasks").glob("boot-*.json"):
        task = json.loads(p.read_text())
        if task.get("cached"):
            continue
        for cell in task["cells"].values():
            if where := (cell.get("logs") or {}).get("boot_dir"):
                dirs.add(where)
            snap = ((cell.get("boot") or {}).get("provenance") or {}).get("snapshot") or {}
            if snap.get("made_s", 0) >= started:
                parked.add(snap["key"])
    return len(dirs) + len(parked)


def harnesses(run_dir: Path) -> set[str]:
    """The boot harness digests RUN's boots were made by (their records' inputs)."""
    recs = (json.loads(p.read_text()) for p in (run_dir / "cells").glob("*.json"))
    return {h for r in recs
            if r["cell"]["stage"] == "boot" and (h := (r.get("inputs") or {}).get("harness"))}


def other_harness(run_dir: Path) -> str | None:
    """Why RUN cannot be the warm cache of this code's rerun, or None: its boots
    were made by another boot harness (pvmatrix/boot, its data), and a verdict
    of another harness is never reused (tasks.harness_digest): every boot would
    be redone, and warm_one_changed_s would time a cold boot of the spec."""
    sys.path.insert(0, str(REPO))
    from pvmatrix.matrix.tasks import harness_digest
    if not (other := harnesses(run_dir) - {harness_digest()}):
        return None
    return (f"--warm {run_dir}: its boots were made by boot harness {', '.join(sorted(other))}, "
            f"this code's is {harness_digest()}: every boot would be redone; run the spec "
            "again with this code first")


def run_figures(run_dir: Path) -> dict:
    """A finished run's wall time, boots, and how many of its builds were cached."""
    run = json.loads((run_dir / "run.json").read_text())
    if run.get("state") != "complete":
        raise SystemExit(f"bench/reference.py: error: --warm {run_dir}: run is {run.get('state')}, "
                         "not complete")
    built = [json.loads(p.read_text()) for p in (run_dir / "cells").glob("*.json")]
    builds = {r["task"]: bool(r.get("cached")) for r in built if r["cell"]["stage"] == "build"}
    return {"run_s": run["wall_s"], "run_id": run["run_id"], "boots": boots(run_dir),
            "run_cache": {"builds": len(builds), "builds_cached": sum(builds.values())}}


GUEST_STEPS = ("guest_warmup", "guest_warm_s", "guest_plus_one_s")


def measure(spec: Path, work: Path, warm: Path | None = None, marginal: bool = False) -> dict:
    env = dict(os.environ) if warm or marginal else dict(os.environ, PVMATRIX_CACHE=str(work / "cache"))
    out: dict = run_figures(warm) if warm else {}
    for step in steps(spec):
        if (warm and step.key == "cold_s") or (marginal and step.key not in GUEST_STEPS):
            continue
        folder = work / step.key
        folder.mkdir()
        spec_file = folder / f"{spec.stem}.toml"
        spec_file.write_text(step.spec)
        secs, code, err = timed_run(spec_file, work / f"results-{step.results}", env)
        print(f"{step.key}: {secs:.1f} s, exit {code}: {step.what}", file=sys.stderr)
        if code != 0:                  # say why, before a later step trips over it
            print("\n".join(err.strip().splitlines()[-3:]), file=sys.stderr)
        out[step.key] = round(secs, 1)
        out.setdefault("exits", {})[step.key] = code
        if step.key == "cold_s":
            out["boots"] = boots(latest_run(work / "results-cold"))
            out["cold_stderr_tail"] = err.strip().splitlines()[-3:]
    out["domU_cell_marginal_s"] = round(out.pop("guest_plus_one_s") - out.pop("guest_warm_s"), 1)
    out.pop("guest_warmup", None)
    return out


def dry_run(spec: Path) -> None:
    print(f"would measure {spec} into {OUT.get(spec.resolve(), RESULTS / (spec.stem + '.json'))}, "
          "with a fresh PVMATRIX_CACHE and results under a temporary folder:")
    for i, step in enumerate(steps(spec), 1):
        print(f"\n{i}. {step.key}: pvmatrix run ({step.what}), results-{step.results}/")
        if step.key != "cold_s":
            print(re.sub(r"^", "     ", step.spec.split("[[kernel]]")[0].strip(), flags=re.M))
    print("\nthen: boots from the cold run's records; domU_cell_marginal_s = "
          "guest_plus_one_s - guest_warm_s")


def write(spec: Path, figures: dict) -> Path:
    path = OUT.get(spec.resolve(), RESULTS / f"{spec.stem}.json")
    data = json.loads(path.read_text()) if path.exists() else {}
    exits = {**data.get("exits", {}), **figures.get("exits", {})}
    data.update(figures)
    data["exits"] = exits
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    data["measured_at"] = {**data.get("measured_at", {}),
                           **{k: stamp for k in (*GOALS, "boots") if k in figures}}
    data["nightly"] = {"spec": str(spec.resolve().relative_to(REPO)) if spec.resolve().is_relative_to(REPO)
                       else spec.name, "goals": GOALS,
                       "met": {k: data.get(k) is not None and data[k] <= g
                               for k, g in GOALS.items()},
                       "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "host": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, action="append",
                        help="spec(s) to measure (default: specs/reference.toml and specs/default.toml)")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, measure nothing")
    parser.add_argument("--warm", type=Path, metavar="RUN",
                        help="skip cold_s: measure the warm steps on the user's cache after RUN "
                             "(a finished run of the one --spec), recording RUN's time and boots")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="keep the cache, specs and results of the steps in DIR (an empty or "
                             "new folder) instead of a temporary one, e.g. to publish the cold run")
    parser.add_argument("--marginal", action="store_true",
                        help="measure domU_cell_marginal_s alone, on the user's cache (the "
                             "guest-only steps); the other figures on file stay")
    args = parser.parse_args(argv)
    if args.work and args.work.exists() and (not args.work.is_dir() or any(args.work.iterdir())):
        print(f"bench/reference.py: error: --work {args.work}: not an empty folder",
              file=sys.stderr)
        return 2
    if args.warm and len(args.spec or []) != 1:
        print("bench/reference.py: error: --warm needs exactly one --spec", file=sys.stderr)
        return 2
    for spec in args.spec or [REFERENCE, DEFAULT]:
        if not spec.is_file():
            print(f"bench/reference.py: error: --spec {spec}: no such file", file=sys.stderr)
            return 2
        if args.warm and (why := other_harness(args.warm)):
            print(f"bench/reference.py: error: {why}", file=sys.stderr)
            return 2
        if args.dry_run:
            dry_run(spec)
            continue
        if args.work:
            (work := args.work.resolve() / spec.stem).mkdir(parents=True)
            figures = measure(spec, work, args.warm, args.marginal)
        else:
            with tempfile.TemporaryDirectory(prefix="pvmatrix-nightly-") as tmp:
                figures = measure(spec, Path(tmp), args.warm, args.marginal)
        print(json.dumps(figures, indent=2))
        print(f"-> {write(spec, figures)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
