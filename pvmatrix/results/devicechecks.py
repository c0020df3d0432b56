"""A device cell (the analyzer's coverage of one device of a profile) next to
what the host boots of the same kernel and profile bound: the boot cells'
records carry records.DeviceCheck per device (boot/facts.py); this joins
them to the device cells, for the reports to show side by side."""

from __future__ import annotations

from ..records import BootFacts, DeviceCheck

DISAGREE_MARK = "≠"      # a cell whose static and booted evidence disagree


def by_device_cell(records: list[dict]) -> dict[str, list[DeviceCheck]]:
    """Device cell id -> the checks of that device from every host boot of the
    same kernel and hardware profile (dom0, bare metal), from RECORDS (cell
    record JSON)."""
    booted: dict[tuple[str, str | None, str], list[DeviceCheck]] = {}
    for rec in records:
        boot, c = rec.get("boot"), rec["cell"]
        if not boot or not boot.get("checks"):
            continue
        for x in BootFacts.from_dict(boot).checks or ():
            booted.setdefault((c["kernel"], c.get("hardware"), x.device), []).append(x)
    out = {}
    for rec in records:
        c = rec["cell"]
        if c["stage"] == "analyze" and c.get("device"):
            column = c["id"].rsplit("/", 1)[-1]          # KERNEL/hw/PROFILE/QEMU-NAME
            if got := booted.get((c["kernel"], c.get("hardware"), column)):
                out[c["id"]] = got
    return out


def marker(checks: list[DeviceCheck]) -> str:
    """The few words a device cell adds: each boot's binding, and DISAGREE_MARK
    when a boot disagrees with the static answer, e.g. " | dom0 bound ≠"."""
    if not checks:
        return ""
    parts = [f"{x.role} {'bound' if x.bound else 'unbound'}"
             + ("" if x.booted or not x.bound else " (probe failed)")
             + (f" {DISAGREE_MARK}" if x.disagree else "") for x in checks]
    return " | " + ", ".join(parts)
