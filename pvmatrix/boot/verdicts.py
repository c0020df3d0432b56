"""From a parsed serial log to one verdict per role, with the log lines that
prove it. Nothing is assumed: ok needs every expected marker, and every
other status points at the lines it came from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..records import BLOCKED, FAIL, NOT_RUN as NOT_RUN_STATUS, PASS, Evidence, Verdict
from .chain import Parts, cut, steps_of
from .markers import Line, crash_signs, death_pattern, find, matches
from .roles import Role

# The judge's own words, kept as Verdict.detail: ok passes, the others fail,
# and a guest dom0 did not run is blocked (reports show e.g. "fail: panic").
OK, FAILED, PANIC, CRASHED, OOPS, TIMEOUT, HALTED, NOT_RUN = (
    "ok", "failed", "panic", "crashed", "oops", "timeout", "halted", "not run")
EARLIER_STEP = "earlier step"     # blocked by the guest's own failed lifecycle step, not the host
ERRORISH = re.compile(r"error|fail|cannot|unable|denied|errno|not |no ", re.I)


@dataclass
class BootOutcome:
    """What the runner knows besides the log."""
    timed_out: bool = False
    exit_code: int | None = None
    wall_s: float = 0.0
    stderr_tail: list[str] = field(default_factory=list)


def _domain_crash(line: Line) -> bool:
    """A Xen line saying a domain crashed (data/deaths.toml: kind domain or xen)."""
    return line.is_xen and bool(death_pattern("domain").search(line.text)
                                or death_pattern("xen").search(line.text))


def _verdict(word: str, reason: str, evidence: list[Evidence],
             seconds: float | None = None) -> Verdict:
    """The verdict the judge's WORD stands for: ok passes, any other word fails."""
    return Verdict(PASS if word == OK else FAIL, reason, word, evidence, seconds)


def _ev(lines: list[Line], note: str = "", limit: int = 12) -> list[Evidence]:
    return [Evidence(ln.text, note, ln.no) for ln in lines[:limit]]


def _around(all_lines: list[Line], hit: Line, before: int = 6, after: int = 2,
            region: str | None = None) -> list[Line]:
    pool = [ln for ln in all_lines if region is None or ln.region == region]
    idx = next((i for i, ln in enumerate(pool) if ln.no == hit.no), 0)
    return [ln for ln in pool[max(0, idx - before): idx + after + 1] if ln.text.strip()]


def _tail(lines: list[Line], n: int = 8) -> list[Line]:
    return [ln for ln in lines if ln.text.strip()][-n:]


def _crash(region_lines: list[Line], all_lines: list[Line], region: str) -> Verdict | None:
    signs = crash_signs(region_lines)
    if signs["xen"]:
        return _verdict(CRASHED, f"Xen: {signs['xen'][0].text.strip()}",
                        _ev(_around(all_lines, signs["xen"][0], 4, 6)))
    if signs["panic"]:
        hit = signs["panic"][0]
        return _verdict(PANIC, hit.text.strip(), _ev(_around(all_lines, hit, 6, 1, region)))
    if signs["oops"]:
        hit = signs["oops"][0]
        return _verdict(OOPS, hit.text.strip(), _ev(_around(all_lines, hit, 1, 8, region)))
    return None


def _halted(region_lines: list[Line], all_lines: list[Line], missing: str,
            seconds: float | None = None) -> Verdict | None:
    """A machine halted before the role's MISSING marker: its halt line, not a
    missing marker found at the deadline."""
    halts = crash_signs(region_lines)["halt"]
    if not halts:
        return None
    hit = halts[0]
    return _verdict(HALTED, f"halted before {missing!r}: {hit.text.strip()}",
                    _ev(_around(all_lines, hit, 6, 2)), seconds)


def _missing(role: Role, lines: list[Line], subst: dict[str, str]) -> list[str]:
    return [p for p in role.expect if not find(lines, p, subst)]


def _failed_checks(lines: list[Line], region_out: list[Line]) -> list[Evidence]:
    """Markers saying ok=0, with the relayed output of their command."""
    ev: list[Evidence] = []
    for ln in lines:
        if ln.fields.get("ok") == "0":
            ev.append(Evidence(ln.text, "check failed", ln.no))
            tag = ln.fields.get("check") or ln.fields.get("guest")
            out = [o for o in region_out if o.tag == tag]
            ev += _ev([o for o in out if ERRORISH.search(o.text)] or out, "its output", 6)
    return ev


def toolstack_failure(role: Role, lines: list[Line], tags: list[str]) -> list[Line]:
    """Output of xl create or of a toolstack check (TAGS) that blames dom0's
    toolstack (e.g. libxl's lock without FILE_LOCKING)."""
    pats = [re.compile(p, re.I) for p in role.toolstack_errors]
    return [ln for ln in lines if ln.tag in tags and any(p.search(ln.text) for p in pats)]


def judge_host(role: Role, lines: list[Line], outcome: BootOutcome,
               guests: list[str] = ()) -> Verdict:
    """baremetal / dom0: the kernel booted directly, its init and (dom0) toolstack."""
    host = [ln for ln in lines if ln.region == "host"]
    markers = [ln for ln in host if ln.is_marker]
    crash = _crash(host, lines, "host")
    missing = _missing(role, markers, {})
    if crash:                       # an oops counts even when the init went on
        return crash
    checks = [p.split()[0].split("=", 1)[1] for p in role.expect if p.startswith("check=")]
    if role.toolstack_errors and (blame := toolstack_failure(role, lines, [*guests, *checks])):
        return _verdict(FAILED, f"toolstack: {blame[0].text.strip()}",
                        _ev(blame, "xl create output"))
    if not missing:
        return _verdict(OK, "every expected marker seen",
                        _ev([find(markers, p) for p in role.expect], "expected marker"))
    if halted := _halted(host, lines, missing[0]):
        return halted
    out = [ln for ln in host if ln.tag]
    ev = _failed_checks(markers, out)
    if outcome.timed_out and not ev:
        return _verdict(TIMEOUT, f"no {missing[0]!r} before the deadline "
                        f"({outcome.wall_s:.0f} s)", _ev(_tail(host), "last lines"))
    if not ev:
        ev = _ev(_tail(host), "last lines")
        ev += [Evidence(t, "qemu stderr") for t in outcome.stderr_tail[-3:]]
    return _verdict(FAILED, f"missing marker {missing[0]!r}", ev)


def judge_hosting(role: Role, host: Verdict, guests: dict[str, Verdict]) -> Verdict:
    """A host role that `hosts` guests (dom0-pvh): its own verdict, then each hosted
    guest's (GUESTS: role name -> verdict); it passes only when they all pass."""
    if not role.hosts or not host.ok:
        return host
    for name in role.hosts:
        v = guests.get(name)
        if v is None or not v.ok:
            why = v.reason if v else "no verdict"
            word = v.detail if v and v.detail not in (OK, NOT_RUN, EARLIER_STEP) else FAILED
            return _verdict(word, f"its guest {name} did not pass: {why}",
                            [Evidence(f"{name}: {why}", "hosted guest")]
                            + [Evidence(e.text, f"{name}: {e.note}", e.line)
                               for e in (v.evidence if v else [])[:8]], host.seconds)
    ev = list(host.evidence) + [Evidence(f"{n}: {guests[n].reason}", "hosted guest")
                                for n in role.hosts]
    return _verdict(OK, f"{host.reason}; its guests {', '.join(role.hosts)} passed", ev,
                    host.seconds)


def judge_guest(role: Role, lines: list[Line], outcome: BootOutcome, dom0: Verdict,
                subst: dict[str, str], chain: tuple[Role, ...] = ()) -> Verdict:
    """domU-pv / domU-pvh: one guest started by dom0's xl, seen through its console.
    CHAIN: the roles riding on that guest (its boot, then its lifecycle steps,
    chain.py); ROLE is judged on its own part of it."""
    if not dom0.ok and dom0.detail != OOPS:     # an oops in dom0 still runs its guests
        why = "dom0 toolstack" if dom0.detail == FAILED else f"dom0 {dom0.detail}"
        return Verdict(BLOCKED, why, NOT_RUN, dom0.evidence[:4])
    if role.passthrough and (refused := passthrough_refused(role, lines)):
        return refused
    g = role.where
    mine = [ln for ln in lines if ln.region == g or ln.tag == g]
    markers = [ln for ln in mine if ln.is_marker]
    created = _last(markers, "stage=create")      # after a retry: the second attempt
    if created is None:
        if outcome.timed_out:
            return _verdict(TIMEOUT, "boot deadline passed before the guest was created",
                            _ev(_tail([ln for ln in lines if ln.region == "host"]), "last lines"))
        return Verdict(BLOCKED, "dom0 never started it", NOT_RUN)
    if created.fields.get("ok") != "1":
        out = [ln for ln in mine if ln.tag == g]
        errs = _errors(out)
        return _verdict(FAILED, f"xl create: {(errs[0].text.strip() if errs else 'failed')}",
                        [Evidence(created.text, "xl create failed", created.no)]
                        + _ev(errs, "xl create output"))
    parts = cut(mine, g, created, steps_of(tuple(chain), role), role.lifecycle)
    if blocked := _blocked(role, tuple(chain), parts, lines, outcome, dom0, subst):
        return blocked
    return _in_chain(_judge_part(role, parts, lines, outcome, subst, created), role, parts)


def _in_chain(v: Verdict, role: Role, parts: Parts) -> Verdict:
    """A step that did not pass says which steps the guest went through before it:
    a migration failing after a save is a second suspend, not a fresh guest's."""
    before = parts.steps[:max(parts.index(role.lifecycle) - 1, 0)]
    if v.ok or not before:
        return v
    v.reason += f" (the guest had been through the {' and '.join(before)} before)"
    return v


def _blocked(role: Role, chain: tuple[Role, ...], parts: Parts, lines: list[Line],
             outcome: BootOutcome, dom0: Verdict, subst: dict[str, str]) -> Verdict | None:
    """A step dom0 never began because the step before it failed (and left no
    guest to go on with): blocked by that step, with its reason."""
    i = parts.index(role.lifecycle)
    if i < 2 or parts.began(role.lifecycle):
        return None
    before = next(r for r in chain if r.lifecycle == parts.steps[i - 2])
    v = judge_guest(before, lines, outcome, dom0, subst, chain)
    if v.ok:
        return None
    return Verdict(BLOCKED, f"the guest did not survive the {before.lifecycle}: {v.reason}",
                   EARLIER_STEP, [Evidence(f"{before.name}: {v.reason}", f"the {before.lifecycle}")]
                   + v.evidence[:4], v.seconds)


def _judge_part(role: Role, parts: Parts, lines: list[Line], outcome: BootOutcome,
                subst: dict[str, str], created: Line) -> Verdict:
    """ROLE's verdict from its own part of its guest's lines (chain.Parts.own)."""
    g = role.where
    mine = parts.own(role)
    markers = [ln for ln in mine if ln.is_marker]
    exit_ = _last(markers, "stage=exit")
    retry = find(markers, "stage=retry")
    seconds = _part_seconds(parts, role, exit_)
    crash = _crash(mine, lines, g)
    end = parts.end(role) or len(lines) + 1
    domids = {m.fields["domid"] for m in [created, *markers] if "domid" in m.fields
              and m.no >= created.no}
    xen_lines = [ln for ln in lines if ln.is_xen and ln.no <= end and any(
        re.search(rf"\bd{d}(v\d+)?\b", ln.text) for d in domids)]
    if crash:
        crash.seconds = seconds
        return crash
    state = exit_.fields.get("state") if exit_ else None
    fatal = [ln for ln in xen_lines if _domain_crash(ln)]
    if fatal:
        dump = [ln for ln in lines if ln.is_xen and fatal[0].no <= ln.no <= fatal[0].no + 8]
        return _verdict(CRASHED, f"Xen: {fatal[0].text.strip()}", _ev(dump, "Xen on this domain")
                        + _ev(_tail([ln for ln in mine if ln.region == g], 4), "last console lines"),
                        seconds)
    expect = _expected(role, parts)
    missing = [p for p in expect if not _found(markers, p, subst)]
    if state == "crashed" and missing:
        return _verdict(CRASHED, "the domain crashed", _ev(xen_lines, "Xen on this domain")
                        + _ev(_tail([ln for ln in mine if ln.region == g]), "console"), seconds)
    if role.lifecycle and (step := _failed_step(markers, created)):
        return _step_failed(step, [ln for ln in mine if ln.tag == g], role.lifecycle, seconds)
    if not missing:
        ev = _ev([_found(markers, p, subst) for p in expect], "expected marker", len(expect))
        if role.lifecycle and (broken := _continuity(markers, role.lifecycle, seconds)):
            return broken
        said = bound_devices(markers) if role.guest_type == "hvm" else ""
        if retry is None or _first_reached(lines, g, role, parts):
            return _verdict(OK, "every expected marker seen" + said, ev, seconds)
        first = _first_attempt_death(lines, g, retry)
        return _verdict(OK, f"every expected marker seen{said}, on a second attempt (the first: "
                        f"{retry.fields.get('after')}; flaky)",
                        ev + [Evidence(retry.text, "retried", retry.no)]
                        + _ev(first[-1:], "first attempt"), seconds)
    if halted := _halted([ln for ln in mine if ln.region == g], lines, missing[0].format(**subst),
                         seconds):
        return halted
    console = [ln for ln in mine if ln.region == g and not ln.is_marker]
    if state == "timeout" or (exit_ is None and outcome.timed_out):
        return _verdict(TIMEOUT, f"no {missing[0]!r} before the guest deadline",
                        _ev(_tail(console) or xen_lines, "last console lines"), seconds)
    bad = [ln for ln in markers if ln.fields.get("ok") == "0"]
    ev = _ev(bad, "probe failed") + _ev(xen_lines, "Xen on this domain", 4) \
        + _ev(_tail(console, 6), "last console lines")
    return _verdict(FAILED, f"missing marker {missing[0].format(**subst)!r}"
                   + (f" (state {state})" if state else ""), ev, seconds)


def _found(markers: list[Line], pattern: str, subst: dict[str, str]) -> Line | None:
    """The marker PATTERN asks for; a probe at boot (no when=) is not one made
    after a lifecycle step (when=resumed)."""
    if pattern.startswith("probe=") and "when=" not in pattern:
        markers = [ln for ln in markers if "when" not in ln.fields]
    return find(markers, pattern, subst)


def _expected(role: Role, parts: Parts) -> tuple[str, ...]:
    """ROLE's markers to see: a plain role whose guest goes on to lifecycle steps
    ends its part at the guest's first stage=ready (its stage=done comes after
    every step)."""
    if role.lifecycle or not parts.steps:
        return role.expect
    return tuple("stage=ready" if p == "stage=done" else p for p in role.expect)


def _first_reached(lines: list[Line], g: str, role: Role, parts: Parts) -> bool:
    """Whether a retried guest's first attempt (relayed as G#1) got through ROLE's
    own part of the chain (then its death was a later step's, not this cell's)."""
    if role.lifecycle:
        end = f"stage=resumed step={role.lifecycle}"
    elif parts.steps:
        end = "stage=ready"
    else:
        return False
    return any(ln.region == f"{g}#1" and matches(ln.fields, end) for ln in lines)


def _part_seconds(parts: Parts, role: Role, exit_: Line | None) -> float | None:
    """ROLE's own time: the guest's boot (from its start until dom0 began the
    first step), and a step's own time (until the next began, or the guest's
    end), as a guest doing only that step would take; else the guest's whole time."""
    whole = _guest_seconds(exit_)
    if not parts.steps or whole is None:
        return whole
    start = float(exit_.fields["start"])
    ups = [_up(b) for b in parts.begins[1:]] + [float(exit_.fields["up"])]
    boot = (ups[0] - start) if ups[0] is not None else None
    i = parts.index(role.lifecycle)
    if i == 0 or boot is None:
        return round(boot, 2) if boot is not None else whole
    nxt = next((u for u in ups[i:] if u is not None), None)
    if ups[i - 1] is None or nxt is None:
        return whole
    return round(boot + nxt - ups[i - 1], 2)


def _up(ln: Line | None) -> float | None:
    try:
        return float(ln.fields["up"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


# Xen's own word on its IOMMU at boot (xen/drivers/passthrough/iommu.c, iommu_setup)
IOMMU_LINE = re.compile(r"I/O virtualisation (en|dis)abled")
PLATFORM = "platform"      # the detail of a passthrough this platform cannot do
PASSTHROUGH_STEPS = ("assignable", "create")   # dom0's steps before the guest runs


def passthrough_refused(role: Role, lines: list[Line]) -> Verdict | None:
    """A passthrough guest dom0 could not start: `not run` when the toolstack's
    output after its failed step (xl pci-assignable-add, xl create) says this
    platform cannot pass a device through (roles.toml passthrough.cannot, e.g. no
    IOMMU), quoting that line and Xen's word on its IOMMU; blocked when
    pci-assignable-add failed otherwise (dom0's doing). None: judge it as a guest."""
    g = role.where
    steps = [ln for ln in lines if ln.region == g and ln.is_marker
             and ln.fields.get("stage") in PASSTHROUGH_STEPS]
    step = next((ln for ln in reversed(steps) if ln.fields.get("ok") == "0"), None)
    if step is None:
        return None
    out = [ln for ln in lines if ln.tag == g and ln.no > step.no][:40]
    xen = _ev([ln for ln in lines if ln.is_xen and IOMMU_LINE.search(ln.text)], "Xen's IOMMU", 2)
    pats = [re.compile(p, re.I) for p in role.passthrough.cannot]
    if hit := next((ln for ln in out if any(p.search(ln.text) for p in pats)), None):
        return Verdict(NOT_RUN_STATUS, f"PCI passthrough cannot work here: {hit.text.strip()}",
                       PLATFORM, [Evidence(hit.text.strip(), f"xl {_step_name(step)}", hit.no),
                                  Evidence(step.text, "failed step", step.no)] + xen)
    if step.fields["stage"] != "assignable":
        return None                 # xl create failed otherwise: the guest's verdict says why
    errs = _errors(out)
    return Verdict(BLOCKED, "dom0 could not hand the device over: xl pci-assignable-add: "
                   + (errs[0].text.strip() if errs else "failed"), NOT_RUN,
                   [Evidence(step.text, "xl pci-assignable-add failed", step.no)]
                   + _ev(errs, "its output", 6) + xen)


def _step_name(step: Line) -> str:
    return "pci-assignable-add" if step.fields.get("stage") == "assignable" else "create"


def passthrough_facts(lines: list[Line], region: str, ids: str) -> dict | None:
    """What the guest REGION's probes say of the passed-through device whose
    vendor:device is IDS (its address in the guest is pcifront's, not the host's):
    hardware()'s facts, or None when the guest never saw it."""
    pci = next((ln for ln in lines if ln.region == region
                and matches(ln.fields, f"probe=pci id={ids}")), None)
    return hardware(lines, {ids: pci.fields["dev"]}, region)[ids] if pci else None


def judge_passthrough(v: Verdict, device: str, hw: dict | None) -> Verdict:
    """A passthrough guest's verdict V (every marker seen) with its device's facts
    HW (passthrough_facts plus the harness's frame): it passes only when the guest
    bound the DEVICE's driver, its link came up and its frame left through it."""
    if not v.ok:
        return v
    if hw is None:
        return _verdict(FAILED, f"the passed-through {device} did not show up in the guest",
                        v.evidence, v.seconds)
    ok, why = judge_device("nic", False, hw)
    ev = v.evidence + [Evidence(f"{device}: {why}" + (f" ({hw['frame_evidence']})"
                                                      if hw.get("frame_evidence") else ""),
                                "passed-through device", hw.get("evidence") or 0)]
    if not ok:
        return _verdict(FAILED, f"passed-through {device}: {why}", ev, v.seconds)
    return _verdict(OK, f"{v.reason}; passed-through {device}: {why}", ev, v.seconds)


# the xenbus drivers of Linux's front-ends: xen-blkfront binds as "vbd",
# xen-netfront as "vif" (guest-init.sh reports the driver of each probed device)
PV_DRIVERS = frozenset({"vbd", "vif"})


def bound_devices(markers: list[Line]) -> str:
    """What an HVM guest's disk and NIC were driven by (guest-init.sh's probe=disk /
    probe=net markers): ": PV front-ends (...)", ": emulated devices (...)" or mixed."""
    seen = [m for m in (_last(markers, "probe=disk"), _last(markers, "probe=net")) if m]
    if not seen:
        return ""
    parts = [f"{m.fields.get('dev', '?')} {m.fields.get('driver', '?')}" for m in seen]
    pv = [m.fields.get("driver") in PV_DRIVERS for m in seen]
    kind = "PV front-ends" if all(pv) else "emulated devices" if not any(pv) else \
        "PV front-ends and emulated devices"
    return f": {kind} ({', '.join(parts)})"


# dom0's steps on a lifecycle guest (dom0-init.sh: xl_step, life_go)
LIFE_STEPS = ("save", "restore", "migrate", "go")
LIBXL_ERROR = re.compile(r"libxl: error|xc: error", re.I)


def _first_attempt_death(lines: list[Line], g: str, retry: Line) -> list[Line]:
    """What ended the first attempt of guest G (relayed as G#1): Xen's word on the
    domain's crash, else its kernel's panic or oops line."""
    before = [ln for ln in lines if ln.no < retry.no]
    signs = crash_signs([ln for ln in before if ln.region == f"{g}#1"])
    return ([ln for ln in before if ln.is_xen and _domain_crash(ln)]
            or signs["panic"] or signs["oops"])


def _failed_step(markers: list[Line], created: Line) -> Line | None:
    """dom0's first lifecycle step that said ok=0 (of the last attempt)."""
    return next((ln for ln in markers if ln.no > created.no and "guest" in ln.fields
                 and ln.fields.get("stage") in LIFE_STEPS and ln.fields.get("ok") == "0"), None)


def _errors(out: list[Line]) -> list[Line]:
    """The lines of xl's output saying what failed: its error lines first
    (libxl's info lines can read as errors: "qemu-xen is unavailable"), then
    any errorish line, else all of it."""
    return ([ln for ln in out if LIBXL_ERROR.search(ln.text)]
            or [ln for ln in out if ERRORISH.search(ln.text)] or out)


def _step_failed(step: Line, out: list[Line], life: str, seconds: float | None) -> Verdict:
    """A failed save / restore / migrate: the toolstack's own words (its first
    error) are the reason; no go-ahead: the guest was not reachable after it."""
    stage = step.fields["stage"]
    after = [ln for ln in out if ln.no > step.no][:40]
    errs = _errors(after)
    if stage == "go":
        reason = (f"no go-ahead after the {life}: the guest did not answer on its port "
                  f"({step.fields.get('why') or 'tries=' + step.fields.get('tries', '?')})")
    else:
        reason = f"xl {stage} failed: " + (errs[0].text.strip() if errs else "no output")
    return _verdict(FAILED, reason, [Evidence(step.text, f"{stage} failed", step.no)]
                    + _ev(errs, f"xl {stage} output", 8), seconds)


def _continuity(markers: list[Line], life: str, seconds: float | None) -> Verdict | None:
    """The same running system before and after the LIFE step: the boot id it
    had when ready, a counter that went on, and dom0's go-ahead received."""
    ready, resumed = find(markers, "stage=ready"), _last(markers, "stage=resumed")
    ev = [Evidence(ready.text, "before the " + life, ready.no),
          Evidence(resumed.text, "after the " + life, resumed.no)]
    was, now = ready.fields.get("boot_id"), resumed.fields.get("boot_id")
    if not was or was != now:
        return _verdict(FAILED, f"not the same system after the {life}: boot id {was} "
                        f"before, {now} after (it rebooted instead of resuming)", ev, seconds)
    try:
        n0, n1 = int(ready.fields["n"]), int(resumed.fields["n"])
    except (KeyError, ValueError):
        return _verdict(FAILED, f"no counter to compare across the {life}", ev, seconds)
    if n1 <= n0:
        return _verdict(FAILED, f"the counter did not go on across the {life}: n={n0} "
                        f"before, n={n1} after", ev, seconds)
    if resumed.fields.get("go") != "go":
        return _verdict(FAILED, f"resumed without dom0's go-ahead after the {life}", ev, seconds)
    return None


def _last(lines: list[Line], pattern: str) -> Line | None:
    return next((ln for ln in reversed(lines) if matches(ln.fields, pattern)), None)


def _guest_seconds(exit_: Line | None) -> float | None:
    try:
        return round(float(exit_.fields["up"]) - float(exit_.fields["start"]), 2)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def hardware(lines: list[Line], devices: dict[str, str],
             region: str = "host") -> dict[str, dict]:
    """Per emulated device (name -> PCI address): bound driver, disks, links, as
    the probes of REGION (the host, or a guest with a device passed through) saw them."""
    host = [ln for ln in lines if ln.region == region and ln.is_marker]
    out = {}
    for name, addr in devices.items():
        pci = find(host, f"probe=pci dev={addr}")
        drv = pci.fields.get("driver") if pci else None
        nets = [ln for ln in host if matches(ln.fields, f"probe=netif pci={addr}")]
        out[name] = {
            "pci": addr,
            "id": pci.fields.get("id") if pci else None,
            "driver": None if drv in (None, "none") else drv,
            "evidence": pci.no if pci else None,
            "block": [dict(dev=ln.fields.get("dev"), data=ln.fields.get("data"), line=ln.no)
                      for ln in host if matches(ln.fields, f"probe=block pci={addr}")],
            "netif": [ln.fields.get("dev") for ln in nets],
            # None: a log from before the link probe
            "link": any(ln.fields.get("link") == "1" for ln in nets)
            if any("link" in ln.fields for ln in nets) else None,
        }
    return out


def judge_device(kind: str, has_disk: bool, hw: dict) -> tuple[bool, str]:
    """Whether one emulated device worked at boot, and why, from its probe facts
    (hardware() plus the harness's disk_read and frame): a driver bound; a disk
    carried by it (a storage controller's, or a USB host's usb-storage) read back;
    a NIC's link up and its frame seen leaving it."""
    drv = hw.get("driver")
    if not drv:
        return False, "no driver bound"
    said = [f"{drv} bound"]
    if has_disk:
        read = hw.get("disk_read")
        disks = ",".join(b["dev"] for b in hw.get("block", [])) or "no disk"
        said.append(f"disk {disks} {'read' if read else 'not read'}")
        if not read:
            return False, ", ".join(said)
    if kind == "nic":
        if not hw.get("netif"):
            return False, ", ".join(said + ["no network interface"])
        link, frame = hw.get("link"), hw.get("frame")
        said.append(f"{'/'.join(hw['netif'])} link {'up' if link else 'down'}")
        said.append("frame seen" if frame else "frame not seen")
        if not (link and frame):
            return False, ", ".join(said)
    return True, ", ".join(said)


def release_cannot(xen: str, why: str) -> Verdict:
    """The verdict of a role Xen release XEN cannot run here (xen.toml
    `not_run`, WHY): not run, never booted, never a pass."""
    return Verdict(NOT_RUN_STATUS, f"Xen {xen}: {why}", "xen release", [Evidence(why, "xen.toml")])
