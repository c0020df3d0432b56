"""Lifecycle roles (issue 15: save/restore and live migration) without a boot:
the catalog entries, dom0's plan, the judge on logs built from a real passing
Xen boot, and the guest_suspend capability of a real small kernel's config."""

from __future__ import annotations

import subprocess

import pytest

from conftest import FIXTURES
from pvmatrix import catalog
from pvmatrix.analyze import kconfig, system_map_names, verdicts as caps
from pvmatrix.boot import harness, markers, roles, verdicts
from pvmatrix.boot.initramfs import BOOT_DATA
from pvmatrix.errors import UserError
from pvmatrix.records import FAIL, PASS

LIFE_ROLES = ("domU-pv-save", "domU-pvh-save", "domU-pv-migrate", "domU-pvh-migrate")
REAL_LOG = (FIXTURES / "boot" / "dom0-pv-pvh-ok.log").read_text()
NONCE = "4605f9ef"       # the real log's disk nonce
ANALYZE = FIXTURES / "analyze"
# Xen's own message when a guest does not answer the suspend request
# (tools/libs/light/libxl_dom_suspend.c), as libxl logs it
NO_ACK = ("libxl: error: libxl_dom_suspend.c:262:domain_suspend_common_pvcontrol_suspending: "
          "Domain 3:guest didn't acknowledge suspend, cancelling request")
BOOT_A, BOOT_B = "9f0e7c7e-3c1d-4e55-9d57-1f0c6f3e2a10", "1b2c3d4e-0000-4e55-9d57-1f0c6f3e2a10"


def test_catalog_has_the_four_lifecycle_roles():
    for name in LIFE_ROLES:
        r = roles.get(name)
        assert r.is_guest and r.needs == "dom0" and r.where.isidentifier()
        assert r.lifecycle == name.rsplit("-", 1)[1]
        assert r.capability == f"{r.guest_type}_domu_suspend"
        assert "stage=resumed" in r.expect and "stage=done" in r.expect
        assert f"guest=* stage={r.lifecycle} ok=1" in r.expect
        assert r.deadline_s >= 90 + 60       # libxl waits 60 s for a guest that cannot suspend
    assert roles.get("domU-pv").lifecycle is None
    assert len({roles.get(n).where for n in LIFE_ROLES}) == 4


def test_a_bad_lifecycle_is_an_error():
    base = {"xen": True, "where": "g", "expect": [], "deadline_s": 1}
    with pytest.raises(UserError, match="lifecycle 'hibernate' is not one of save, migrate"):
        catalog._role("x", {**base, "lifecycle": "hibernate"}, {})
    with pytest.raises(UserError, match="must be a shell identifier"):
        catalog._role("x", {**base, "where": "pv-save", "lifecycle": "save"}, {})


def test_the_default_spec_leaves_them_out_and_the_lifecycle_spec_has_them():
    from pvmatrix.matrix import spec
    default = spec.load(harness.Path(__file__).parents[2] / "specs" / "default.toml")
    life = spec.load(harness.Path(__file__).parents[2] / "specs" / "lifecycle.toml")
    assert not set(LIFE_ROLES) & set(default.roles)
    assert set(LIFE_ROLES) <= set(life.roles)
    assert [k.name for k in life.kernels] == [k.name for k in default.kernels]


def test_plan_env_carries_each_guests_lifecycle():
    dom0 = roles.host(xen=True)
    guests = [roles.get(n) for n in ("domU-pv", "domU-pv-save", "domU-pvh-migrate")]
    plan = harness.boot_plan(dom0, guests, "abcd", False)
    assert plan["GUESTS"] == "pv:pv:1 pv_save:pv:2 pvh_mig:pvh:3"
    assert plan["LIFE_pv_save"] == "save" and plan["LIFE_pvh_mig"] == "migrate"
    assert "LIFE_pv" not in plan and plan["LIFE_PORT"] == str(harness.LIFE_PORT)
    assert plan["CMDLINE_pv_save"] == roles.get("domU-pv-save").cmdline
    assert plan["GUEST_DEADLINE"] == "180"


def test_the_inits_parse():
    for init in ("dom0-init.sh", "guest-init.sh", "lib.sh"):
        done = subprocess.run(["busybox", "sh", "-n", str(BOOT_DATA / init)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    dom0 = (BOOT_DATA / "dom0-init.sh").read_text()
    assert "domU-" not in dom0, "the dom0 init must not know role names"
    assert 'xl migrate -s "" "$1" "xl migrate-receive"' in dom0
    # the go-ahead: busybox nc in dom0 (Debian's userspace may have none) and the guest
    from pvmatrix.boot.initramfs import DOM0_APPLETS
    assert "nc" in DOM0_APPLETS and "awk" in DOM0_APPLETS
    assert "-l" in subprocess.run(["busybox", "nc", "--help"], capture_output=True,
                                  text=True).stderr


# -- the judge, on the real passing log with the lines the lifecycle scripts add.
# SYNTHETIC: the guest renamed to the role's guest and these lines inserted
# (formats as dom0-init.sh's xl_step/life_go and guest-init.sh's life print them).

def _life_log(src: str, dst: str, steps: list[str], guest: list[str]) -> list[markers.Line]:
    """The real log, guest SRC renamed DST; dom0's STEPS after its create line and
    the guest's console lines GUEST after its last probe (before stage=done)."""
    out = []
    for raw in REAL_LOG.split("\n"):
        line = (raw.replace(f"guest={src} ", f"guest={dst} ").replace(f"PVMG {src}|", f"PVMG {dst}|")
                .replace(f"PVMDISK-{src}-", f"PVMDISK-{dst}-").replace(f"name={src} ", f"name={dst} "))
        if line.startswith(f"PVMG {dst}| PVM stage=done"):
            out += [f"PVMG {dst}| {g}" for g in guest]
        out.append(line)
        if line.startswith(f"PVM guest={dst} stage=create ok=1"):
            out += steps
    return markers.parse("\n".join(out))


def _ready(boot=BOOT_A, n=2):
    return [f"PVM tick=1 up=29.10", f"PVM tick=2 up=30.11",
            f"PVM stage=ready boot_id={boot} n={n} port=7099 up=30.20"]


def _resumed(dst, boot=BOOT_A, n=9, go="go"):
    return [f"PVM tick=8 up=37.40", f"PVM tick=9 up=38.41",
            f"PVM probe=disk when=resumed dev=xvda ok=1 direct=1 data=PVMDISK-{dst}-{NONCE} up=38.50",
            f"PVM probe=net when=resumed dev=eth0 ok=1 peer=10.99.1.1 tries=0 up=38.60",
            f"PVM stage=resumed boot_id={boot} n={n} go={go} up=38.61"]


def _save_ok(dst):
    return [f"PVM guest={dst} stage=save ok=1 secs=4.2 up=50.10",
            f"PVM guest={dst} stage=restore ok=1 secs=5.1 up=55.30",
            f"PVM guest={dst} stage=go ok=1 domid=3 vif=vif3.0 tries=2 secs=1.4 up=56.70"]


def _migrate_ok(dst):
    return [f"PVM guest={dst} stage=migrate ok=1 secs=9.8 up=55.90",
            f"PVM guest={dst} stage=go ok=1 domid=4 vif=vif4.0 tries=3 secs=2.0 up=57.90"]


def _judge(role_name, lines, nonce=NONCE):
    role = roles.get(role_name)
    dom0 = verdicts.judge_host(roles.host(xen=True), lines, verdicts.BootOutcome(), [role.where])
    assert dom0.status == PASS, dom0.reason
    return verdicts.judge_guest(role, lines, verdicts.BootOutcome(), dom0,
                                {"disk": f"PVMDISK-{role.where}-{nonce}"})


@pytest.mark.parametrize("role_name,src", [("domU-pv-save", "pv"), ("domU-pvh-save", "pvh"),
                                           ("domU-pv-migrate", "pv"), ("domU-pvh-migrate", "pvh")])
def test_a_guest_that_went_on_passes(role_name, src):
    dst = roles.get(role_name).where
    steps = _save_ok(dst) if role_name.endswith("save") else _migrate_ok(dst)
    v = _judge(role_name, _life_log(src, dst, steps, _ready() + _resumed(dst)))
    assert v.status == PASS, v.reason
    texts = [e.text for e in v.evidence]
    assert any("stage=resumed" in t for t in texts) and any("stage=done" in t for t in texts)


def test_the_plain_roles_still_pass_on_the_real_log():
    lines = markers.parse(REAL_LOG)
    for name in ("domU-pv", "domU-pvh"):
        assert _judge(name, lines).status == PASS


def test_a_guest_that_cannot_suspend_fails_with_the_toolstacks_message():
    dst = "pv_save"
    steps = [f"PVM guest={dst} stage=save ok=0 rc=1 secs=61.3 up=91.20",
             f"PVMOUT {dst}| Saving to /tmp/{dst}.save new xl format (info 0x3/0x0/1213)",
             f"PVMOUT {dst}| {NO_ACK}",
             f"PVMOUT {dst}| libxl: error: libxl_dom_suspend.c:333:suspend_common_wait_guest_timeout: "
             "Domain 3:guest did not suspend, timed out",
             f"PVM guest={dst} stage=go ok=1 domid=3 vif=vif3.0 tries=1 secs=0.6 up=92.00"]
    v = _judge("domU-pv-save", _life_log("pv", dst, steps, _ready() + _resumed(dst)))
    assert v.status == FAIL
    assert v.reason.startswith("xl save failed: ") and "guest didn't acknowledge suspend" in v.reason
    assert v.evidence[0].text.startswith(f"PVM guest={dst} stage=save ok=0")


def test_a_failed_migration_says_so():
    dst = "pvh_mig"
    steps = [f"PVM guest={dst} stage=migrate ok=0 rc=1 secs=62.0 up=92.20",
             f"PVMOUT {dst}| {NO_ACK}",
             f"PVMOUT {dst}| migration sender: libxl_domain_suspend failed (rc=-8)",
             f"PVMOUT {dst}| Migration failed, failed to suspend at sender.",
             f"PVM guest={dst} stage=go ok=1 domid=2 vif=vif2.0 tries=1 secs=0.6 up=93.00"]
    v = _judge("domU-pvh-migrate", _life_log("pvh", dst, steps, _ready() + _resumed(dst)))
    assert v.status == FAIL and v.reason.startswith("xl migrate failed: ")
    assert "guest didn't acknowledge suspend" in v.reason


def test_a_guest_that_rebooted_instead_of_resuming_fails_with_both_boot_ids():
    dst = "pv_save"
    v = _judge("domU-pv-save", _life_log("pv", dst, _save_ok(dst),
                                         _ready() + _resumed(dst, boot=BOOT_B)))
    assert v.status == FAIL and BOOT_A in v.reason and BOOT_B in v.reason
    assert "rebooted" in v.reason
    assert [e.note for e in v.evidence] == ["before the save", "after the save"]


def test_a_counter_that_did_not_go_on_fails():
    dst = "pv_mig"
    v = _judge("domU-pv-migrate", _life_log("pv", dst, _migrate_ok(dst),
                                            _ready(n=5) + _resumed(dst, n=5)))
    assert v.status == FAIL and "n=5 before, n=5 after" in v.reason


def test_no_go_ahead_names_the_step():
    dst = "pvh_save"
    steps = _save_ok(dst)[:2] + [
        f"PVM guest={dst} stage=go ok=0 domid=3 vif=vif3.0 tries=9 secs=20.4 up=76.70"]
    v = _judge("domU-pvh-save", _life_log("pvh", dst, steps, _ready()))
    assert v.status == FAIL and v.reason.startswith("no go-ahead after the save")


def test_a_guest_that_never_resumed_is_a_missing_marker():
    dst = "pv_save"
    v = _judge("domU-pv-save", _life_log("pv", dst, _save_ok(dst), _ready()))
    assert v.status == FAIL and "probe=disk when=resumed" in v.reason


# -- the static capability, from the real config of the default spec's small kernel

def _real_config(drop: tuple[str, ...] = ()):
    text = (ANALYZE / "debian-6.1-xen-min.config").read_text()
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(drop))
    return kconfig.parse_config(text, "debian-6.1-xen-min.config")


def test_the_small_kernel_can_be_saved_and_migrated():
    config = _real_config()
    names = system_map_names((ANALYZE / "debian-6.1-xen-min.System.map-suspend").read_text())
    found = {c.name: c for c in caps.capabilities(None, config, None, (6, 1), names)}
    assert found["guest_suspend"].supported is True
    assert "CONFIG_HIBERNATE_CALLBACKS=y" in found["guest_suspend"].evidence
    assert "System.map: xen_suspend present" in found["guest_suspend"].evidence
    assert found["pv_domu_suspend"].supported and found["pvh_domu_suspend"].supported


def test_without_suspend_support_the_capability_is_a_static_no_with_evidence():
    # the real config with the suspend options taken out (XEN_SAVE_RESTORE has no
    # prompt: only a changed Kconfig turns it off, as tests/real/test_lifecycle.py does)
    config = _real_config(("CONFIG_XEN_SAVE_RESTORE=", "CONFIG_HIBERNATE_CALLBACKS="))
    found = {c.name: c for c in caps.capabilities(None, config, None, (6, 1), set())}
    pv = found["pv_domu_suspend"]
    assert pv.supported is False and found["pv_domu"].supported is True
    assert pv.evidence[0].startswith("lacks guest_suspend: CONFIG_HIBERNATE_CALLBACKS is not set")
    assert "System.map: xen_suspend absent" in pv.evidence[0]
    assert found["pvh_domu_suspend"].supported is False


def test_nothing_to_read_is_unknown_not_no():
    found = {c.name: c for c in caps.capabilities(None, None, None, None, None)}
    assert found["guest_suspend"].supported is None
    assert found["pv_domu_suspend"].supported is None


def test_debians_placeholder_system_map_is_not_read_as_a_kernel_without_suspend(tmp_path):
    """Debian 5.10's System.map (real file) is one line pointing at the -dbg
    package: taken as a symbol table it said xen_suspend was absent, a false
    static no for save and migrate. It is now no System.map at all."""
    from pvmatrix.analyze import Analysis, _symbols
    from pvmatrix.kernel import Kernel
    placeholder = ANALYZE / "debian-5.10-System.map-placeholder"
    result = Analysis.__new__(Analysis)
    result.problems = []
    files = Kernel.__new__(Kernel)
    object.__setattr__(files, "system_map", placeholder)
    assert _symbols(files, result) is None
    assert "not a symbol table (ffffffffffffffff B The real System.map is in" in result.problems[0]
    found = {c.name: c for c in caps.capabilities(None, _real_config(), None, (5, 10), None)}
    assert found["guest_suspend"].supported is True and found["pv_domu_suspend"].supported


def test_a_guest_that_panicked_after_migrating_and_passed_again_is_flaky_with_the_panic():
    """Real: a PVH guest double-faulted on its first interrupt after a migration
    (CI, Xen 4.17, TCG); dom0 tried it once more and the second attempt went on."""
    lines = markers.parse((FIXTURES / "boot" / "pvh-migrate-double-fault-retried.log").read_text())
    v = _judge("domU-pvh-migrate", lines, nonce="4d919e48")
    assert v.status == PASS and "second attempt" in v.reason and "panicked; flaky" in v.reason
    first = [e for e in v.evidence if e.note == "first attempt"]
    assert first and "Kernel panic - not syncing" in first[0].text


def test_a_panicked_guest_is_retried_and_nc_is_bounded():
    """dom0-init.sh: a guest whose console says it panicked is finished as
    `panicked` (retried) instead of waited for, and the go-ahead cannot hang on a
    connection its guest died in."""
    init = (BOOT_DATA / "dom0-init.sh").read_text()
    assert "'Kernel panic - not syncing' && { state=panicked" in init
    assert '[ "$2" = panicked ]' in init
    assert "timeout 4 nc" in init
