"""Hosted guest boots: the guest roles of many guest kernels under one dom0
kernel, GUEST_KERNELS_MAX kernels per batch. A batch runs on a restored parked
Xen and dom0 (snapshot.py) when it can, so one more guest kernel costs its own
guests' time, not a whole Xen and dom0 boot; else each batch is a Xen boot of
its own (harness.boot_xen)."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .. import catalog
from ..analyze.kconfig import read_config
from ..digest import code_digest, sha256_id
from ..errors import HarnessFault, QemuDidNotStart
from ..kernel import Kernel
from . import devices as devmod, initramfs, qemu, reproduce, roles, snapshot, userspace
from .cpio import concat
from .harness import (GUEST_KERNELS_MAX, Batch, Cell, Guest, _ended_by_kernel, _host_crash, _host_done,
                      _started, boot_xen, kernels_per_boot, passed_through, sized, xen_command,
                      xen_cmdline)
from .markers import matches, parse_line
from .xen import check as check_xen, hypervisor, Xen

# what a dom0 kernel needs for the batch disk (snapshot.disk_args)
BATCH_DRIVERS = ("VIRTIO_PCI", "VIRTIO_BLK")
BATCH_MODULES = ("virtio_pci", "virtio_blk")
RESTORED = "pvmatrix: restored from snapshot {key}: the lines above are the boot it parked"


def _say(msg: str) -> None:
    print(f"pvmatrix: {msg}", file=sys.stderr, flush=True)


def run_hosted(host: Kernel, guests: list[Guest], xen_version: str | None = None,
               device_names: list[str] | None = None, profile=None,
               deadline_s: float | None = None) -> list[list[Cell]]:
    """The guest roles of each of GUESTS under HOST as dom0, in batches of
    kernels_per_boot() guest kernels, each kernel's guests in turn. Returns each
    guest kernel's cells, in GUESTS' order."""
    for g in guests:
        for r in g.roles:
            roles.get(r)                                   # unknown role: a clear error first
    xen_version = check_xen(xen_version)
    accel = qemu.probe_accel()
    devs = devmod.plan(device_names or None)
    parked = Parked.of(host, guests, xen_version, accel)
    out: list[list[Cell]] = []
    per_boot = kernels_per_boot(guests)
    for start in range(0, len(guests), per_boot):
        batch = guests[start:start + per_boot]
        # a restored batch has no devices under test: its dom0 is parked, its cells are guests'
        launch = parked.launch if parked and parked.ensure() else None
        try:
            cells = boot_xen(host, [], xen_version, [] if launch else devs, None, profile,
                             accel, False, deadline_s, hosted=batch, launch=launch)
        except QemuDidNotStart as exc:
            if launch is None:
                raise
            parked.discard(str(exc))      # a snapshot QEMU cannot load is never tried again
            cells = boot_xen(host, [], xen_version, devs, None, profile, accel, False,
                             deadline_s, hosted=batch)
        out += [[c for c in cells if c.guest == i] for i in range(1, len(batch) + 1)]
    return out


def drives_batch_disk(kernel: Kernel) -> bool:
    """Whether KERNEL (as dom0) can read the batch disk: virtio PCI and block, by its config."""
    if kernel.config is None:
        return False
    config = read_config(kernel.config)
    return all(config.state(s) != "n" for s in BATCH_DRIVERS)


@dataclass
class Parked:
    """The parked boot of HOST under a Xen release for a hosted run's guest roles."""
    host: Kernel
    xen: Xen
    release: catalog.XenRelease
    dom0: roles.Role
    accel: qemu.Accel
    base: Path
    snap: snapshot.Snapshot
    failed: str = ""

    @classmethod
    def of(cls, host: Kernel, guests: list[Guest], xen_version: str,
           accel: qemu.Accel) -> "Parked | None":
        """The parked boot GUESTS can run on, or None: snapshots are off, a guest
        has a device passed through, or HOST cannot read the batch disk."""
        rs = [roles.get(r) for g in guests for r in g.roles]
        if not snapshot.enabled() or passed_through(rs) or not drives_batch_disk(host):
            return None
        xen = hypervisor(xen_version)
        release = catalog.get("xen", xen.version)
        dom0 = sized(roles.host(xen=True), [r for r in rs if r.is_guest], GUEST_KERNELS_MAX)
        base = userspace.dom0_initramfs(xen, catalog.dom0_packages([dom0, *rs], release))
        parts = {"harness": code_digest("boot", "data/boot", "data/xen.toml"),
                 "qemu": qemu.version(), "accel": accel.args(), "xen": sha256_id(xen.binary),
                 "xen_cmdline": xen_cmdline(release.cmdline, dom0),
                 "kernel": host.identity or sha256_id(host.image),
                 "config": sha256_id(host.config), "userspace": sha256_id(base),
                 "dom0_mb": dom0.dom0_mb, "memory_mb": dom0.memory_mb,
                 "disk_mb": snapshot.BATCH_DISK_MB}
        return cls(host, xen, release, dom0, accel, base,
                   snapshot.place(snapshot.key(parts)))

    def ensure(self) -> bool:
        """The snapshot is there (made now if it was not); False when it cannot be
        made (said once; the batches then boot whole)."""
        if self.snap.ready:
            return True
        if not self.failed:
            try:
                self._make()
            except HarnessFault as exc:
                self.failed = str(exc)
                _say(f"no parked boot to restore ({exc}); each batch boots Xen and dom0")
        return self.snap.ready

    def discard(self, why: str) -> None:
        """Delete the snapshot (QEMU could not restore it: WHY); the batches boot whole."""
        _say(f"parked boot {self.snap.key} deleted, it did not restore ({why}); "
             "each batch boots Xen and dom0")
        shutil.rmtree(self.snap.dir, ignore_errors=True)
        self.failed = why

    def _make(self) -> None:
        """Boot Xen and HOST as dom0 until dom0 parks; save QEMU's state."""
        tmp = self.snap.dir.with_name(f"{self.snap.key}.tmp-{secrets.token_hex(3)}")
        tmp.mkdir(parents=True)
        try:
            self._park(tmp)
            try:
                tmp.rename(self.snap.dir)
            except OSError:            # another boot made it meanwhile: use theirs
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _park(self, d: Path) -> None:
        dom0, host = self.dom0, self.host
        wanted = [*dom0.modules, *BATCH_MODULES] if initramfs.selects_modules(host) else None
        overlay = initramfs.dom0_overlay(d / snapshot.OVERLAY, host, [],
                                         {"PARK": "1", "MODULES": " ".join(dom0.modules)}, wanted)
        initrd = concat([self.base, overlay], d / snapshot.INITRD)
        image = d / "dom0-kernel"
        initramfs.place_image(host, image)
        snapshot.blank_disk(d / snapshot.BATCH)
        final = self.snap.dir
        # the command line names the snapshot's final place (its files move there)
        cmd = xen_command(qemu.checked_binary(), self.accel, dom0, self.xen.binary,
                          xen_cmdline(self.release.cmdline, dom0), final / image.name,
                          final / snapshot.INITRD, final / snapshot.PARK_SERIAL,
                          snapshot.disk_args(final / snapshot.BATCH)) + snapshot.RUN_ON_RESTORE
        live = [a.replace(str(final), str(d)) for a in cmd]
        qmp_dir = Path(tempfile.mkdtemp(prefix="pvm-qmp-"))   # a socket's path is short
        sock = qmp_dir / "qmp.sock"
        saved: dict = {}

        def parked(ln) -> bool:
            return ln.region == "host" and matches(ln.fields, snapshot.PARKED)

        def on_line(ln) -> None:
            if parked(ln) and not saved:
                saved["s"] = snapshot.save(sock, d / snapshot.STATE)
        _say(f"parking Xen {self.xen.version} with {host.label} as dom0 ({self.accel.name}), "
             "to restore for each batch of guests")
        try:
            run = qemu.run(live + snapshot.qmp_args(sock), d / snapshot.PARK_SERIAL,
                           dom0.deadline_s, stop=lambda ln: parked(ln) or _host_done(ln),
                           crash=_host_crash, on_line=on_line)
        finally:
            shutil.rmtree(qmp_dir, ignore_errors=True)
        if not saved:
            _ended_by_kernel(run, f"the parked boot of {host.label}", d / snapshot.PARK_SERIAL)
            last = run.stopped_by or (run.lines[-1].text if run.lines else
                                      "no output: " + "; ".join(run.stderr_tail[-2:]))
            raise HarnessFault(f"dom0 {host.label} did not park under Xen {self.xen.version} "
                               f"({'timed out' if run.timed_out else last})")
        initrd.unlink()                 # big: qemu.sh concatenates it again
        (d / snapshot.BATCH).unlink()   # a restore swaps in its own
        (d / snapshot.ARGV).write_text(json.dumps(cmd))
        (d / "made.json").write_text(json.dumps({
            "made": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "made_s": round(time.time(), 1), "park_s": run.wall_s,
            "save_s": saved["s"], "userspace": str(self.base), "host": host.label}))

    def launch(self, d: Path, batch: Batch, facts: dict) -> tuple[qemu.Run, Path]:
        """Run BATCH on the restored snapshot in boot directory D (harness.Launch)."""
        snap = self.snap
        snapshot.check(snap)
        snapshot.used(snap)
        made = json.loads((snap.dir / "made.json").read_text())
        cpio = initramfs.batch(d / "batch.cpio", batch.files, batch.plan)
        disk = snapshot.batch_disk(d / snapshot.BATCH, batch.nonce, cpio)
        cpio.unlink()
        serial = d / "serial.log"
        # the reproducer boots afresh: the parked boot's command line with this batch
        script = reproduce.write(d / "qemu.sh", batch.what, snapshot.fresh_argv(snap, disk, serial),
                                 serial, batch.deadline_s,
                                 batch.checks, {snap.dir / snapshot.INITRD:
                                                [Path(made["userspace"]), snap.dir / snapshot.OVERLAY]})
        facts["snapshot"] = {"key": snap.key, **made}
        _say(f"{batch.what}: restoring parked boot {snap.key} ({self.accel.name})")
        run = qemu.run(snapshot.restore_argv(snap, disk, serial), serial, batch.guests_s,
                       stop=_host_done, crash=_host_crash)
        _started(run)
        _ended_by_kernel(run, f"the restored Xen boot of {self.host.label}", serial)
        return _after_park(snap, run, serial), script


def _after_park(snap: snapshot.Snapshot, run: qemu.Run, serial: Path) -> qemu.Run:
    """RUN (a restore) with the parked boot's lines first, in its serial log too:
    the whole boot's console, as the verdicts and the published log read it."""
    prefix = snap.serial.read_text(errors="replace").splitlines() + [RESTORED.format(key=snap.key)]
    tail = serial.read_bytes()
    serial.write_bytes("\n".join(prefix).encode() + b"\n" + tail)
    n = len(prefix)
    lines = [parse_line(i, t) for i, t in enumerate(prefix, 1)]
    lines += [replace(ln, no=ln.no + n) for ln in run.lines]
    return replace(run, lines=lines)

