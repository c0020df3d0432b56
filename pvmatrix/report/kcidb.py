"""A recorded run as KCIDB I/O JSON (schema v5.3), for KernelCI dashboards.

Checkouts are kernel sources (one per source identity), builds are kernels
(one per kernel: its build cell, or its package for a prebuilt kernel), tests
are the analyze and boot cells; a Xen cell's test names its Xen release, the
hypervisor package that ran and dom0's mode (PV or PVH) in its environment
(misc: xen_release, xen_package, dom0_mode; and in the comment). Ids are "pvmatrix:" + the source identity
(checkouts) or + RUN_ID/CELL_ID (builds, tests): the same run always exports
the same ids. Statuses (pvmatrix -> KCIDB):

  pass -> PASS, fail -> FAIL, skip -> SKIP (not applicable),
  broken -> ERROR (the harness failed; the kernel's status is unknown),
  blocked -> MISS, not run -> MISS (did not run, status unknown; unlike SKIP,
  MISS ranks above PASS in KCIDB summaries, so it is not hidden).

The export names no place on the host, as a published run does
(results/portable.py): a log is the run's copy, logs/DIGEST.log.gz in the
run folder (a run not yet published: its place in the cache,
$PVMATRIX_CACHE/...); a file only the host had is left out; an export that
would still name a host path is refused, naming it.

Standard library only; the tests validate the output with kcidb-io.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from .grid import build_grid
from .publish import roots_for
from .. import catalog
from ..build.toolchains import all_toolchains
from ..errors import UserError
from ..results.portable import Roots, host_paths, scrub

ORIGIN = "pvmatrix"
VERSION = {"major": 5, "minor": 3}
STATUS = {"pass": "PASS", "fail": "FAIL", "broken": "ERROR", "blocked": "MISS",
          "skip": "SKIP", "not run": "MISS"}
EXCERPT_LINES = 20
EXCERPT_MAX = 16384                      # the schema's maxLength for log_excerpt
DEB_ARCH = {"amd64": "x86_64", "i386": "i386", "arm64": "arm64"}


def _text(s: object) -> str:
    """A string the schema accepts (no NUL)."""
    return str(s).replace("\0", "")


def _segment(name: str) -> str:
    """One component of a KCIDB test path."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


def _time(ts: float | None) -> str | None:
    if not isinstance(ts, (int, float)) or ts <= 0:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def _start(rec: dict) -> str | None:
    """When the cell's task started: finished minus the task's duration."""
    task_s = (rec.get("durations") or {}).get("task_s") or 0
    return _time(rec["finished"] - task_s) if isinstance(rec.get("finished"), (int, float)) else None


def _excerpt(rec: dict) -> str | None:
    """The first evidence lines of the verdict."""
    lines = [_text(e.get("text", "")) for e in (rec["verdict"].get("evidence") or [])[:EXCERPT_LINES]]
    return "\n".join(lines)[:EXCERPT_MAX] if lines else None


def _logs(rec: dict) -> dict[str, str]:
    """The record's log files as it names them (published: relative to the run
    folder; made portable by _portable)."""
    return {name: path for name, path in (rec.get("logs") or {}).items() if path}


def _evidence_at(rec: dict) -> list[str]:
    """Where the evidence lines are: LOG:LINE."""
    return [f"{e['log']}:{e.get('line', 0)}" for e in rec["verdict"].get("evidence") or []
            if e.get("log")]


def _common(run, rec: dict) -> dict:
    """Fields shared by every object made from one cell record."""
    v = rec["verdict"]
    obj = {"origin": ORIGIN, "start_time": _start(rec), "log_excerpt": _excerpt(rec)}
    misc = {"run_id": run.id, "cell": rec["cell"]["id"], "kernel": rec["cell"]["kernel"],
            "pvmatrix_status": v["status"], "detail": _text(v.get("detail") or ""),
            "reason": _text(v.get("reason") or ""), "logs": _logs(rec),
            "evidence_at": _evidence_at(rec), "inputs": rec.get("inputs") or {},
            "cached": bool(rec.get("cached")), "provenance": rec.get("provenance"),
            "flaky": rec.get("flaky"),
            "retries": (rec.get("retries") or {}).get("summary"),
            "reproduce": (rec.get("reproduce") or {}).get("command")}
    obj["misc"] = misc
    return obj


def _prune(obj: dict) -> dict:
    """OBJ without unset fields (and its misc without unset entries)."""
    out = {k: v for k, v in obj.items() if v is not None}
    if isinstance(out.get("misc"), dict):
        out["misc"] = {k: v for k, v in out["misc"].items() if v is not None}
    return out


def _identity(*recs: dict | None) -> str | None:
    for rec in recs:
        for part in ("inputs", "manifest"):
            if rec and (ident := (rec.get(part) or {}).get("identity")):
                return ident
    return None


def kcidb_checkout(run, kernel: str, src: dict | None, bld: dict | None) -> dict:
    """The kernel's source as a KCIDB checkout (id by source identity)."""
    ident = _identity(src, bld)
    co = {"id": f"{ORIGIN}:{ident}" if ident else f"{ORIGIN}:{run.id}/{kernel}/source",
          "origin": ORIGIN}
    rec = src or bld or {}
    inputs = rec.get("inputs") or {}
    spec = inputs.get("source") or inputs.get("package") or (rec.get("manifest") or {}).get("source")
    if src:
        co.update(_common(run, src))
        status = src["verdict"]["status"]
        co["valid"] = {"pass": True, "fail": False}.get(status)
        co["comment"] = _text(f"{spec}: {src['verdict'].get('reason', '')}" if spec
                              else src["verdict"].get("reason", ""))
        co["misc"].update(version=(src.get("manifest") or {}).get("version"))
    else:
        co["misc"] = {"run_id": run.id}
    co["misc"].update(source=spec, identity=ident, kernels=[kernel])
    if spec and spec.startswith("git:") and ident and re.fullmatch(r"git:[0-9a-f]{40}", ident):
        co["git_commit_hash"] = ident[4:]
        co["git_commit_name"] = _text(spec.rpartition("@")[2])
    return _prune(co)


def _compiler(toolchain: str | None) -> str | None:
    if not toolchain:
        return None
    try:
        return f"{all_toolchains()[toolchain].compiler} ({toolchain})"
    except Exception:                 # an old record's toolchain, or no data file
        return toolchain


def kcidb_build(run, kernel: str, checkout_id: str, src: dict | None, bld: dict | None) -> dict:
    """The kernel as a KCIDB build: its build cell, or its package if prebuilt."""
    b = {"id": f"{ORIGIN}:{run.id}/{kernel}/build", "origin": ORIGIN, "checkout_id": checkout_id,
         "architecture": "x86_64", "misc": {"run_id": run.id, "kernel": kernel}}
    if bld:
        inputs, m = bld.get("inputs") or {}, bld.get("manifest") or {}
        base = inputs.get("base") or m.get("base")
        fragments = inputs.get("fragments") or m.get("fragments") or []
        durations = bld.get("durations") or {}
        b.update(_common(run, bld), status=STATUS.get(bld["verdict"]["status"]),
                 comment=_text(bld["verdict"].get("reason", "")),
                 config_name="+".join([base, *fragments]) if base else None,
                 compiler=_compiler(inputs.get("toolchain") or m.get("toolchain")),
                 duration=durations.get("build_s") or durations.get("task_s"))
        b["misc"].update(prebuilt=False, version=m.get("version"))
    elif src and ((src.get("inputs") or {}).get("package")
                  or src["verdict"].get("detail") == "prebuilt"):
        # a distribution's kernel: the package is the build, valid when it was fetched
        inputs, m = src.get("inputs") or {}, src.get("manifest") or {}
        package = m.get("package") or inputs.get("resolved")
        arch = re.search(r"_([a-z0-9]+)\.deb$", m.get("deb") or inputs.get("deb") or "")
        b.update(_common(run, src), status=STATUS.get(src["verdict"]["status"]),
                 config_name=package,
                 comment=_text(f"prebuilt {src['verdict'].get('reason', '')}"))
        if arch:
            b["architecture"] = DEB_ARCH.get(arch.group(1), arch.group(1))
        b["misc"].update(prebuilt=True, suite=m.get("suite"), version=m.get("version"))
    return _prune(b)


def path_of(cell: dict) -> str:
    """The KCIDB test path of an analyze or boot cell."""
    if cell["stage"] == "analyze":
        if cell.get("device") is None:
            return "xen.static"
        return "hw." + _segment(cell["id"].rsplit("/", 1)[-1])
    role = _segment(cell.get("role") or cell["column"])
    return f"xen.{role}" if cell.get("xen") else role


def kcidb_test(run, build_id: str, rec: dict, host: dict) -> dict:
    """An analyze or boot cell as a KCIDB test (HOST: the run's host facts)."""
    c, v = rec["cell"], rec["verdict"]
    t = {"id": f"{ORIGIN}:{run.id}/{c['id']}", "build_id": build_id, "path": path_of(c),
         "status": STATUS.get(v["status"]), **_common(run, rec),
         "comment": _text(f"{c['column']}: {v.get('reason', '')}")}
    role_s = (rec.get("durations") or {}).get("role_s")
    if c["stage"] == "boot" and isinstance(role_s, (int, float)):
        t["duration"] = role_s
    xen = xen_of(rec)
    mode = f", {xen['dom0_mode']} dom0" if xen.get("dom0_mode") else ""
    where = (f"Xen {xen['xen_release']} in QEMU{mode}" if xen
             else "QEMU" if c["stage"] == "boot" else "static analysis")
    env_misc = {k: c.get(k) for k in ("xen", "hardware", "device") if c.get(k)}
    env_misc.update(xen)
    if c["stage"] == "boot":
        env_misc.update({k: host[k] for k in ("qemu", "accel", "cpus", "mem_gib") if host.get(k)})
    t["environment"] = {"comment": _text(f"{where}, hardware profile {c.get('hardware') or '-'}"),
                        "misc": env_misc}
    t["misc"].update(column=c["column"], role=c.get("role"), **xen)
    return _prune(t)


def xen_of(rec: dict) -> dict:
    """A Xen cell's release, the hypervisor package that ran (when the boot
    recorded it) and dom0's mode (PV, or PVH for dom0-pvh); {} off Xen."""
    c = rec["cell"]
    if not c.get("xen") or not c.get("role"):
        return {}
    out = {"xen_release": c["xen"]}
    if role := catalog.all("role").get(c["role"]):     # not a role of an older pvmatrix
        out["dom0_mode"] = role.dom0_mode
    built = ((rec.get("provenance") or {}).get("xen") or {})
    if built.get("package"):
        out["xen_package"] = built["package"]
    return out


HOST_FILE = re.compile(r"/\S*")       # a whole value that is an absolute path (LOG:LINE too)


def _portable(obj: dict, roots: Roots) -> dict:
    """OBJ as a published run names places (results/portable.scrub: the cache
    as $PVMATRIX_CACHE, the results directory relative, host-only keys
    dropped); a path in its misc still absolute after that (a log outside the
    cache and the run) names a file only this host has: dropped too."""
    obj = scrub(obj, roots)
    if isinstance(obj.get("misc"), dict):
        obj["misc"] = _without_host_files(obj["misc"])
    return obj


def _without_host_files(data):
    if isinstance(data, dict):
        return {k: _without_host_files(v) for k, v in data.items() if not _host_file(v)}
    if isinstance(data, list):
        return [_without_host_files(v) for v in data if not _host_file(v)]
    return data


def _host_file(value) -> bool:
    return isinstance(value, str) and HOST_FILE.fullmatch(value) is not None


def to_kcidb(run) -> dict:
    """The run as one KCIDB I/O object: version, checkouts, builds, tests; no
    host path in it (UserError, naming the path, otherwise)."""
    roots = roots_for(run.dir.parent)
    data = {kind: [_portable(o, roots) for o in objs] for kind, objs in _objects(run).items()}
    if found := host_paths(json.dumps(data, default=str), roots):
        raise UserError(f"run {run.id}: the KCIDB export would name host path {found[0]!r} "
                        "(set PVMATRIX_CACHE to the cache the run used)")
    return {"version": dict(VERSION), **data}


def _objects(run) -> dict[str, list[dict]]:
    """The run's checkouts, builds and tests, as recorded."""
    g = build_grid(run)
    checkouts: dict[str, dict] = {}
    builds, tests = [], []
    host = g.meta.get("host") or {}
    for kernel in g.kernels:
        recs = [r for r in g.records if r["cell"]["kernel"] == kernel]
        src = next((r for r in recs if r["cell"]["stage"] == "source"), None)
        bld = next((r for r in recs if r["cell"]["stage"] == "build"), None)
        co = kcidb_checkout(run, kernel, src, bld)
        if co["id"] in checkouts:
            checkouts[co["id"]]["misc"]["kernels"].append(kernel)
        else:
            checkouts[co["id"]] = co
        b = kcidb_build(run, kernel, co["id"], src, bld)
        builds.append(b)
        tests += [kcidb_test(run, b["id"], r, host) for r in recs
                  if r["cell"]["stage"] in ("analyze", "boot")]
    return {"checkouts": list(checkouts.values()), "builds": builds, "tests": tests}


def render(run) -> str:
    return json.dumps(to_kcidb(run), indent=2, default=str) + "\n"
