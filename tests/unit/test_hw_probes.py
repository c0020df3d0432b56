"""The hardware axis's probes without booting: a real bare-metal serial log
(tests/fixtures/boot/baremetal-6.12-ahci-read.log: Debian's 6.12 kernel, e1000e
and ICH9 AHCI, from before the link probe), QEMU's command line for the `qemu`
profile, the pcap reader (on SYNTHETIC files built here with struct: the
format, not a capture), the sysfs walk from a USB disk up to its host
controller, and the static-versus-booted device check."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES
from pvmatrix import catalog
from pvmatrix.boot import devices as devmod, pcap
from pvmatrix.boot.harness import _hardware
from pvmatrix.boot.markers import parse_file
from pvmatrix.boot.verdicts import judge_device
from pvmatrix.paths import DATA
from pvmatrix.records import BootFacts, DeviceCheck
from pvmatrix.results.devicechecks import DISAGREE_MARK, by_device_cell, marker

LOG = FIXTURES / "boot" / "baremetal-6.12-ahci-read.log"
NONCE = "4c3d7c0e"           # that boot's nonce (its disk token)


def _synthetic_pcap(path: Path, payloads: list[bytes], cut_last: bool = False) -> Path:
    """SYNTHETIC: a classic little-endian pcap (LINKTYPE_ETHERNET) of PAYLOADS."""
    blob = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
    for i, p in enumerate(payloads):
        blob += struct.pack("<IIII", 1000 + i, 5, len(p), len(p)) + p
    path.write_bytes(blob[:-3] if cut_last else blob)
    return path


def _frame(src: str, payload: bytes) -> bytes:
    return b"\xff" * 6 + bytes.fromhex(src.replace(":", "")) + b"\x08\x00" + payload


def test_the_qemu_profile_plugs_a_usb_disk_into_each_xhci_and_dumps_each_nic(tmp_path):
    devs = devmod.plan(catalog.profile("qemu").qemu_devices)
    args = " ".join(devmod.qemu_args(devs, tmp_path, NONCE))
    for i, d in enumerate(devs):
        if d.name.endswith("xhci"):
            assert d.has_disk and f"usb-storage,drive=pvmdisk{i},bus=pvmdev{i}.0" in args
            assert "usb-storage" in d.modules
            assert (tmp_path / f"disk-{d.name}.img").read_bytes()[512:600].startswith(
                d.disk_token(NONCE).encode())
        if d.kind == "nic":
            assert f"filter-dump,id=pvmdump{i},netdev=pvmdev{i},file={d.pcap(tmp_path)}" in args
            assert not d.has_disk
    assert sum(d.has_disk for d in devs) == 9     # 7 storage controllers and 2 USB hosts


def test_pcap_frames_and_the_token(tmp_path):
    p = _synthetic_pcap(tmp_path / "nic.pcap", [
        _frame("52:54:00:12:34:56", b"ipv6 router solicitation"),
        _frame("52:54:00:12:34:56", b"dhcp ... PVMNET-" + NONCE.encode() + b" ...")])
    got = pcap.frames(p)
    assert [f.no for f in got] == [1, 2] and got[0].source == "52:54:00:12:34:56"
    assert pcap.carrying(p, devmod.frame_token(NONCE)).no == 2
    assert pcap.carrying(p, "PVMNET-00000000") is None
    assert pcap.frames(tmp_path / "missing.pcap") == []


def test_pcap_cut_short_keeps_whole_frames_and_a_bad_file_is_an_error(tmp_path):
    p = _synthetic_pcap(tmp_path / "cut.pcap", [b"a" * 20, b"b" * 20], cut_last=True)
    assert [f.data for f in pcap.frames(p)] == [b"a" * 20]
    (tmp_path / "bad.pcap").write_bytes(b"not a pcap file at all, really")
    with pytest.raises(ValueError, match="bad.pcap"):
        pcap.frames(tmp_path / "bad.pcap")


def test_a_real_log_storage_read_and_a_nic_without_link_or_frame_fails(tmp_path):
    devs = devmod.plan(["e1000e", "ich9-ahci"])
    hw = _hardware(parse_file(LOG), devs, NONCE, tmp_path)
    ahci, nic = hw["ich9-ahci"], hw["e1000e"]
    assert ahci["driver"] == "ahci" and ahci["disk_read"] and ahci["ok"], ahci
    assert ahci["reason"] == "ahci bound, disk sda read"
    # bound, with eth0, but this log predates the link probe and no frame was dumped
    assert nic["driver"] == "e1000e" and nic["netif"] == ["eth0"] and nic["link"] is None
    assert not nic["frame"] and not nic["ok"]
    assert nic["reason"] == "e1000e bound, eth0 link down, frame not seen"
    assert "no frame carrying PVMNET-4c3d7c0e in nic-e1000e.pcap" == nic["frame_evidence"]


def test_a_nic_passes_with_link_up_and_its_frame_in_the_dump(tmp_path):
    devs = devmod.plan(["e1000e", "ich9-ahci"])
    lines = parse_file(LOG)
    for ln in lines:            # the link probe's field, as lib.sh prints it now
        if ln.fields.get("probe") == "netif":
            ln.fields["link"] = "1"
    _synthetic_pcap(devs[0].pcap(tmp_path), [_frame("52:54:00:12:34:56",
                                                    b"PVMNET-" + NONCE.encode())])
    nic = _hardware(lines, devs, NONCE, tmp_path)["e1000e"]
    assert nic["ok"] and nic["reason"] == "e1000e bound, eth0 link up, frame seen", nic
    assert nic["frame_evidence"] == "nic-e1000e.pcap frame 1 from 52:54:00:12:34:56"


def test_usb_storage_counts_as_the_host_controllers_disk():
    hw = {"driver": "xhci_hcd", "block": [{"dev": "sdb", "data": "PVMDISK-qemu-xhci-x"}],
          "disk_read": True}
    assert judge_device("other", True, hw) == (True, "xhci_hcd bound, disk sdb read")
    assert judge_device("other", True, {**hw, "disk_read": False, "block": []}) == (
        False, "xhci_hcd bound, disk no disk not read")
    assert judge_device("other", True, {"driver": None}) == (False, "no driver bound")


def test_a_usb_disk_is_attributed_to_its_host_controller(tmp_path):
    """lib.sh's pvm_pci_of walks up from the block device: the xHCI function."""
    sys_ = tmp_path / "sys"
    disk = (sys_ / "devices/pci0000:00/0000:00:1b.0/usb2/2-1/2-1:1.0/host6/target6:0:0"
            / "6:0:0:0")
    disk.mkdir(parents=True)
    (sys_ / "block" / "sdb").mkdir(parents=True)
    (sys_ / "block" / "sdb" / "device").symlink_to(disk)
    done = subprocess.run(["busybox", "sh", "-c", f". {DATA / 'boot' / 'lib.sh'}; "
                           f'pvm_pci_of "$PVM_SYS/block/sdb/device"'],
                          capture_output=True, text=True, env={**os.environ, "PVM_SYS": str(sys_)})
    assert done.stdout.strip() == "0000:00:1b.0", done.stderr


def _check(static: str, bound: str | None, booted: bool) -> DeviceCheck:
    return DeviceCheck.of("e1000e", static, "e1000e" if static != "missing" else None, bound,
                          booted, "r", "dom0", 21)


def test_static_and_booted_disagreement_is_flagged_both_ways():
    assert not _check("module", "e1000e", True).disagree
    assert not _check("missing", None, False).disagree
    covered_unbound = _check("module", None, False)
    assert covered_unbound.disagree and "static module (e1000e)" in covered_unbound.text
    assert _check("missing", "e1000e", True).disagree


def test_checks_round_trip_and_join_their_device_cells():
    facts = BootFacts("tcg", 1.0, {}, "k", checks=(_check("module", None, False),))
    assert BootFacts.from_dict(facts.to_dict()) == facts
    records = [
        {"cell": {"id": "k/hw/qemu/e1000e", "stage": "analyze", "kernel": "k",
                  "hardware": "qemu", "device": "Intel 82574L"}},
        {"cell": {"id": "k/dom0/xen-4.17/qemu", "stage": "boot", "kernel": "k",
                  "hardware": "qemu"}, "boot": facts.to_dict()}]
    joined = by_device_cell(records)
    assert list(joined) == ["k/hw/qemu/e1000e"]
    assert marker(joined["k/hw/qemu/e1000e"]) == f" | dom0 unbound {DISAGREE_MARK}"


def test_a_real_dump_of_a_nic_holds_the_dhcp_frame_with_the_boot_token():
    """QEMU's filter-dump of e1000e in a real dom0 boot of Debian 6.1 (nonce
    8401956b): IPv6 chatter, and the DHCP discover carrying the token."""
    real = FIXTURES / "boot" / "dom0-6.1-nic-e1000e.pcap"
    got = pcap.carrying(real, "PVMNET-8401956b")
    assert got is not None and got.no == 2 and len(got.data) == 342
    assert len(pcap.frames(real)) == 7 and pcap.carrying(real, "PVMNET-00000000") is None
