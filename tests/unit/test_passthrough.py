"""PCI passthrough to a PV guest (issue 16 item 5), without a boot: the role as
data, its boot of its own and its machine, dom0's plan, and the verdicts.

The toolstack's refusals are libxl's own message texts, from xen.git
(RELEASE-4.17.0, the release Debian bookworm ships), in the form xl prints
every libxl error ("libxl: error: FILE:LINE:FUNCTION: MESSAGE", as in the real
serial logs of tests/fixtures/boot), relayed by dom0-init.sh's `relay`:
- tools/libs/light/libxl_pci.c:848, libxl__device_pci_assignable_add:
  LOG(ERROR, "failed to quarantine "PCI_BDF, ...) when xc_assign_device to
  DOMID_IO fails (Xen: -EOPNOTSUPP without an IOMMU, iommu_do_domctl);
- tools/libs/light/libxl_create.c:1159, libxl__domain_config_setdefault:
  "passthrough not supported on this platform" (no cap_hvm_directio);
- tools/libs/light/libxl_pci.c:444: "Looks like pciback driver not loaded".
The dom0 part of the logs is a real one (tests/fixtures/boot/dom0-pv-pvh-ok.log),
and "(XEN) I/O virtualisation disabled" is a real Xen line
(tests/fixtures/boot/no-file-locking.log). The markers are as dom0-init.sh and
guest-init.sh print them; no real passthrough boot is recorded yet.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from conftest import FIXTURES
from pvmatrix import catalog
from pvmatrix.analyze.kconfig import parse_config
from pvmatrix.analyze.verdicts import capabilities
from pvmatrix.boot import devices as devmod, harness, qemu, roles, verdicts
from pvmatrix.boot.markers import parse
from pvmatrix.errors import UserError
from pvmatrix.records import Verdict

ROLE = "domU-pv-passthrough"
NONCE = "0123abcd"
TCG = qemu.Accel("tcg", "test")
QUARANTINE = ("libxl: error: libxl_pci.c:848:libxl__device_pci_assignable_add: "
              "failed to quarantine 0000:00:0f.0")
NO_PLATFORM = ("libxl: error: libxl_create.c:1159:libxl__domain_config_setdefault: "
               "passthrough not supported on this platform")
NO_PCIBACK = "libxl: error: libxl_pci.c:444:pciback_dev_is_assigned: Looks like pciback driver not loaded"
XEN_NO_IOMMU = "(XEN) I/O virtualisation disabled"


def _dom0_ok() -> tuple[list[str], str]:
    """A real dom0's lines up to its toolstack checks, and its last word."""
    lines = [ln for ln in (FIXTURES / "boot" / "dom0-pv-pvh-ok.log").read_text().splitlines()
             if ln.strip()]
    first_guest = next(i for i, ln in enumerate(lines) if "guest=" in ln)
    return lines[:first_guest], lines[-1]


def _log(*guest: str) -> list:
    """The real dom0 log with the Xen line, GUEST's lines, then dom0's stage=done."""
    lines, done = _dom0_ok()
    return parse("\n".join([lines[0], XEN_NO_IOMMU, *lines[1:], *guest, done]))


def _judge(lines) -> Verdict:
    role = roles.get(ROLE)
    dom0 = verdicts.judge_host(roles.host(xen=True), lines, verdicts.BootOutcome())
    return verdicts.judge_guest(role, lines, verdicts.BootOutcome(), dom0, {"disk": "x"})


def test_the_role_is_data_and_boots_on_its_own():
    role = roles.get(ROLE)
    pt = role.passthrough
    assert (role.guest_type, pt.device, pt.slot, pt.backend) == ("pv", "e1000", 0x0f, "xen-pciback")
    assert role.own_boot and not roles.get("domU-pv").own_boot
    assert catalog.xen_boots(["dom0", "domU-pv", ROLE]) == [["dom0", "domU-pv"], [ROLE]]
    assert "xen-pcifront" in role.modules and role.capability == "pv_domu_pcifront"


def test_a_passthrough_on_a_host_role_is_refused():
    with pytest.raises(UserError, match="passthrough is for a PV guest role"):
        catalog._passthrough("x", {"where": "host", "passthrough": {"device": "e1000"}})


def test_a_slot_among_the_probed_devices_is_refused():
    with pytest.raises(UserError, match="slot 0x10"):
        devmod.passed_through(catalog.Passthrough("e1000", 0x10, "xen-pciback"))


def _qemu(tmp_path: Path, iommu: str) -> list[str]:
    guests = [roles.get(ROLE)]
    pts = harness.passed_through(guests)
    box = catalog.get("iommu", iommu)
    return harness.xen_command("qemu", TCG, roles.host(xen=True), Path("xen"),
                               harness.xen_cmdline("x", roles.host(xen=True), box),
                               Path("k"), Path("i"), tmp_path / "serial.log",
                               devmod.qemu_args(devmod.plan() + list(pts.values()), tmp_path, NONCE),
                               box)


def test_without_an_iommu_the_machine_is_every_other_boots(tmp_path):
    cmd = _qemu(tmp_path, "none")
    assert cmd[cmd.index("-machine") + 1] == "pc"
    assert not [a for a in cmd if a.startswith(("intel-iommu", "amd-iommu"))]
    dev = [a for a in cmd if a.startswith("e1000,")]
    assert dev and "addr=0xf" in dev[0]
    # its frames go to a dump of its own, apart from any e1000 a profile has
    assert any(f"file={tmp_path}/nic-passthrough-e1000.pcap" in a for a in cmd)


def test_the_emulated_iommu_comes_first_with_its_machine_and_xen_words(tmp_path):
    cmd = _qemu(tmp_path, "intel")
    assert cmd[cmd.index("-machine") + 1] == "q35"
    first = cmd.index("-device")
    assert cmd[first + 1] == "intel-iommu,intremap=on"
    assert "iommu=1,verbose dom0_mem=" in cmd[cmd.index("-append") + 1]


def test_dom0_plan_names_the_device_its_backend_and_the_guests_nonce():
    guests = [roles.get(ROLE)]
    plan = harness.boot_plan(roles.host(xen=True), guests, NONCE, False, "", None,
                             harness.passed_through(guests))
    assert plan["PCI_pv_pt"] == "0000:00:0f.0" and plan["PCIBACK_pv_pt"] == "xen-pciback"
    assert plan["CMDLINE_pv_pt"].endswith(f" pvm.pt=1 pvm.nonce={NONCE}-pv_pt")
    assert plan["GUEST_MB"] == "256"
    plain = harness.boot_plan(roles.host(xen=True), [roles.get("domU-pv")], NONCE, False)
    assert not any(k.startswith("PCI") for k in plain) and "pvm.pt" not in plain["CMDLINE_pv"]


def test_no_iommu_quarantine_refusal_is_not_run_with_libxls_line():
    lines = _log("PVM guest=pv_pt stage=assignable ok=0 rc=1 secs=0.4 up=30.1",
                 f"PVMOUT pv_pt| {QUARANTINE}")
    v = _judge(lines)
    assert (v.status, v.detail) == ("not run", "platform")
    assert v.reason == f"PCI passthrough cannot work here: {QUARANTINE}"
    assert [e.note for e in v.evidence] == ["xl pci-assignable-add", "failed step", "Xen's IOMMU"]
    assert v.evidence[2].text == XEN_NO_IOMMU


def test_libxl_refusing_pci_at_create_is_not_run_never_the_kernels_fail():
    lines = _log("PVM guest=pv_pt stage=assignable ok=1 secs=0.4 up=30.1",
                 "PVM guest=pv_pt stage=start up=30.2",
                 "PVM guest=pv_pt stage=create ok=0 rc=3 up=31.0",
                 "PVMOUT pv_pt| Parsing config from /run/pv_pt.cfg",
                 f"PVMOUT pv_pt| {NO_PLATFORM}")
    v = _judge(lines)
    assert v.status == "not run" and v.reason.endswith("passthrough not supported on this platform")
    assert v.evidence[0].note == "xl create"


def test_another_assignable_failure_is_dom0s_blocked():
    lines = _log("PVM guest=pv_pt stage=assignable ok=0 rc=1 secs=0.1 up=30.1",
                 f"PVMOUT pv_pt| {NO_PCIBACK}")
    v = _judge(lines)
    assert v.status == "blocked"
    assert v.reason == f"dom0 could not hand the device over: xl pci-assignable-add: {NO_PCIBACK}"


def test_another_create_failure_is_judged_as_the_guests():
    lines = _log("PVM guest=pv_pt stage=assignable ok=1 secs=0.4 up=30.1",
                 "PVM guest=pv_pt stage=create ok=0 rc=3 up=31.0",
                 "PVMOUT pv_pt| libxl: error: libxl_dom.c:580:libxl__build_dom: xc_dom_parse_image failed")
    v = _judge(lines)
    assert (v.status, v.detail) == ("fail", "failed") and "xc_dom_parse_image" in v.reason


def _guest_ok(driver: str, link: str) -> list:
    """The guest's markers as guest-init.sh prints them, its device at pcifront's 00:00.0."""
    g = "PVMG pv_pt| PVM"
    return _log("PVM guest=pv_pt stage=assignable ok=1 secs=0.4 up=30.1",
                "PVM guest=pv_pt stage=create ok=1 domid=1 up=44.0",
                f"{g} stage=init role=guest name=pv_pt kernel=6.1.0 up=2.0",
                f"{g} probe=console dev=tty0,hvc0 ok=1 up=2.1",
                f"{g} probe=disk dev=xvda driver=vbd bus=xen ok=1 direct=1 data=x up=2.5",
                f"{g} probe=net dev=eth0 driver=vif bus=xen ok=1 peer=10.99.1.1 tries=0 up=3.0",
                f"{g} probe=passthrough devices=0000:00:00.0, up=3.1",
                f"{g} probe=pci dev=0000:00:00.0 id=8086:100e class=0x020000 driver={driver} up=3.9",
                f"{g} probe=netif dev=eth1 pci=0000:00:00.0 driver={driver} "
                f"mac=52:54:00:12:34:57 link={link} up=5.0",
                f"{g} stage=done up=5.1",
                "PVM guest=pv_pt stage=exit state=done start=30.2 up=60.0")


def _pcap(path: Path, payload: bytes) -> Path:
    """SYNTHETIC: a classic little-endian pcap holding one frame of PAYLOAD."""
    frame = bytes(6) + bytes.fromhex("525400123457") + b"\x08\x00" + payload
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                     + struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame)
    return path


def _final(lines, tmp_path: Path) -> Verdict:
    role = roles.get(ROLE)
    dev = harness.passed_through([role])["pv_pt"]
    return harness._passthrough_verdict(_judge(lines), role, dev, catalog.get("iommu", "none"),
                                        lines, NONCE, tmp_path)


def test_the_guest_passes_with_its_driver_bound_link_up_and_its_frame_seen(tmp_path):
    _pcap(tmp_path / "nic-passthrough-e1000.pcap", f"PVMNET-{NONCE}-pv_pt".encode())
    v = _final(_guest_ok("e1000", "1"), tmp_path)
    assert v.status == "pass", v
    assert v.reason.endswith("passed-through e1000: e1000 bound, eth1 link up, frame seen")


def test_dom0s_own_frame_out_of_that_nic_is_not_the_guests(tmp_path):
    _pcap(tmp_path / "nic-passthrough-e1000.pcap", f"PVMNET-{NONCE}".encode())
    v = _final(_guest_ok("e1000", "1"), tmp_path)
    assert v.status == "fail" and v.reason.endswith("frame not seen")


def test_no_driver_bound_in_the_guest_fails(tmp_path):
    v = _final(_guest_ok("none", "0"), tmp_path)
    assert (v.status, v.reason) == ("fail", "passed-through e1000: no driver bound")


def test_the_capability_needs_pcifront():
    """The small built 6.1 kernel's real config (pcifront built in), then without it."""
    text = (FIXTURES / "analyze" / "debian-6.1-xen-min.config").read_text()
    cap = {c.name: c for c in capabilities(None, parse_config(text, "x"), None, (6, 1))}
    assert cap["pv_domu_pcifront"].supported is True
    assert cap["pcifront"].evidence == ["CONFIG_XEN_PCIDEV_FRONTEND=y"]
    assert cap["pciback"].form == "module"
    without = text.replace("CONFIG_XEN_PCIDEV_FRONTEND=y", "# CONFIG_XEN_PCIDEV_FRONTEND is not set")
    cap = {c.name: c for c in capabilities(None, parse_config(without, "x"), None, (6, 1))}
    got = cap["pv_domu_pcifront"]
    assert got.supported is False and got.evidence[0].startswith("lacks pcifront")


def test_a_hosted_boot_gives_its_machine_the_device_once_for_every_kernels_guest(tmp_path):
    # the reference run's first hosted passthrough boot (8 guest kernels): QEMU
    # refused a second e1000 at slot 0xf ("PCI: slot 15 function 0 not available")
    role = roles.get(ROLE)
    guests = [g for _, g in harness.named([(None, [role]), (None, [role])])]
    pts = harness.passed_through(guests)
    assert sorted(pts) == ["pv_pt_1", "pv_pt_2"]
    args = devmod.qemu_args(devmod.plan() + harness.machine_devices(pts), tmp_path, NONCE)
    assert sum("addr=0xf" in a for a in args) == 1
    plan = harness.boot_plan(roles.host(xen=True), guests, NONCE, False, "", None, pts)
    assert plan["PCI_pv_pt_1"] == plan["PCI_pv_pt_2"] == "0000:00:0f.0"


def test_behind_the_emulated_vtd_dom0_keeps_the_default_profiles_devices():
    # measured: behind QEMU's intel-iommu, the qemu profile's lsi53c895a never
    # completes a command and dom0's init waits on its resets for minutes
    box = catalog.get("iommu", "intel")
    assert box.profile == "default"
    assert catalog.profile(box.profile).qemu_devices == devmod.default_names()
    assert catalog.get("iommu", "none").profile == ""


def test_an_iommu_naming_an_unknown_profile_is_refused():
    with pytest.raises(UserError, match="profile"):
        catalog._iommu("x", {"machine": "q35", "profile": "no-such"}, {})


def test_a_passthrough_guest_kernel_has_a_shared_boot_of_its_own():
    # measured under 4.14: the device was not assignable to a second kernel's guest
    pt = harness.Guest(None, [ROLE])
    plain = harness.Guest(None, ["domU-pv", "domU-pvh"])
    assert roles.get(ROLE).kernels_per_boot == 1
    assert harness.kernels_per_boot([pt, pt, pt]) == 1
    assert harness.kernels_per_boot([plain] * 3) == harness.GUEST_KERNELS_MAX
