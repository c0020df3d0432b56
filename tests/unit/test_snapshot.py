"""A parked Xen and dom0 restored per batch (boot/snapshot.py, boot/hosted.py):
the batch disk dom0 reads, the restore's command line, the whole boot's log,
and the plan that sends every row's guests to the fallback when no row is dom0."""

import json
import os
import subprocess
import time

import pytest

from pvmatrix.boot import hosted, initramfs, qemu, rundirs, snapshot
from pvmatrix.errors import HarnessFault, QemuDidNotStart
from pvmatrix.kernel import Kernel, busybox
from pvmatrix.matrix import spec
from pvmatrix.matrix.cells import HOSTED
from pvmatrix.matrix.plan import make_plan

from conftest import FIXTURES

PLAN = {"NONCE": "1a2b3c4d", "GUESTS": "pv:pv:1", "CMDLINE_pv": "console=hvc0"}


def test_the_batch_disk_holds_a_header_then_the_cpio_dom0_unpacks(tmp_path):
    cpio = initramfs.batch(tmp_path / "batch.cpio", [], PLAN)
    disk = snapshot.batch_disk(tmp_path / "batch.img", PLAN["NONCE"], cpio)
    assert disk.stat().st_size == snapshot.BATCH_DISK_MB * 2**20     # as dom0 saw it parked
    head = disk.read_bytes()[:512]
    assert head.split(b"\n")[0] == f"PVMBATCH 1a2b3c4d {cpio.stat().st_size}".encode()
    # dom0-init.sh's way: the MiBs from DATA_AT, through busybox's cpio
    root = tmp_path / "root"
    root.mkdir()
    (root / "pvm").mkdir()
    (root / "pvm" / "plan.env").write_text('PARK="1"\n')             # the parked one's plan
    mib = -(-cpio.stat().st_size // 2**20)
    got = subprocess.run(f"dd if={disk} bs=1M skip=1 count={mib} 2>/dev/null | "
                         f"{busybox()} cpio -i -d -m -u", shell=True, cwd=root,
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    env = (root / "pvm" / "plan.env").read_text()
    assert 'NONCE="1a2b3c4d"' in env and 'GUESTS="pv:pv:1"' in env and "PARK" not in env


def test_a_batch_too_big_for_the_disk_is_the_harnesss_fault(tmp_path, monkeypatch):
    cpio = initramfs.batch(tmp_path / "batch.cpio", [], PLAN)
    monkeypatch.setattr(snapshot, "BATCH_DISK_MB", 1)
    with pytest.raises(HarnessFault, match="do not fit"):
        snapshot.batch_disk(tmp_path / "batch.img", "n", cpio)


def _snap(tmp_path) -> snapshot.Snapshot:
    d = tmp_path / "snap"
    d.mkdir()
    argv = ["qemu-system-x86_64", "-m", "1728", "-serial", f"file:{d / snapshot.PARK_SERIAL}",
            "-kernel", "/x/xen", "-initrd", f"/c/dom0-kernel console=hvc0,{d / snapshot.INITRD}",
            *snapshot.disk_args(d / snapshot.BATCH), *snapshot.RUN_ON_RESTORE]
    (d / snapshot.ARGV).write_text(json.dumps(argv))
    (d / snapshot.STATE).write_bytes(b"")
    return snapshot.Snapshot(d)


def test_a_restore_is_the_parked_command_with_its_batch_serial_and_state(tmp_path):
    snap = _snap(tmp_path)
    assert snap.ready
    batch, serial = tmp_path / "b" / "batch.img", tmp_path / "b" / "serial.log"
    argv = snapshot.restore_argv(snap, batch, serial)
    assert argv[-2:] == ["-incoming", f"exec:zstd -q -dc {snap.state}"]
    assert f"file:{serial}" in argv
    assert any(f"file={batch}," in a for a in argv)
    assert argv[argv.index("-initrd") + 1].endswith(f",{snap.dir / snapshot.OVERLAY}")
    assert "-m" in argv and argv[argv.index("-m") + 1] == "1728"      # the machine is the same
    assert snapshot.RUN_ON_RESTORE[1] in argv
    assert not any(snapshot.PARK_SERIAL in a or snapshot.BATCH in a and str(snap.dir) in a
                   for a in argv)


def test_the_restored_boots_log_begins_with_the_parked_boots(tmp_path):
    snap = _snap(tmp_path)
    snap.serial.write_text("(XEN) Xen version 4.17\nPVM stage=init role=dom0 up=1.0\n"
                           "PVM stage=parked up=9.0\n")
    serial = tmp_path / "serial.log"
    serial.write_text("PVM stage=batch nonce=n ok=1 up=9.5\nPVM stage=done up=20.0\n")
    run = qemu.Run(lines=[qemu.parse_line(1, "PVM stage=batch nonce=n ok=1 up=9.5", 0.5),
                          qemu.parse_line(2, "PVM stage=done up=20.0", 11.0)])
    whole = hosted._after_park(snap, run, serial)
    assert [ln.no for ln in whole.lines] == [1, 2, 3, 4, 5, 6]
    assert whole.lines[1].fields["role"] == "dom0" and whole.lines[5].fields["stage"] == "done"
    assert whole.lines[3].text == hosted.RESTORED.format(key=snap.key)
    assert whole.lines[5].seen_s == 11.0
    # the serial log says the same, line for line (evidence points into it)
    text = serial.read_text().splitlines()
    assert [text[ln.no - 1] for ln in whole.lines] == [ln.text for ln in whole.lines]


def test_only_a_dom0_kernel_with_virtio_reads_the_batch_disk(tmp_path):
    minimal = Kernel("min", config=FIXTURES / "analyze" / "debian-6.1-xen-min.config")
    assert not hosted.drives_batch_disk(minimal)
    assert not hosted.drives_batch_disk(Kernel("none"))
    cfg = tmp_path / "config"
    cfg.write_text(FIXTURES.joinpath("analyze", "debian-6.1-xen-min.config").read_text()
                   + "CONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_BLK=m\n")
    assert hosted.drives_batch_disk(Kernel("virtio", config=cfg))


def test_snapshots_are_off_without_a_budget(monkeypatch):
    monkeypatch.setenv("PVMATRIX_SNAPSHOT_KEEP_MB", "0")
    assert not snapshot.enabled()


def test_the_least_recently_used_snapshot_goes_first(tmp_path):
    old = time.time() - 7200
    for name, used in (("a", old - 60), ("b", old)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "state.zst").write_bytes(b"x" * 8192)
        os.utime(tmp_path / name, (used, used))
    gone = rundirs.prune(tmp_path, 8192, by_use=True)
    assert gone == [tmp_path / "a"] and (tmp_path / "b").exists()


def test_with_no_dom0_role_the_fallback_hosts_every_rows_guests_itself_included():
    s = spec.load(None)
    s.roles = ["domU-pv", "domU-pvh"]
    plan = make_plan(s)
    group, = [t for t in plan.tasks if t.func == "boot_hosted"]
    xen = {t.kernel: t for t in plan.tasks if t.func == "boot_xen"}
    assert [g["kernel"] for g in group.args["guests"]] == list(xen)      # the fallback too
    assert xen[s.dom0_fallback].deps[HOSTED] == group.key
    assert xen[s.dom0_fallback].deps["host"] == xen[s.dom0_fallback].deps["kernel"]


def test_a_snapshot_cut_short_is_refused_before_qemu_waits_on_it(tmp_path):
    """Seen for real: QEMU 7.2 restoring a truncated stream neither ran nor exited."""
    snap = _snap(tmp_path)
    data = subprocess.run(["zstd", "-q", "-c"], input=b"x" * 100000, capture_output=True).stdout
    snap.state.write_bytes(data)
    snapshot.check(snap)                                  # whole: no complaint
    snap.state.write_bytes(data[:len(data) // 2])
    with pytest.raises(QemuDidNotStart, match=f"snapshot {snap.key} cannot be restored") as err:
        snapshot.check(snap)
    assert str(tmp_path) not in str(err.value)
