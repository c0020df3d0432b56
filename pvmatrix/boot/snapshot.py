"""A parked Xen and dom0, booted once and restored for each batch of guest kernels.

A hosted guest boot (harness.run_hosted) spends most of its time on Xen's and
dom0's own boot. Here that boot is made once: dom0-init.sh (PARK=1) brings up
the toolstack, says stage=parked and waits; QEMU's state is then saved over
QMP (`migrate` to zstd) into the cache. Each batch restores it (-incoming) with
the batch on a virtio disk (BATCH_DISK_MB) that dom0 saw all zeros when parked:
"PVMBATCH NONCE SIZE" in its first sector, then a cpio of plan.env and the
guests' files from DATA_AT. dom0 reads it past its page cache (O_DIRECT).

Only the disk's contents differ between the snapshot and a restore: QEMU's
command line is the parked boot's, with the batch disk, the serial log and
-incoming swapped. The kernel and initrd QEMU loads on a restore are
overwritten by the saved memory (the initrd is the small overlay, not the
whole userspace).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..digest import short
from ..errors import HarnessFault, QemuDidNotStart
from ..paths import cache_dir
from . import rundirs

MAGIC = b"PVMBATCH"
BATCH_DISK_MB = 512          # fixed: dom0 sized the disk when it was parked
DATA_AT = 1 << 20            # the cpio's offset in the batch disk
STATE = "state.zst"
ARGV = "argv.json"
# the parked boot's files in the snapshot's directory, as its command line names them
BATCH, PARK_SERIAL, INITRD, OVERLAY = "batch.img", "park-serial.log", "initrd.cpio", "overlay.cpio"
PARKED = "stage=parked"
SAVE_TIMEOUT_S = 120
# saved stopped, a machine would stay paused once restored (QEMU carries the run
# state over): without the global state in the stream, it runs once loaded
RUN_ON_RESTORE = ["-global", "migration.store-global-state=off"]


@dataclass(frozen=True)
class Snapshot:
    """A saved, parked Xen boot under the cache (boot/snapshots/KEY)."""
    dir: Path

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def state(self) -> Path:
        return self.dir / STATE

    @property
    def serial(self) -> Path:
        """The parked boot's serial log: the restored boots' first lines."""
        return self.dir / PARK_SERIAL

    @property
    def argv(self) -> list[str]:
        """The parked boot's QEMU command line (no QMP socket)."""
        return json.loads((self.dir / ARGV).read_text())

    @property
    def ready(self) -> bool:
        return (self.dir / ARGV).is_file() and self.state.is_file()


def enabled() -> bool:
    """Snapshots are used: a budget for them (PVMATRIX_SNAPSHOT_KEEP_MB) and zstd."""
    return settings.current().snapshot_keep_mb > 0 and shutil.which("zstd") is not None


def key(parts: dict) -> str:
    """The snapshot of a parked boot made of PARTS (content ids, command line)."""
    return short(json.dumps(parts, sort_keys=True))


def place(k: str) -> Snapshot:
    """Where snapshot K lives; older ones past the budget are deleted first."""
    root = cache_dir("boot", "snapshots")
    rundirs.prune(root, settings.current().snapshot_keep_mb * 2**20, by_use=True)
    return Snapshot(root / k)


def batch_header(nonce: str, size: int) -> bytes:
    """The batch disk's first sector: what dom0-init.sh's batch_find reads."""
    return f"{MAGIC.decode()} {nonce} {size}\n".encode().ljust(512, b"\0")


def blank_disk(out: Path) -> Path:
    """OUT: a batch disk of zeros (BATCH_DISK_MB, sparse), as a parked dom0 sees it."""
    with open(out, "wb") as fh:
        fh.truncate(BATCH_DISK_MB * 2**20)
    return out


def batch_disk(out: Path, nonce: str, cpio: Path) -> Path:
    """OUT: the batch disk (BATCH_DISK_MB, sparse) carrying CPIO for NONCE."""
    size = cpio.stat().st_size
    if DATA_AT + size > BATCH_DISK_MB * 2**20:
        raise HarnessFault(f"{cpio}: {size >> 20} MiB of guest files do not fit the "
                           f"{BATCH_DISK_MB} MiB batch disk")
    with open(blank_disk(out), "r+b") as fh:
        fh.write(batch_header(nonce, size))
        fh.seek(DATA_AT)
        with open(cpio, "rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)
    return out


def disk_args(path: Path) -> list[str]:
    """The batch disk on QEMU's command line (virtio-blk, raw)."""
    return ["-drive", f"file={path},format=raw,if=none,id=pvmbatch,cache=writeback",
            "-device", "virtio-blk-pci,drive=pvmbatch"]


def swap(argv: list[str], old: str, new: str) -> list[str]:
    """ARGV with OLD replaced by NEW inside each argument."""
    return [a.replace(old, new) for a in argv]


def fresh_argv(snap: Snapshot, batch: Path, serial: Path) -> list[str]:
    """The parked boot's command line with BATCH as its batch disk and SERIAL as its
    console: a boot from scratch whose dom0 finds the batch at once (the reproducer)."""
    return swap(swap(snap.argv, str(snap.dir / BATCH), str(batch)),
                f"file:{snap.dir / PARK_SERIAL}", f"file:{serial}")


def restore_argv(snap: Snapshot, batch: Path, serial: Path) -> list[str]:
    """fresh_argv restoring SNAP instead (the initrd QEMU loads is overwritten by the
    saved memory: the small overlay stands in for the whole userspace)."""
    argv = swap(fresh_argv(snap, batch, serial), str(snap.dir / INITRD), str(snap.dir / OVERLAY))
    return argv + ["-incoming", f"exec:zstd -q -dc {shlex.quote(str(snap.state))}"]


def check(snap: Snapshot) -> None:
    """QemuDidNotStart unless SNAP's state is whole (zstd's checksum): QEMU 7.2 given a
    cut-short stream does not exit, it waits, and the boot would run to its deadline."""
    done = subprocess.run(["zstd", "-q", "-t", str(snap.state)], capture_output=True, text=True,
                          env=settings.current().child_env())
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        why = why.split(f"{STATE} : ", 1)[-1]          # zstd names the file first
        raise QemuDidNotStart(f"snapshot {snap.key} cannot be restored: {why}")


def qmp_args(sock: Path) -> list[str]:
    return ["-qmp", f"unix:{sock},server=on,wait=off"]


def save(sock: Path, state: Path) -> float:
    """Stop the QEMU listening on SOCK and save its state into STATE (zstd);
    returns the seconds it took. HarnessFault if QEMU could not."""
    from qemu.qmp import QMPError
    from qemu.qmp.legacy import QEMUMonitorProtocol
    start = time.monotonic()
    tmp = state.with_suffix(".part")
    qmp = QEMUMonitorProtocol(str(sock))
    last: dict = {}
    try:
        qmp.connect()
        qmp.cmd("stop")
        # no bandwidth cap (QEMU's default throttles a migration to a file, too)
        qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 2**40})
        qmp.cmd("migrate", uri=f"exec:zstd -q -1 -f -o {shlex.quote(str(tmp))}")
        while time.monotonic() - start < SAVE_TIMEOUT_S:
            got = qmp.cmd("query-migrate")
            status = got.get("status")
            last = got
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise HarnessFault(f"QEMU could not save the parked boot ({status}: "
                                   f"{got.get('error-desc', 'no reason given')})")
            time.sleep(0.2)
        else:
            raise HarnessFault(f"QEMU did not save the parked boot in {SAVE_TIMEOUT_S} s "
                               f"(migration {last.get('status')}, {last.get('ram', {})})")
    except (OSError, QMPError) as exc:
        raise HarnessFault(f"QMP at {sock}: {exc}") from None
    finally:
        qmp.close()
    os.replace(tmp, state)
    return round(time.monotonic() - start, 2)


def used(snap: Snapshot) -> None:
    """Mark SNAP as just used: the budget deletes the least recently used first."""
    os.utime(snap.dir)
