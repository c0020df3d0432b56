"""Lifecycle roles (issue 15: save/restore and live migration) without a boot:
the catalog entries, dom0's plan, the judge on logs built from a real passing
Xen boot, and the guest_suspend capability of a real small kernel's config."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import pytest

from conftest import FIXTURES
from pvmatrix import catalog
from pvmatrix.analyze import kconfig, system_map_names, verdicts as caps
from pvmatrix.boot import harness, markers, roles, verdicts
from pvmatrix.boot.initramfs import BOOT_DATA
from pvmatrix.errors import UserError
from pvmatrix.records import BLOCKED, FAIL, PASS

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
        # a step's part ends at its resumed marker: the guest's stage=done is the chain's
        assert "stage=resumed" in r.expect and "stage=done" not in r.expect
        assert f"guest=* stage={r.lifecycle} ok=1" in r.expect
        assert r.deadline_s >= 90 + 60       # libxl waits 60 s for a guest that cannot suspend
        # it rides on its mode's plain guest: one guest per mode
        assert r.where == roles.get(f"domU-{r.guest_type}").where == r.guest_type
    assert roles.get("domU-pv").lifecycle is None and roles.get("domU-pv").order == 0
    assert roles.get("domU-pv-save").order < roles.get("domU-pv-migrate").order


def test_a_bad_lifecycle_is_an_error():
    base = {"xen": True, "where": "g", "expect": [], "deadline_s": 1}
    with pytest.raises(UserError, match="lifecycle 'hibernate' is not one of save, migrate"):
        catalog._role("x", {**base, "lifecycle": "hibernate"}, {})
    with pytest.raises(UserError, match="must be a shell identifier"):
        catalog._role("x", {**base, "where": "pv-save", "lifecycle": "save", "order": 1}, {})


def test_roles_sharing_a_guest_must_be_one_chain():
    base = {"xen": True, "where": "g", "expect": [], "deadline_s": 1, "guest_type": "pv"}
    with pytest.raises(UserError, match="roles.toml: role x: a lifecycle role needs an order"):
        catalog._role("x", {**base, "lifecycle": "save"}, {})
    with pytest.raises(UserError, match="roles.toml: role x: .*only a lifecycle role"):
        catalog._role("x", {**base, "order": 1}, {})
    save = {**base, "lifecycle": "save", "order": 1}
    with pytest.raises(UserError, match="roles.toml: role x: shares guest 'g' with y but not its"):
        catalog._role("x", save, {"role": {"x": save, "y": {**base, "guest_type": "pvh"}}})
    with pytest.raises(UserError, match="roles.toml: role x: shares guest 'g' with y: one plain"):
        catalog._role("x", save, {"role": {"x": save, "y": {**save, "lifecycle": "migrate"}}})
    with pytest.raises(UserError, match="shares guest 'g' with y: one plain"):
        catalog._role("x", base, {"role": {"x": base, "y": base}})
    fine = {"x": save, "y": base, "z": {**save, "lifecycle": "migrate", "order": 2}}
    assert catalog._role("x", save, {"role": fine}).order == 1


def test_the_default_spec_leaves_them_out_and_the_lifecycle_spec_has_them():
    from pvmatrix.matrix import spec
    default = spec.load(harness.Path(__file__).parents[2] / "specs" / "default.toml")
    life = spec.load(harness.Path(__file__).parents[2] / "specs" / "lifecycle.toml")
    assert not set(LIFE_ROLES) & set(default.roles)
    assert set(LIFE_ROLES) <= set(life.roles)
    assert [k.name for k in life.kernels] == [k.name for k in default.kernels]


def test_plan_env_carries_each_guests_ordered_steps():
    """One guest per mode: the plain, save and migrate roles of a mode are one
    guest whose steps are in roles.toml's order, whatever the roles' order."""
    dom0 = roles.host(xen=True)
    guests = [roles.get(n) for n in ("domU-pv-migrate", "domU-pv", "domU-pvh-migrate",
                                     "domU-pv-save")]
    plan = harness.boot_plan(dom0, guests, "abcd", False)
    assert plan["GUESTS"] == "pv:pv:1 pvh:pvh:2"
    assert plan["LIFE_pv"] == "save migrate" and plan["LIFE_pvh"] == "migrate"
    assert plan["LIFE_PORT"] == str(harness.LIFE_PORT)
    assert plan["CMDLINE_pv"] == roles.get("domU-pv-save").cmdline
    # the guest's time grows with its steps: its boot's, then each step's
    assert plan["DEADLINE_pv"] == "450" and plan["DEADLINE_pvh"] == "180"
    assert plan["GUEST_DEADLINE"] == "450"
    plain = harness.boot_plan(dom0, [roles.get("domU-pv"), roles.get("domU-pvh")], "abcd", False)
    assert plain["GUESTS"] == "pv:pv:1 pvh:pvh:2" and "LIFE_pv" not in plain
    alone = harness.boot_plan(dom0, [roles.get("domU-pvh-save")], "abcd", False)
    assert alone["GUESTS"] == "pvh:pvh:1" and alone["LIFE_pvh"] == "save"


def test_a_hosted_boots_chains_are_each_kernels_own():
    names = ("domU-pv", "domU-pv-save", "domU-pv-migrate")
    k1, k2 = object(), object()
    slots = harness.named([(k1, [roles.get(n) for n in names]), (k2, [roles.get(n) for n in names])])
    doms = harness.domains([g for _, g in slots])
    assert [(d.name, d.steps) for d in doms] == [("pv_1", ("save", "migrate")),
                                                 ("pv_2", ("save", "migrate"))]
    assert doms[0].deadline_s == 90 + 180 + 180


def test_the_inits_parse():
    for init in ("dom0-init.sh", "guest-init.sh", "lib.sh"):
        done = subprocess.run(["busybox", "sh", "-n", str(BOOT_DATA / init)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    dom0 = (BOOT_DATA / "dom0-init.sh").read_text()
    assert "domU-" not in dom0, "the dom0 init must not know role names"
    assert 'xl migrate -s "" "$1" "xl migrate-receive"' in dom0
    # the chain: dom0 loops the guest's steps, the guest its own (pvm.steps)
    assert 'for STEP in $life; do' in dom0 and 'pvm.steps=$steps' in dom0
    assert 'stage=ready step="$step"' in (BOOT_DATA / "guest-init.sh").read_text()
    # the go-ahead: busybox nc in dom0 (Debian's userspace may have none) and the guest
    from pvmatrix.boot.initramfs import DOM0_APPLETS
    assert "nc" in DOM0_APPLETS and "awk" in DOM0_APPLETS
    assert "-l" in subprocess.run(["busybox", "nc", "--help"], capture_output=True,
                                  text=True).stderr


# -- the judge, on the real passing log with the lines the lifecycle scripts add.
# SYNTHETIC: the guest renamed to the role's guest and these lines inserted
# (formats as dom0-init.sh's xl_step/life_go and guest-init.sh's life printed
# them before the chain: one guest per role, no step= fields; such logs are
# still judged).

def _life_log(src: str, dst: str, steps: list[str], guest: list[str], done: bool = True,
              exit_state: str = "done", first: list[str] = (),
              log: str = REAL_LOG) -> list[markers.Line]:
    """The real log, guest SRC renamed DST; dom0's STEPS after its create line and
    the guest's console lines GUEST after its last probe (before stage=done; without
    it unless DONE), its exit state EXIT_STATE, and lines FIRST (a first attempt)
    before its start; LOG: the real log, or a copy of it with a line changed."""
    out = []
    for raw in log.split("\n"):
        line = (raw.replace(f"guest={src} ", f"guest={dst} ").replace(f"PVMG {src}|", f"PVMG {dst}|")
                .replace(f"PVMDISK-{src}-", f"PVMDISK-{dst}-").replace(f"name={src} ", f"name={dst} "))
        if line.startswith(f"PVM guest={dst} stage=start"):
            out += first
        if line.startswith(f"PVM guest={dst} stage=exit"):
            line = line.replace("state=done", f"state={exit_state}")
        if line.startswith(f"PVMG {dst}| PVM stage=done"):
            out += [f"PVMG {dst}| {g}" for g in guest]
            if not done:
                continue
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


def _judge(role_name, lines, nonce=NONCE, where=None, chain=()):
    """ROLE_NAME's verdict; WHERE: its guest's name in a log from before the chain
    (pv_save, pvh_mig: a guest per role); CHAIN: the roles riding on its guest."""
    role = roles.get(role_name)
    role = replace(role, where=where) if where else role
    dom0 = verdicts.judge_host(roles.host(xen=True), lines, verdicts.BootOutcome(), [role.where])
    assert dom0.status == PASS, dom0.reason
    return verdicts.judge_guest(role, lines, verdicts.BootOutcome(), dom0,
                                {"disk": f"PVMDISK-{role.where}-{nonce}"},
                                tuple(roles.get(n) for n in chain))


@pytest.mark.parametrize("role_name,src", [("domU-pv-save", "pv"), ("domU-pvh-save", "pvh"),
                                           ("domU-pv-migrate", "pv"), ("domU-pvh-migrate", "pvh")])
def test_a_guest_that_went_on_passes(role_name, src):
    dst = f"{src}_{'save' if role_name.endswith('save') else 'mig'}"   # a guest per role, then
    steps = _save_ok(dst) if role_name.endswith("save") else _migrate_ok(dst)
    v = _judge(role_name, _life_log(src, dst, steps, _ready() + _resumed(dst)), where=dst)
    assert v.status == PASS, v.reason
    texts = [e.text for e in v.evidence]
    assert any("stage=resumed" in t for t in texts) and any("when=resumed" in t for t in texts)


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
    v = _judge("domU-pv-save", _life_log("pv", dst, steps, _ready() + _resumed(dst)), where=dst)
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
    v = _judge("domU-pvh-migrate", _life_log("pvh", dst, steps, _ready() + _resumed(dst)), where=dst)
    assert v.status == FAIL and v.reason.startswith("xl migrate failed: ")
    assert "guest didn't acknowledge suspend" in v.reason


def test_a_guest_that_rebooted_instead_of_resuming_fails_with_both_boot_ids():
    dst = "pv_save"
    v = _judge("domU-pv-save", _life_log("pv", dst, _save_ok(dst),
                                         _ready() + _resumed(dst, boot=BOOT_B)), where=dst)
    assert v.status == FAIL and BOOT_A in v.reason and BOOT_B in v.reason
    assert "rebooted" in v.reason
    assert [e.note for e in v.evidence] == ["before the save", "after the save"]


def test_a_counter_that_did_not_go_on_fails():
    dst = "pv_mig"
    v = _judge("domU-pv-migrate", _life_log("pv", dst, _migrate_ok(dst),
                                            _ready(n=5) + _resumed(dst, n=5)), where=dst)
    assert v.status == FAIL and "n=5 before, n=5 after" in v.reason


def test_no_go_ahead_names_the_step():
    dst = "pvh_save"
    steps = _save_ok(dst)[:2] + [
        f"PVM guest={dst} stage=go ok=0 domid=3 vif=vif3.0 tries=9 secs=20.4 up=76.70"]
    v = _judge("domU-pvh-save", _life_log("pvh", dst, steps, _ready()), where=dst)
    assert v.status == FAIL and v.reason.startswith("no go-ahead after the save")


def test_a_guest_that_never_resumed_is_a_missing_marker():
    dst = "pv_save"
    v = _judge("domU-pv-save", _life_log("pv", dst, _save_ok(dst), _ready()), where=dst)
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
    v = _judge("domU-pvh-migrate", lines, nonce="4d919e48", where="pvh_mig")
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
    # a chain stopped by a guest that panicked in its step is panicked, so retried
    stop = init.index('if [ -f "/run/$1.stop" ]')
    assert "state=panicked" in init[stop:init.index("fi", stop)]


# -- one guest per mode: the plain, save and migrate cells from one guest's chain.
# ASSEMBLED: no real chained log exists yet. The real passing log's guest pv
# with dom0's step lines inserted after its create line and the guest's after
# its last probe, in the formats dom0-init.sh (guest_life, xl_step, life_go)
# and guest-init.sh (life) print them now (step= on each).

CHAIN = ("domU-pv", "domU-pv-save", "domU-pv-migrate")
PANIC = ("[   13.052069] Kernel panic - not syncing: Fatal exception in interrupt")   # the
# real one, tests/fixtures/boot/pvh-migrate-double-fault-retried.log


def _c_ready(step, n, boot=BOOT_A):
    return [f"PVM tick={n} up={20 + n}.10",
            f"PVM stage=ready step={step} boot_id={boot} n={n} port=7099 up={20 + n}.20"]


def _c_resumed(step, n, boot=BOOT_A, go="go"):
    return [f"PVM tick={n} up={20 + n}.40",
            f"PVM probe=disk when=resumed step={step} dev=xvda ok=1 direct=1 "
            f"data=PVMDISK-pv-{NONCE} up={20 + n}.50",
            f"PVM probe=net when=resumed step={step} dev=eth0 ok=1 peer=10.99.1.1 tries=0 "
            f"up={20 + n}.60",
            f"PVM stage=resumed step={step} boot_id={boot} n={n} go={go} up={20 + n}.61"]


def _c_save(ok=True, go=1):
    lines = ["PVM guest=pv stage=begin step=save up=50.00"]
    if ok:
        lines += ["PVM guest=pv stage=save step=save ok=1 secs=4.2 up=54.20",
                  "PVM guest=pv stage=restore step=save ok=1 secs=5.1 up=59.30"]
    else:
        lines += ["PVM guest=pv stage=save step=save ok=0 rc=1 secs=61.3 up=111.30",
                  "PVMOUT pv| Saving to /tmp/pv.save new xl format (info 0x3/0x0/1213)",
                  f"PVMOUT pv| {NO_ACK}"]
    return lines + [f"PVM guest=pv stage=go step=save ok={go} domid=3 vif=vif3.0 tries=2 "
                    "secs=1.4 up=60.70"]


def _c_migrate():
    return ["PVM guest=pv stage=begin step=migrate up=61.00",
            "PVM guest=pv stage=migrate step=migrate ok=1 secs=9.8 up=70.80",
            "PVM guest=pv stage=go step=migrate ok=1 domid=4 vif=vif4.0 tries=3 secs=2.0 up=72.80"]


def _cells(lines, chain=CHAIN):
    return {n: _judge(n, lines, chain=chain) for n in chain}


def _good_guest():
    return (_c_ready("save", 2) + _c_resumed("save", 9) + _c_ready("migrate", 10)
            + _c_resumed("migrate", 15))


def test_one_guest_gives_the_plain_save_and_migrate_cells():
    v = _cells(_life_log("pv", "pv", _c_save() + _c_migrate(), _good_guest()))
    assert all(x.status == PASS for x in v.values()), {n: x.reason for n, x in v.items()}
    save = " ".join(e.text for e in v["domU-pv-save"].evidence)
    migrate = " ".join(e.text for e in v["domU-pv-migrate"].evidence)
    assert "stage=resumed step=save" in save and "step=migrate" not in save
    assert "stage=resumed step=migrate" in migrate and "step=save" not in migrate
    # each cell's own time: the boot until dom0 began the save (start 25.75), then
    # its own step's (as a guest doing only that step would take)
    assert v["domU-pv"].seconds == 24.25
    assert v["domU-pv-save"].seconds == 24.25 + 11.0
    assert v["domU-pv-migrate"].seconds == round(24.25 + 78.90 - 61.00, 2)


def test_the_plain_cell_does_not_wait_for_the_chain_to_end():
    """A later step that never ended (no stage=done, dom0's deadline) is that step's."""
    guest = _c_ready("save", 2) + _c_resumed("save", 9) + _c_ready("migrate", 10)
    v = _cells(_life_log("pv", "pv", _c_save() + _c_migrate()[:1], guest, done=False,
                         exit_state="timeout"))
    assert v["domU-pv"].status == PASS and v["domU-pv-save"].status == PASS
    assert v["domU-pv-migrate"].status == FAIL and v["domU-pv-migrate"].detail == "timeout"


def test_a_refused_save_fails_the_save_and_the_migration_is_judged_on_its_own():
    """xl save refused (the guest did not acknowledge), the domain kept running:
    dom0's go-ahead reached it, so the migration ran and passed."""
    v = _cells(_life_log("pv", "pv", _c_save(ok=False) + _c_migrate(), _good_guest()))
    assert v["domU-pv-save"].status == FAIL
    assert v["domU-pv-save"].reason.startswith("xl save failed: ")
    assert "guest didn't acknowledge suspend" in v["domU-pv-save"].reason
    assert v["domU-pv-migrate"].status == PASS, v["domU-pv-migrate"].reason
    assert v["domU-pv"].status == PASS


def test_a_guest_that_died_in_the_save_blocks_the_migration():
    steps = _c_save()[:2] + [
        "PVM guest=pv stage=restore step=save ok=0 rc=1 secs=3.0 up=57.20",
        "PVMOUT pv| libxl: error: libxl_create.c:1700:domcreate_rebuild_done: "
        "Domain 3:cannot (re-)build domain: -3",
        "PVM guest=pv stage=go step=save ok=0 why=no-domain up=57.30"]
    v = _cells(_life_log("pv", "pv", steps, _c_ready("save", 2), done=False, exit_state="gone"))
    assert v["domU-pv"].status == PASS, v["domU-pv"].reason
    assert v["domU-pv-save"].status == FAIL
    assert v["domU-pv-save"].reason.startswith("xl restore failed: libxl: error")
    mig = v["domU-pv-migrate"]
    assert mig.status == BLOCKED and mig.detail == verdicts.EARLIER_STEP
    assert mig.reason == f"the guest did not survive the save: {v['domU-pv-save'].reason}"
    # hosted by another kernel's dom0: still the guest's own step, not the host's fault
    assert harness.host_fault(mig, "generic") is mig


def test_a_panic_in_the_migration_is_the_migrations_alone():
    guest = _c_ready("save", 2) + _c_resumed("save", 9) + _c_ready("migrate", 10) + [PANIC]
    v = _cells(_life_log("pv", "pv", _c_save() + _c_migrate()[:2], guest, done=False,
                         exit_state="panicked"))
    assert v["domU-pv"].status == PASS and v["domU-pv-save"].status == PASS
    assert v["domU-pv-migrate"].status == FAIL and v["domU-pv-migrate"].detail == "panic"


def test_continuity_is_judged_per_step():
    rebooted = (_c_ready("save", 2) + _c_resumed("save", 9) + _c_ready("migrate", 10)
                + _c_resumed("migrate", 15, boot=BOOT_B))
    v = _cells(_life_log("pv", "pv", _c_save() + _c_migrate(), rebooted))
    assert v["domU-pv-save"].status == PASS
    assert v["domU-pv-migrate"].status == FAIL and BOOT_B in v["domU-pv-migrate"].reason
    assert v["domU-pv-migrate"].reason.endswith("(the guest had been through the save before)")
    assert [e.note for e in v["domU-pv-migrate"].evidence] == ["before the migrate",
                                                              "after the migrate"]
    stalled = (_c_ready("save", 5) + _c_resumed("save", 5) + _c_ready("migrate", 6)
               + _c_resumed("migrate", 12))
    v = _cells(_life_log("pv", "pv", _c_save() + _c_migrate(), stalled))
    assert v["domU-pv-save"].status == FAIL and "n=5 before, n=5 after" in v["domU-pv-save"].reason
    assert v["domU-pv-migrate"].status == PASS      # its own counter: 6 before, 12 after


def test_a_save_alone_is_a_chain_of_one_and_checks_the_boot_probes():
    chain = ("domU-pv-save",)
    good = _life_log("pv", "pv", _c_save(), _c_ready("save", 2) + _c_resumed("save", 9))
    assert _judge("domU-pv-save", good, chain=chain).status == PASS
    no_net = REAL_LOG.replace("PVMG pv| PVM probe=net dev=eth0 ok=1", "PVMG pv| PVM probe=net dev=eth0 ok=0")
    assert no_net != REAL_LOG
    bad = _life_log("pv", "pv", _c_save(), _c_ready("save", 2) + _c_resumed("save", 9), log=no_net)
    v = _judge("domU-pv-save", bad, chain=chain)
    assert v.status == FAIL and "probe=net ok=1" in v.reason


def test_a_retried_chain_is_flaky_only_in_the_step_its_first_attempt_died_in():
    """The first attempt (relayed as pv#1) resumed after its save and panicked in
    its migration (the real panic line); dom0 ran the chain again, which passed."""
    first = ["PVM guest=pv stage=start up=5.00", "PVM guest=pv stage=create ok=1 domid=1 up=7.00",
             *[ln.replace("up=", "up=1") for ln in _c_save() + _c_migrate()[:2]],
             "PVM guest=pv stage=go step=migrate ok=0 domid=2 vif=vif2.0 tries=5 secs=20.2 up=92.2",
             *[f"PVMG pv#1| {g}" for g in _c_ready("save", 2) + _c_resumed("save", 9)
               + _c_ready("migrate", 10) + [PANIC]],
             "PVM guest=pv stage=exit state=panicked start=5.00 up=20.9",
             "PVM guest=pv stage=retry after=panicked up=21.0"]
    v = _cells(_life_log("pv", "pv", _c_save() + _c_migrate(), _good_guest(), first=first))
    assert all(x.status == PASS for x in v.values()), {n: x.reason for n, x in v.items()}
    assert "second attempt" not in v["domU-pv"].reason
    assert "second attempt" not in v["domU-pv-save"].reason
    assert "second attempt" in v["domU-pv-migrate"].reason
    assert "panicked; flaky" in v["domU-pv-migrate"].reason
    assert [e for e in v["domU-pv-migrate"].evidence if e.note == "first attempt"]


def test_dom0_sets_a_stepped_guests_console_logs_aside_in_order(tmp_path):
    """dom0-init.sh's guest_logs, log_aside and logs_have, run by busybox sh on a
    stand-in for /run/xencons: a saved then migrated guest's logs in order."""
    init = (BOOT_DATA / "dom0-init.sh").read_text()
    funcs = "\n".join(re.search(rf"^{name}\(\) {{.*?^}}$", init, re.S | re.M).group(0)
                      for name in ("log_has", "guest_logs", "logs_have", "log_aside"))
    cons = tmp_path / "xencons"
    cons.mkdir()
    script = funcs.replace("/run/xencons", str(cons)) + """
echo 'PVM stage=init' >"$C/guest-pv.log"; log_aside pv 1
echo restored >"$C/guest-pv.log"; echo early >"$C/guest-pv--incoming.log"; log_aside pv 2
mv "$C/guest-pv--incoming.log" "$C/guest-pv.log.2i"
echo 'PVM stage=done' >"$C/guest-pv.log"; echo old >"$C/guest-pv.log.old"
echo other >"$C/guest-pv_2.log"
for f in $(guest_logs pv); do cat "$f"; done
logs_have pv 'PVM stage=init' && echo has-init
logs_have pv_2 'PVM stage=init' || echo not-in-pv_2
"""
    done = subprocess.run(["busybox", "sh", "-c", script], capture_output=True, text=True,
                          env={"C": str(cons), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["PVM stage=init", "restored", "early", "PVM stage=done",
                                        "has-init", "not-in-pv_2", ""]
