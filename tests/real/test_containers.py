"""Build containers on the real engine. All but the last take seconds (small
scripts in the toolchain image): the build user, its limits, orphan reaping,
a warm slot's orphan writer, and the watcher after kill -9. The last one
kills a real `pvmatrix build` of Debian's 6.1 and builds again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEBIAN_61, REPO
from pvmatrix import catalog
from pvmatrix.build import container, engine, owner, toolchains, warm
from pvmatrix.paths import cache_dir

TOOLCHAIN = "bookworm-gcc12"


@pytest.fixture(scope="module")
def image() -> str:
    return toolchains.ensure_image(engine.client(), catalog.get("toolchain", TOOLCHAIN))


def mounts(root: Path) -> container.Mounts:
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "a.c").write_text("int f(void) { return 1; }\n")
    return container.Mounts(src, cache_dir("out"), cache_dir("ccache", "test"))


def sleeper(image: str, out: Path, token: str):
    """A container labelled as pvmatrix labels its own, owned by TOKEN."""
    return engine.client().containers.run(
        image, ["sleep", "300"], detach=True, network_mode="none",
        ulimits=engine.ulimits(), labels={container.LABEL: str(out), owner.LABEL: token})


def exists(c) -> bool:
    return any(x.id == c.id for x in engine.client().containers.list(all=True))


def dead_token() -> str:
    child = subprocess.Popen(["sleep", "0.1"])
    start = owner.start_time(child.pid)
    child.wait()
    here = owner.me()
    return owner.Owner(here.host, here.boot, child.pid, start).token


def test_the_build_user_is_unprivileged_and_limited(image, private_cache, tmp_path):
    m = mounts(tmp_path)
    log = tmp_path / "log"
    script = ("id -u; grep -E 'CapEff|NoNewPrivs' /proc/self/status; "
              "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max "
              "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; "
              "touch /out/o /ccache/c && echo writable; touch /src/s 2>/dev/null || echo src-ro")
    code = container.run(image, script, m, log, {}, limits=container.Limits(1, 1))
    lines = log.read_text().split()
    assert code == 0, log.read_text()
    assert lines[0] != "0", "the build ran as root"
    assert "0000000000000000" in lines and lines[lines.index("NoNewPrivs:") + 1] == "1"
    assert str(1 << 30) in lines, "no 1 GiB memory limit"
    assert str(container.PIDS) in lines, "no process limit"
    assert "writable" in lines and "src-ro" in lines
    assert m.out.stat().st_uid == container.identity(engine.is_podman()).owner[0]


def test_containers_of_a_dead_owner_are_reaped(image, private_cache):
    out = cache_dir("out")
    dead = sleeper(image, out, dead_token())
    live = sleeper(image, out, owner.me().token)
    try:
        assert dead.id in container.reap(engine.client())
        assert not exists(dead) and exists(live)
    finally:
        container._remove(live)
        container._remove(dead)


def test_a_warm_slot_is_taken_from_an_orphan_writer(image, private_cache, tmp_path):
    """An orphan without a token (an older pvmatrix's) on a slot whose lock is
    free: the slot's next user stops it and empties the slot."""
    root = cache_dir("warm")
    slot = root / "p-0"
    slot.mkdir()
    (slot / "half.o").write_text("x")
    orphan = engine.client().containers.run(
        image, ["sleep", "300"], detach=True, network_mode="none", ulimits=engine.ulimits(),
        labels={container.LABEL: str(slot)})
    try:
        lock, got = warm._pick(root, [slot], container.stop_writers)
        assert got == slot and not exists(orphan)
        assert not (slot / "half.o").exists()
        lock.close()
    finally:
        container._remove(orphan)


def test_kill_9_of_the_owner_removes_its_container(image, private_cache, tmp_path):
    """The watcher removes the container of a process killed with SIGKILL."""
    script = (
        "import sys; from pathlib import Path; from pvmatrix.build import container; "
        "from pvmatrix.paths import cache_dir; "
        "m = container.Mounts(Path(sys.argv[2]), cache_dir('out'), cache_dir('ccache', 't')); "
        "container.run(sys.argv[1], 'echo started; sleep 300', m, Path(sys.argv[3]), {})")
    log = tmp_path / "log"
    mounts(tmp_path)
    env = dict(os.environ, PVMATRIX_CACHE=str(private_cache),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", script, image, str(tmp_path / "src"), str(log)],
                             env=env)
    deadline = time.monotonic() + 60
    while not (log.exists() and "started" in log.read_text()):
        assert time.monotonic() < deadline and child.poll() is None, "the container never started"
        time.sleep(0.2)
    ours = {"label": f"{container.LABEL}={cache_dir('out')}"}
    assert len(engine.client().containers.list(filters=ours)) == 1
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 20
    while engine.client().containers.list(all=True, filters=ours):
        assert time.monotonic() < deadline, "the container outlived its killed owner"
        time.sleep(0.5)


@pytest.mark.slow
def test_kill_9_during_a_real_build_leaves_no_orphan_and_the_next_build_works(tmp_path):
    """kill -9 of `pvmatrix build` mid-compile: the container goes within seconds,
    and the next build of the same recipe takes the same warm tree, starts it
    empty, and builds a good kernel."""
    env = dict(os.environ, PVMATRIX_CACHE=str(tmp_path / "cache"))
    args = [sys.executable, "-m", "pvmatrix.cli", "build", DEBIAN_61, "--base", "tinyconfig",
            "-f", "boot", "--toolchain", TOOLCHAIN]
    child = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while True:
        logs = list((tmp_path / "cache/warm").glob("*/build.log"))
        if logs and logs[0].read_text(errors="replace").count("  CC ") > 50:
            break
        assert time.monotonic() < deadline and child.poll() is None, "the build never compiled"
        time.sleep(1)
    slot = logs[0].parent
    ours = {"label": f"{container.LABEL}={slot}"}
    assert engine.client().containers.list(filters=ours), "no build container on the slot"
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 20
    while engine.client().containers.list(all=True, filters=ours):
        assert time.monotonic() < deadline, "the build container outlived pvmatrix"
        time.sleep(0.5)
    assert (slot / ".pvm-dirty").exists()
    again = subprocess.run([*args, "--json"], env=env, cwd=REPO, capture_output=True, text=True,
                           timeout=3600)
    assert again.returncode == 0, again.stderr
    built = json.loads(again.stdout)
    kernel = Path(built["dir"]) / "bzImage"
    assert kernel.read_bytes()[0x202:0x206] == b"HdrS"
    assert kernel.stat().st_uid == os.geteuid(), "artifacts left to the build user"
