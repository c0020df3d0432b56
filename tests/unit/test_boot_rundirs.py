"""Boot working dirs are pruned oldest first past a size budget, never a young
one; a plain reproducer whose boot dir was pruned says so instead of failing
inside QEMU."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from pvmatrix.boot import reproduce, rundirs


def _boot_dir(root, name: str, mb: int, age_s: float):
    d = root / name
    d.mkdir(parents=True)
    (d / "overlay.cpio").write_bytes(b"\0" * (mb * 2**20))
    then = time.time() - age_s
    os.utime(d, (then, then))
    return d


def test_prune_deletes_the_oldest_past_the_budget_and_never_a_young_one(tmp_path):
    old1 = _boot_dir(tmp_path, "20261101-000000-xen-aaaaaa", 3, 7200)
    old2 = _boot_dir(tmp_path, "20261102-000000-baremetal-bbbbbb", 3, 7200)
    old3 = _boot_dir(tmp_path, "20261103-000000-xen-cccccc", 3, 7200)
    young = _boot_dir(tmp_path, "20261104-000000-xen-dddddd", 3, 60)

    gone = rundirs.prune(tmp_path, 7 * 2**20)
    assert gone == [old1, old2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [old3.name, young.name]

    assert rundirs.prune(tmp_path, 1) == [old3]          # the young one stays, over budget or not
    assert [p.name for p in tmp_path.iterdir()] == [young.name]


def test_new_dirs_are_unique_and_keep_the_budget(private_cache, monkeypatch):
    monkeypatch.setenv("PVMATRIX_BOOT_KEEP_MB", "2")
    first = rundirs.new("xen")
    (first / "dom0-kernel").write_bytes(b"\0" * (3 * 2**20))
    then = time.time() - 2 * rundirs.MIN_AGE_S
    os.utime(first, (then, then))
    second = rundirs.new("xen")
    assert second != first and second.is_dir() and not first.exists()


def test_reproducer_of_a_pruned_boot_dir_says_so(tmp_path):
    boot = tmp_path / "runs" / "20261101-000000-baremetal-aaaaaa"
    boot.mkdir(parents=True)
    script = reproduce.write(boot / "qemu.sh", "a boot", ["true"], boot / "serial.log", 5,
                             [("host", "stage=done")])
    kept = shutil.copy(script, tmp_path / "cell.qemu.sh")   # as the results store keeps it
    shutil.rmtree(boot)
    done = subprocess.run(["sh", kept], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"reproduce: {boot} is gone" in done.stderr and "pvmatrix rerun" in done.stderr


def test_a_bad_budget_is_named(monkeypatch):
    import pytest
    from pvmatrix.errors import PvmError
    monkeypatch.setenv("PVMATRIX_BOOT_KEEP_MB", "4G")
    with pytest.raises(PvmError, match="PVMATRIX_BOOT_KEEP_MB='4G': not a number of MiB"):
        rundirs.keep_mb()
