"""Real builds in real containers: Debian's 6.1 source with the Xen recipe,
the cache, and a build that fails with a real compiler error."""

import json
import os
import shutil

import pytest

from conftest import DEBIAN_61, interruptible, pvmatrix
from pvmatrix import build
from pvmatrix.errors import PvmError

XEN_RECIPE = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]


@pytest.fixture(scope="session")
def impossible(tmp_path_factory):
    """A fragment asking for one symbol 6.1 lacks and one whose dependency is off."""
    path = tmp_path_factory.mktemp("frag") / "impossible.config"
    path.write_text("CONFIG_PVMATRIX_NO_SUCH_OPTION=y\n"
                    "# MEGARAID_SAS needs SCSI, which this fragment turns off\n"
                    "# CONFIG_SCSI is not set\nCONFIG_MEGARAID_SAS=m\n")
    return str(path)


@pytest.fixture(scope="session")
def xen_61(impossible):
    """Debian 6.1 tinyconfig + the Xen recipe, built once per machine (cached)."""
    return build.build(DEBIAN_61, "tinyconfig", XEN_RECIPE + [impossible])


@pytest.mark.slow
def test_xen_kernel_artifacts(xen_61):
    data = xen_61.kernel.image.read_bytes()
    assert data[0x202:0x206] == b"HdrS", "bzImage lacks the x86 boot protocol header"
    assert xen_61.kernel.vmlinux.read_bytes()[:4] == b"\x7fELF"
    config = xen_61.kernel.config.read_text()
    for line in ("CONFIG_XEN_PV=y", "CONFIG_XEN_PVH=y", "CONFIG_XEN_DOM0=y",
                 "CONFIG_XEN_BLKDEV_FRONTEND=y", "CONFIG_XEN_NETDEV_BACKEND=y",
                 "CONFIG_FILE_LOCKING=y", "CONFIG_HVC_XEN=y", "CONFIG_E1000E=m"):
        assert line in config.splitlines(), line
    assert (xen_61.dir / "System.map").stat().st_size > 0
    kos = list(xen_61.kernel.modules.rglob("e1000e.ko*"))
    assert kos, "e1000e module missing from the modules tree"
    assert "@@pvmatrix-step done" in (xen_61.dir / "build.log").read_text()


@pytest.mark.slow
def test_unmet_options_are_reported(xen_61, impossible):
    report = {u["symbol"]: u for u in xen_61.unmet}
    assert set(report) == {"CONFIG_PVMATRIX_NO_SUCH_OPTION", "CONFIG_MEGARAID_SAS"}
    assert report["CONFIG_PVMATRIX_NO_SUCH_OPTION"]["reason"] == "no such symbol in this kernel"
    assert report["CONFIG_MEGARAID_SAS"]["got"] == "n"
    assert report["CONFIG_MEGARAID_SAS"]["fragment"] == impossible


@pytest.mark.slow
def test_second_request_is_a_cache_hit_without_engine(xen_61, impossible):
    # an engine address that cannot answer: a hit must not need one
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    args = ["build", DEBIAN_61, "--base", "tinyconfig", "--json"]
    for frag in XEN_RECIPE + [impossible]:
        args += ["-f", frag]
    done = pvmatrix(*args, env=env)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["cached"] is True
    assert manifest["key"] == xen_61.key
    assert manifest["unmet"] == xen_61.unmet


@pytest.mark.slow
def test_reordered_fragments_hit_the_same_artifacts(xen_61, impossible):
    again = build.build(DEBIAN_61, "tinyconfig", list(reversed(XEN_RECIPE)) + [impossible])
    assert again.cached and again.key == xen_61.key


def fake_tree(path, debian_61, build_recipe: str):
    """A kernel-shaped tree (real merge_config.sh) whose build runs BUILD_RECIPE."""
    (path / "scripts/kconfig").mkdir(parents=True)
    shutil.copy(debian_61.tree / "scripts/kconfig/merge_config.sh", path / "scripts/kconfig")
    (path / "Makefile").write_text(
        "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n"
        "tinyconfig:\n\techo CONFIG_64BIT=y > $(O)/.config\n"
        "olddefconfig:\n\ttrue\n"
        f"all bzImage vmlinux:\n\t{build_recipe}\n")
    return path


@pytest.fixture
def broken_tree(tmp_path, debian_61):
    """A kernel-shaped tree whose build hits a real compiler error."""
    tree = fake_tree(tmp_path / "broken", debian_61, "$(CC) -c $(CURDIR)/broken.c -o $(O)/broken.o")
    (tree / "broken.c").write_text("int main(void)\n{\n\treturn undeclared_thing;\n}\n")
    return tree


@pytest.mark.slow
def test_configure_failure_is_named(private_cache, tmp_path, debian_61):
    tree = fake_tree(tmp_path / "t", debian_61, "true")
    (tree / "Makefile").write_text((tree / "Makefile").read_text().replace(
        "echo CONFIG_64BIT=y > $(O)/.config", "@echo '*** Kconfig: syntax error'; false"))
    with pytest.raises(PvmError, match=r"configuring dir:.* failed: \*\*\* Kconfig: syntax error"):
        build.build(f"dir:{tree}", "tinyconfig", [], toolchain="bookworm-gcc12")


@pytest.mark.slow
def test_store_cache_and_cpu_time_with_a_small_tree(private_cache, tmp_path, debian_61):
    """The whole store path on a tree that builds in seconds: artifacts published
    under the key, CPU time measured in the container, then a hit."""
    tree = fake_tree(tmp_path / "small", debian_61,
                     "mkdir -p $(O)/arch/x86/boot && head -c 600000 /dev/urandom | xz -9 > "
                     "$(O)/arch/x86/boot/bzImage && cp $(O)/arch/x86/boot/bzImage $(O)/vmlinux "
                     "&& touch $(O)/System.map")
    first = build.build(f"dir:{tree}", "tinyconfig", [], toolchain="bookworm-gcc12")
    assert not first.cached and first.cpu_s > 0
    assert first.dir == private_cache / "artifacts" / first.key
    assert sorted(p.name for p in first.dir.iterdir()) == [
        "System.map", "build.log", "bzImage", "config", "manifest.json", "vmlinux"]
    slots = [d for d in (private_cache / "warm").iterdir() if d.is_dir()]
    assert len(slots) == 1 and not (slots[0] / ".pvm-dirty").exists(), "warm tree left dirty"
    assert not (slots[0] / "vmlinux").exists(), "artifacts were copied, not moved"
    again = build.build(f"dir:{tree}", "tinyconfig", [], toolchain="bookworm-gcc12")
    assert again.cached and again.key == first.key and again.cpu_s == first.cpu_s


@pytest.mark.slow
def test_failed_build_names_step_and_first_error(broken_tree, private_cache):
    with pytest.raises(PvmError) as err:
        build.build(f"dir:{broken_tree}", "tinyconfig", [], toolchain="bookworm-gcc12")
    msg = str(err.value)
    assert "failed in step build" in msg
    assert "broken.c:3:16: error: 'undeclared_thing' undeclared" in msg
    log = msg.rsplit("(log: ", 1)[1].rstrip(")")
    assert "undeclared_thing" in open(log).read()


@pytest.mark.slow
@pytest.mark.parametrize("command,signame", [("build", "SIGINT"), ("build", "SIGTERM"),
                                             ("run", "SIGINT")])
def test_ctrl_c_stops_the_build_container(tmp_path, debian_61, command, signame):
    """`pvmatrix build`, and `pvmatrix run` whose build runs in the embedded
    Dask worker's thread: the container goes when the command is stopped."""
    import signal
    import subprocess
    import sys
    import time

    from pvmatrix.build import container, engine

    tree = fake_tree(tmp_path / "slow", debian_61, "echo compiling; sleep 300")
    env = dict(os.environ, PVMATRIX_CACHE=str(tmp_path / "cache"))
    if command == "build":
        args = ["build", f"dir:{tree}", "--toolchain", "bookworm-gcc12"]
    else:
        spec = tmp_path / "slow.toml"
        spec.write_text('[matrix]\nname = "slow"\nroles = []\nhardware = ["default"]\n'
                        f'[[kernel]]\nname = "slow"\nsource = "dir:{tree}"\n'
                        'base = "tinyconfig"\ntoolchain = "bookworm-gcc12"\n')
        args = ["run", str(spec), "--results", str(tmp_path / "results")]
    child = subprocess.Popen([sys.executable, "-m", "pvmatrix.cli", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=interruptible)
    ours = {"label": f"{container.LABEL}"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list((tmp_path / "cache/warm").glob("*/build.log"))
        if logs and "compiling" in logs[0].read_text():
            break
        time.sleep(0.5)
    else:
        child.kill()
        pytest.fail("the slow build never started")
    work = str(logs[0].parent)
    child.send_signal(getattr(signal, signame))
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    assert err.strip().splitlines()[-1] == "pvmatrix: interrupted"
    left = [c for c in engine.client().containers.list(all=True, filters=ours)
            if c.labels.get(container.LABEL) == work]
    assert left == []
    # the interrupted build's tree is kept, marked dirty: its next user starts it empty
    assert os.path.exists(os.path.join(work, ".pvm-dirty"))


REUSE = ("if [ -e $(O)/obj.o ]; then echo reused-object; else echo compiled-object; "
         "touch $(O)/obj.o; fi; mkdir -p $(O)/arch/x86/boot; echo $$RANDOM > $(O)/arch/x86/boot/bzImage; "
         "cp $(O)/arch/x86/boot/bzImage $(O)/vmlinux; touch $(O)/System.map")


@pytest.mark.slow
def test_a_variant_reuses_the_warm_tree_and_a_dirty_one_starts_empty(private_cache, tmp_path,
                                                                        debian_61):
    tree = fake_tree(tmp_path / "warm", debian_61, REUSE)
    frag = tmp_path / "variant.config"
    frag.write_text("CONFIG_PVMATRIX_VARIANT=y\n")
    first = build.build(f"dir:{tree}", "tinyconfig", [], toolchain="bookworm-gcc12")
    assert "compiled-object" in (first.dir / "build.log").read_text()
    variant = build.build(f"dir:{tree}", "tinyconfig", [str(frag)], toolchain="bookworm-gcc12")
    assert "reused-object" in (variant.dir / "build.log").read_text()
    slots = sorted(d for d in (private_cache / "warm").iterdir() if d.is_dir())
    assert len(slots) == 2, "the variant should build in a copy, keeping the first tree"
    for slot in slots:                    # a build that did not end cleanly...
        (slot / ".pvm-dirty").touch()
    frag.write_text("CONFIG_PVMATRIX_VARIANT=m\n")
    third = build.build(f"dir:{tree}", "tinyconfig", [str(frag)], toolchain="bookworm-gcc12")
    assert "compiled-object" in (third.dir / "build.log").read_text()   # ...is not trusted
