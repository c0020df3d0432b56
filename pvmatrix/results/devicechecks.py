"""A device cell (the analyzer's coverage of one device of a profile) next to
what the host boots of the same kernel and profile bound: the boot cells'
records carry records.DeviceCheck per device (boot/facts.py); this joins
them to the device cells, for the reports to show side by side."""

from __future__ import annotations

from ..records import BootFacts, DeviceCheck, Evidence

DISAGREE_MARK = "≠"      # a cell whose static and booted evidence disagree
BOOTED_NOTE = "booted"   # the note of a device cell's evidence from a boot
# a host boot's verdict details (boot/verdicts.py) saying the kernel died: its
# probes never ran, so a device it did not bind says nothing against the analyzer
DIED = frozenset({"panic", "oops", "crashed", "halted", "timeout"})


def _booted(records: list[dict]) -> dict[str, list[tuple[DeviceCheck, dict]]]:
    """Device cell id -> (check, the boot cell's record) from every host boot
    of the same kernel and hardware profile (dom0, bare metal)."""
    booted: dict[tuple[str, str | None, str], list[tuple[DeviceCheck, dict]]] = {}
    for rec in records:
        boot, c = rec.get("boot"), rec["cell"]
        if not boot or not boot.get("checks") or (rec.get("verdict") or {}).get("detail") in DIED:
            continue
        for x in BootFacts.from_dict(boot).checks or ():
            booted.setdefault((c["kernel"], c.get("hardware"), x.device), []).append((x, rec))
    out = {}
    for rec in records:
        c = rec["cell"]
        if c["stage"] == "analyze" and c.get("device"):
            column = c["id"].rsplit("/", 1)[-1]          # KERNEL/hw/PROFILE/QEMU-NAME
            if got := booted.get((c["kernel"], c.get("hardware"), column)):
                out[c["id"]] = got
    return out


def by_device_cell(records: list[dict]) -> dict[str, list[DeviceCheck]]:
    """Device cell id -> the checks of that device from every host boot of the
    same kernel and hardware profile (dom0, bare metal), from RECORDS (cell
    record JSON)."""
    return {cell: [x for x, _ in got] for cell, got in _booted(records).items()}


def marker(checks: list[DeviceCheck]) -> str:
    """The few words a device cell adds: each boot's binding, and DISAGREE_MARK
    when a boot disagrees with the static answer, e.g. " | dom0 bound ≠" (the
    same words from several boots, e.g. dom0 under each Xen, once)."""
    if not checks:
        return ""
    parts = [f"{x.role} {'bound' if x.bound else 'unbound'}"
             + ("" if x.booted or not x.bound else " (probe failed)")
             + (f" {DISAGREE_MARK}" if x.disagree else "") for x in checks]
    return " | " + ", ".join(dict.fromkeys(parts))


def with_booted(records: list[dict]) -> list[dict]:
    """RECORDS, each device cell that host boots checked given their evidence
    (each check's line, in that boot's serial log) and that log: the static
    and the booted evidence both reachable from the device cell. New dicts;
    the records read are not changed."""
    joined = _booted(records)
    out = []
    for rec in records:
        got = joined.get(rec["cell"]["id"])
        if not got:
            out.append(rec)
            continue
        v = dict(rec["verdict"])
        logs = dict(rec.get("logs") or {})
        ev = list(v.get("evidence") or [])
        for x, boot in got:
            serial = (boot.get("logs") or {}).get("serial") or ""
            if serial:
                logs[f"serial ({boot['cell']['id']})"] = serial
            ev.append(Evidence(f"{x.text} (cell {boot['cell']['id']})", BOOTED_NOTE,
                               x.line or 0, serial if x.line else "").to_dict())
        out.append({**rec, "verdict": {**v, "evidence": ev}, "logs": logs})
    return out
