"""The published table as data: rows = kernels, columns = build, static Xen
support, hardware devices, real machines' coverage, then Xen roles; each
entry is one cell record. A device cell that host boots checked carries
their evidence too (results/devicechecks.py), and its text their binding."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import catalog
from ..records import DeviceCheck
from ..results.devicechecks import by_device_cell, marker, with_booted
from ..results.records import machine_of, safe_name

STATUS_ORDER = ("pass", "fail", "broken", "blocked", "skip", "not run")


@dataclass
class Grid:
    meta: dict
    kernels: list[str]
    columns: list[str]
    entries: dict[tuple[str, str], dict]         # (kernel, column) -> record
    records: list[dict] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    checks: dict[str, list[DeviceCheck]] = field(default_factory=dict)  # device cell id ->

    def text(self, rec: dict | None) -> str:
        """The few words REC's table cell shows (short()), with the host boots'
        binding beside a device cell's static coverage."""
        return short(rec, self.checks.get(rec["cell"]["id"]) if rec else None)

    def get(self, kernel: str, column: str) -> dict | None:
        return self.entries.get((kernel, column))

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUS_ORDER}
        for r in self.records:
            out[r["verdict"]["status"]] = out.get(r["verdict"]["status"], 0) + 1
        return out


def _column_rank(rec: dict) -> tuple:
    c = rec["cell"]
    if c["stage"] in ("source", "build"):
        return (0, "")
    if c["stage"] == "analyze":
        if machine_of(c):
            return (3, c["column"])
        return (1 if c.get("device") is None else 2, c["hardware"] or "", c["column"])
    order = catalog.names("role")              # a role no longer known goes last
    role = order.index(c["role"]) if c.get("role") in order else len(order)
    return (4, c.get("xen") or "", role, c["column"])


def build_grid(run) -> Grid:
    read = run.records()
    checks = by_device_cell(read)
    records = with_booted(read) if checks else read
    meta = run.meta
    kernels = list(meta.get("kernels") or [])
    entries: dict[tuple[str, str], dict] = {}
    ranks: dict[str, tuple] = {}
    versions: dict[str, str] = {}
    for rec in records:
        c = rec["cell"]
        if c["kernel"] not in kernels:
            kernels.append(c["kernel"])
        m = rec.get("manifest") or {}
        if m.get("version"):
            versions.setdefault(c["kernel"], m["version"])
        column = c["column"]
        if c["stage"] == "source":
            if (c["kernel"], "build") in entries:
                continue                              # a built kernel shows its build cell
            column = "build"
        entries[(c["kernel"], column)] = rec
        ranks.setdefault(column, _column_rank(rec))
    columns = sorted(ranks, key=lambda col: ranks[col])
    return Grid(meta, kernels, columns, entries, records, versions, checks)


def short(rec: dict | None, checks: list[DeviceCheck] | None = None) -> str:
    """The few words a table cell shows; CHECKS: the host boots' checks of a
    device cell's device (devicechecks.marker)."""
    if rec is None:
        return ""
    return _short(rec) + marker(checks or [])


def _short(rec: dict) -> str:
    v = rec["verdict"]
    status, detail = v["status"], v.get("detail") or ""
    c = rec["cell"]
    if status == "pass":
        if c["stage"] == "boot":
            secs = (rec.get("durations") or {}).get("role_s")
            return f"pass {secs:.0f} s" if isinstance(secs, (int, float)) else "pass"
        return detail or "pass"
    retried = retries_note(rec)
    if status == "fail" and c["stage"] == "analyze":
        return (detail or "fail") + retried
    if detail and detail not in (status, "failed"):
        return f"{status}: {detail}{retried}"
    return status + retried


def retries_note(rec: dict) -> str:
    """" (flaky)" or " 3/3" for a retried cell (see matrix/retry.py), else ""."""
    r = rec.get("retries")
    if not r:
        return ""
    if r.get("outcome") == "flaky":
        return " (flaky)"
    if r.get("outcome") == "reproduced":
        return f" {r['failed']}/{r['of']}"
    return " (unconfirmed)"


PROVENANCE_KEYS = ("source_identity", "config_sha256", "toolchain_image", "toolchain_image_id",
                   "dom0_kernel_id", "qemu", "xen", "dom0_userspace", "tool")


def provenance_lines(rec: dict) -> list[tuple[str, str]]:
    """(name, value) per provenance entry, nested ones flattened, digests shortened."""
    prov = rec.get("provenance") or {}
    out = []
    for key in PROVENANCE_KEYS:
        val = prov.get(key)
        if isinstance(val, dict):
            val = " ".join(_short_digest(str(v)) for k, v in val.items()
                           if v and k not in ("binary", "cpio", "version"))
        if val:
            out.append((key, _short_digest(str(val))))
    return out


def _short_digest(text: str) -> str:
    head, sep, hexes = text.rpartition(":")
    if len(hexes) == 64 and all(ch in "0123456789abcdef" for ch in hexes):
        return f"{head}{sep}{hexes[:16]}"
    return text


def anchor(rec: dict) -> str:
    return "cell-" + safe_name(rec["cell"]["id"])
