"""lib.sh's hardware probes overlap their waits (issue 16: the `qemu` profile's
dom0 boot): each device's modprobe at once under kmod (one for all under
busybox's modprobe), every NIC's link wait and frame in the background while
the disks are looked at, and the disk wait counted from when the controllers
bound. Run in busybox sh against stand-ins: a sysfs copy (PVM_SYS) and stub
modprobe / kmod / ip / busybox udhcpc commands that log their calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from pvmatrix.paths import DATA

LIB = DATA / "boot" / "lib.sh"
BUSYBOX = shutil.which("busybox")
APPLETS = ("sleep", "cat", "ls", "grep", "readlink")


def _bin(tmp: Path, stubs: dict[str, str]) -> Path:
    """A PATH directory: host busybox applets, and STUBS (name -> sh body) that log
    "name args" (with the time) to calls.log."""
    d = tmp / "bin"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    for a in APPLETS:
        (d / a).symlink_to(BUSYBOX)
    for name, body in stubs.items():
        (d / name).write_text(f"#!{BUSYBOX} sh\n"
                              f'read -r t _ </proc/uptime; echo "$t {name} $*" >>{tmp}/calls.log\n{body}\n')
        (d / name).chmod(0o755)
    return d


def _run(tmp: Path, stubs: dict[str, str], script: str, sys_: Path | None = None) -> str:
    bin_ = _bin(tmp, stubs)
    env = {"PATH": str(bin_), "NONCE": "feedc0de", "PVM_SYS": str(sys_ or tmp / "sys")}
    # busybox sh runs its own applets before PATH (modprobe, ip, busybox itself):
    # shell functions come first
    funcs = "".join(f'{name}() {{ {bin_ / name} "$@"; }}; ' for name in stubs)
    done = subprocess.run([BUSYBOX, "sh", "-c", f". {LIB}; {funcs}{script}"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _calls(tmp: Path) -> list[tuple[float, str]]:
    log = tmp / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(float(t), rest) for t, rest in (ln.split(" ", 1) for ln in lines)]


def test_each_device_gets_a_modprobe_of_its_own_all_at_once(tmp_path):
    t0 = time.monotonic()
    _run(tmp_path, {"modprobe": "sleep 0.6"}, "PVM_MODPROBE=each; pvm_modprobe pci:a pci:b pci:c pci:d")
    took = time.monotonic() - t0
    assert sorted(c for _, c in _calls(tmp_path)) == [f"modprobe -q pci:{x}" for x in "abcd"]
    assert took < 1.8, f"{took:.1f} s: the four modprobes ran one after the other"


def test_without_small_indexes_every_alias_loads_in_one_run(tmp_path):
    _run(tmp_path, {"modprobe": ""}, "pvm_modprobe pci:a pci:b pci:c")
    assert [c for _, c in _calls(tmp_path)] == ["modprobe -q -a pci:a pci:b pci:c"]


def _nic(sys_: Path, name: str, carrier: str, pci: str) -> Path:
    fn = sys_ / "devices" / "pci0000:00" / pci
    (fn).mkdir(parents=True, exist_ok=True)
    (sys_ / "bus" / "pci" / "drivers" / "e1000").mkdir(parents=True, exist_ok=True)
    if not (fn / "driver").exists():
        (fn / "driver").symlink_to(sys_ / "bus" / "pci" / "drivers" / "e1000")
    n = sys_ / "class" / "net" / name
    n.mkdir(parents=True)
    (n / "device").symlink_to(fn)
    (n / "carrier").write_text(carrier + "\n")
    (n / "address").write_text("52:54:00:12:34:56\n")
    return n


def test_nics_send_their_frames_in_the_background_once_their_links_are_up(tmp_path):
    """eth0's link is up at once, eth1's 0.5 s later (while the other probes run),
    eth2's never: eth0's and eth1's frames carry the token and were sent before
    the report began; eth2 sends none and is reported with its link down."""
    sys_ = tmp_path / "sys"
    _nic(sys_, "eth0", "1", "0000:00:10.0")
    eth1 = _nic(sys_, "eth1", "0", "0000:00:11.0")
    _nic(sys_, "eth2", "0", "0000:00:12.0")
    out = _run(tmp_path, {"ip": "", "busybox": ""},
               f"pvm_net_start 10; (sleep 0.5; echo 1 >{eth1}/carrier) & sleep 1.5; "
               f"read -r t _ </proc/uptime; echo $t >{tmp_path}/report; pvm_net_report 10")
    report = float((tmp_path / "report").read_text())
    sent = {c.split()[3]: (t, c) for t, c in _calls(tmp_path) if " udhcpc " in f" {c} "}
    assert set(sent) == {"eth0", "eth1"}, sent
    for t, c in sent.values():
        assert "-t 1 -T 0 " in c and "hostname:PVMNET-feedc0de" in c and t < report
    ups = [c for _, c in _calls(tmp_path) if c.startswith("ip ")]
    assert sorted(ups) == [f"ip link set eth{i} up" for i in range(3)]
    netif = [ln for ln in out.splitlines() if ln.startswith("PVM probe=netif")]
    assert [ln.split()[2] for ln in netif] == ["dev=eth0", "dev=eth1", "dev=eth2"]
    assert "pci=0000:00:11.0 driver=e1000" in netif[1] and "link=1" in netif[1]
    assert "link=0" in netif[2]


def test_an_interface_that_came_after_the_start_still_sends_its_frame(tmp_path):
    sys_ = tmp_path / "sys"
    _nic(sys_, "eth0", "1", "0000:00:10.0")
    _run(tmp_path, {"ip": "", "busybox": ""},
         f"pvm_net_start 5; sleep 0.3; mkdir -p {sys_}/class/net/usb0; "
         f"echo 1 >{sys_}/class/net/usb0/carrier; pvm_net_report 5")
    sent = sorted(c.split()[3] for _, c in _calls(tmp_path) if c.startswith("busybox udhcpc"))
    assert sent == ["eth0", "usb0"]


def _pending_controller(sys_: Path) -> None:
    """A bound SAS controller (class 0x0100) without a disk under it."""
    d = sys_ / "bus" / "pci" / "devices" / "0000:00:18.0"
    d.mkdir(parents=True)
    (d / "class").write_text("0x010000\n")
    (sys_ / "bus" / "pci" / "drivers" / "mptsas").mkdir(parents=True)
    (d / "driver").symlink_to(sys_ / "bus" / "pci" / "drivers" / "mptsas")
    (sys_ / "block").mkdir()


def test_the_disk_wait_counts_from_when_the_controllers_bound(tmp_path):
    sys_ = tmp_path / "sys"
    _pending_controller(sys_)
    t0 = time.monotonic()
    _run(tmp_path, {}, "now_cs; pvm_disk_wait 4 $((_cs - 350))", sys_)   # bound 3.5 s ago
    waited = time.monotonic() - t0
    assert 0.3 <= waited < 1.5, f"waited {waited:.1f} s, not the 0.5 s left of 4 s"
    t0 = time.monotonic()
    _run(tmp_path, {}, "now_cs; pvm_disk_wait 4 $((_cs - 500))", sys_)   # past its 4 s
    assert time.monotonic() - t0 < 0.5


def test_a_controller_with_its_disk_is_not_waited_for(tmp_path):
    sys_ = tmp_path / "sys"
    _pending_controller(sys_)
    disk = sys_ / "devices" / "pci0000:00" / "0000:00:18.0" / "host0" / "target0:0:0" / "0:0:0:0"
    disk.mkdir(parents=True)
    (sys_ / "block" / "sda").symlink_to(disk)
    t0 = time.monotonic()
    _run(tmp_path, {}, "pvm_disk_wait 4", sys_)
    assert time.monotonic() - t0 < 0.5


def test_disks_there_are_read_before_the_wait_for_the_others(tmp_path):
    """sda (under a controller that has its disk) is read at once; the wait for
    the SAS controller without one (2 s) comes after it."""
    sys_ = tmp_path / "sys"
    _pending_controller(sys_)
    ahci = sys_ / "devices" / "pci0000:00" / "0000:00:14.0" / "ata1" / "host0" / "0:0:0:0"
    ahci.mkdir(parents=True)
    (sys_ / "block" / "sda").mkdir()
    (sys_ / "block" / "sda" / "device").symlink_to(ahci)
    (sys_ / "block" / "sda" / "size").write_text("2048\n")
    out = _run(tmp_path, {}, "now_cs; echo start=$_cs; pvm_block 2; now_cs; echo end=$_cs", sys_)
    got = dict(ln.split("=", 1) for ln in out.splitlines() if ln.startswith(("start", "end")))
    block = next(ln for ln in out.splitlines() if ln.startswith("PVM probe=block"))
    assert "dev=sda pci=0000:00:14.0 sectors=2048" in block
    read_at = float(block.rsplit("up=", 1)[1]) * 100
    assert int(got["end"]) - int(got["start"]) >= 190          # the SAS controller's wait
    assert read_at - int(got["start"]) < 100, "sda was read only after the wait"
