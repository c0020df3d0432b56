"""Build containers without an engine: owner tokens and orphan reaping, the
watcher's wait, warm-slot locks against orphans, the unprivileged identity,
limits from a task's resources, and one ccache per trust domain."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pvmatrix.build import container, kbuild, owner, warm, watch
from pvmatrix.errors import UserError
from pvmatrix.matrix import plan, tasks
from pvmatrix.sources import Source


def dead_owner() -> owner.Owner:
    """The token of a process that ran and exited."""
    child = subprocess.Popen(["sleep", "0.2"])
    start = owner.start_time(child.pid)
    child.wait()
    here = owner.me()
    return owner.Owner(here.host, here.boot, child.pid, start)


def test_this_process_is_alive_and_an_exited_one_is_not():
    assert owner.me().alive() is True
    assert owner.Owner.parse(owner.me().token) == owner.me()
    assert dead_owner().alive() is False


def test_a_reused_pid_or_another_boot_is_dead_and_another_host_unknown():
    here = owner.me()
    assert owner.Owner(here.host, here.boot, here.pid, here.start + 1).alive() is False
    assert owner.Owner(here.host, "other-boot", here.pid, here.start).alive() is False
    assert owner.Owner("other-host", here.boot, here.pid, here.start).alive() is None


class FakeContainer:
    def __init__(self, labels: dict[str, str]):
        self.id, self.labels, self.removed = str(id(self)), labels, False

    def remove(self, force: bool = False) -> None:
        self.removed = True


class FakeContainers:
    def __init__(self, found: list[FakeContainer]):
        self.found = found

    def list(self, all: bool = False, filters: dict | None = None) -> list[FakeContainer]:
        key, _, value = filters["label"].partition("=")
        return [c for c in self.found if key in c.labels and (not value or c.labels[key] == value)]


class FakeClient:
    def __init__(self, found: list[FakeContainer]):
        self.containers = FakeContainers(found)


def test_reap_removes_only_containers_whose_owner_is_gone():
    here = owner.me()
    dead = FakeContainer({container.LABEL: "/w/a", owner.LABEL: dead_owner().token})
    live = FakeContainer({container.LABEL: "/w/b", owner.LABEL: here.token})
    remote = FakeContainer({container.LABEL: "/w/c", owner.LABEL: owner.Owner(
        "elsewhere", "b", 1, 1).token})
    old = FakeContainer({container.LABEL: "/w/d"})          # an older pvmatrix: no token
    client = FakeClient([dead, live, remote, old])
    assert container.reap(client) == [dead.id]
    assert [c.removed for c in (dead, live, remote, old)] == [True, False, False, False]


def test_reap_of_one_output_directory():
    a = FakeContainer({container.LABEL: "/w/a", owner.LABEL: dead_owner().token})
    b = FakeContainer({container.LABEL: "/w/b", owner.LABEL: dead_owner().token})
    assert container.reap(FakeClient([a, b]), Path("/w/b")) == [b.id]
    assert not a.removed


def test_stop_writers_removes_any_container_on_a_locked_slot(monkeypatch):
    """The caller holds the slot's lock: whatever still writes to it is an
    orphan, token or not."""
    mine = FakeContainer({container.LABEL: "/w/slot"})
    other = FakeContainer({container.LABEL: "/w/else"})
    monkeypatch.setattr(container.engine, "client", lambda: FakeClient([mine, other]))
    assert container.stop_writers(Path("/w/slot")) == 1
    assert mine.removed and not other.removed


def test_the_watcher_returns_when_its_pipe_closes():
    read, write = os.pipe()
    os.close(write)
    start = time.monotonic()
    watch.wait_for_death(read, owner.me(), poll_s=5)
    assert time.monotonic() - start < 1


def test_the_watcher_returns_when_its_owner_dies_with_the_pipe_still_open():
    read, write = os.pipe()              # a forked child kept the write end
    start = time.monotonic()
    watch.wait_for_death(read, dead_owner(), poll_s=0.1)
    assert time.monotonic() - start < 2
    os.close(write)


def test_the_watcher_sweeps_its_owners_containers_only():
    token = dead_owner().token
    ours = FakeContainer({owner.LABEL: token})
    theirs = FakeContainer({owner.LABEL: owner.me().token})
    assert watch.sweep(FakeClient([ours, theirs]), token) == 1
    assert ours.removed and not theirs.removed


def slot_with_orphan(root: Path) -> Path:
    slot = root / "p-0"
    slot.mkdir(parents=True)
    (slot / "half-written.o").write_text("x")
    return slot


def test_a_slot_an_orphan_wrote_to_is_emptied_before_use(tmp_path):
    slot = slot_with_orphan(tmp_path)
    stopped: list[Path] = []
    lock, got = warm._pick(tmp_path, [slot], lambda d: stopped.append(d) or 1)
    assert got == slot and stopped == [slot]
    assert list(slot.iterdir()) == [], "an orphan's objects were trusted"
    lock.close()


def test_a_slot_without_writers_keeps_its_objects(tmp_path):
    slot = slot_with_orphan(tmp_path)
    lock, got = warm._pick(tmp_path, [slot], lambda d: 0)
    assert (got / "half-written.o").exists()
    lock.close()


def test_a_slot_locked_by_a_live_process_is_never_handed_out(tmp_path):
    slot = slot_with_orphan(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
        "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"),
        str(tmp_path / "p-0.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        called: list[Path] = []
        assert warm._pick(tmp_path, [slot], lambda d: called.append(d) or 0) == (None, None)
        assert called == [], "a live holder's writers must not be touched"
    finally:
        holder.kill()
        holder.wait()
    lock, got = warm._pick(tmp_path, [slot], lambda d: 0)   # its lock died with it
    assert got == slot
    lock.close()


def test_identity_is_never_root():
    podman = container.identity(podman=True, uid=0, gid=0)
    host = container.USERNS_BASE + container.BUILD_ID
    assert podman.user == "1000:1000" and podman.owner == (host, host)
    assert podman.userns == (f"auto:uidmapping=0:{container.USERNS_BASE}:65536,"
                             f"gidmapping=0:{container.USERNS_BASE}:65536")
    docker = container.identity(podman=False, uid=0, gid=0)
    assert docker.user == f"{host}:{host}" and docker.userns is None
    user = container.identity(podman=True, uid=1234, gid=99)
    assert user == container.Identity("1234:99", (1234, 99), "keep-id")


def test_limits_come_from_the_declared_resources():
    cpus = os.cpu_count() or 1
    limits = container.Limits.of(plan.RESOURCES["build"])
    assert limits.cpus == min(2, cpus) and limits.mem_gib == 4
    assert limits.host_config() == {"nano_cpus": int(limits.cpus * 1e9), "mem_limit": "4096m",
                                    "pids_limit": container.PIDS}
    assert container.Limits.of({"CPU": 1000, "MEM": 1}).cpus == cpus   # never above the machine
    assert container.Limits.for_jobs(1) == container.Limits(1.0, 2.0)


def test_a_build_task_passes_its_resources_as_limits(monkeypatch, private_cache):
    from tests.unit.test_errors import SOURCE, build_task
    seen = {}

    def fake_build(*args, **kw):
        seen.update(kw)
        raise UserError("stop here")
    monkeypatch.setattr(tasks.builder, "build", fake_build)
    task = {**build_task(recheck=True), "resources": {"CPU": 1, "MEM": 3}}
    tasks.build(task, SOURCE)
    assert seen["limits"] == container.Limits(1.0, 3.0)


def test_task_payload_carries_its_resources():
    from pvmatrix.matrix.cells import Task
    t = Task("build", "k", "build", {}, {}, [], {"CPU": 2, "MEM": 4})
    assert t.payload()["resources"] == {"CPU": 2, "MEM": 4}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_writable_mounts_are_given_to_the_build_user(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/f").write_text("x")
    who = container.Identity("1000:1000", (123456, 123457))
    container.own(tmp_path, who)
    for p in (tmp_path, tmp_path / "d", tmp_path / "d/f"):
        assert (p.stat().st_uid, p.stat().st_gid) == (123456, 123457)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_published_artifacts_are_taken_back_from_the_build_user(tmp_path):
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules/m.ko").write_text("x")
    os.chown(tmp_path / "modules/m.ko", 123456, 123456)
    kbuild._own_by_us(tmp_path)
    assert (tmp_path / "modules/m.ko").stat().st_uid == 0


def test_ccache_is_per_trust_domain(private_cache, tmp_path):
    def src(spec: str, kind: str, identity: str, tree: str = "/t") -> Path:
        return kbuild.ccache_dir(Source(spec, kind, identity, Path(tree)))

    # a repository's commits (a bisection) share one cache; another repository does not
    assert src("git:/r/linux@v6.1", "git", "git:a") == src("git:/r/linux@abc", "git", "git:b")
    assert src("git:/r/linux@v6.1", "git", "git:a") != src("git:/r/fork@v6.1", "git", "git:a")
    # a directory keeps its cache across edits; each tarball's content is its own
    assert src("dir:/k", "dir", "sha256:1", "/k") == src("dir:/k", "dir", "sha256:2", "/k")
    assert src("tarball:/a", "tarball", "sha256:1") != src("tarball:/b", "tarball", "sha256:2")
    assert src("dir:/k", "dir", "sha256:1", "/k") != src("dir:/j", "dir", "sha256:1", "/j")
    # Debian's archive is one domain, and no user tree writes into it
    debian = src("debian:linux-source-6.1", "debian", "sha256:1")
    assert debian == src("debian:linux-source-6.12@trixie", "debian", "sha256:9")
    assert debian != src("tarball:/x", "tarball", "sha256:1")
    assert debian.parent == private_cache / "ccache" and debian.is_dir()


def test_a_private_tree_is_refused_and_a_cache_tree_opened(private_cache, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    mine.chmod(0o700)
    if os.geteuid() == 0:
        with pytest.raises(UserError, match="not readable by others.*chmod -R o\\+rX"):
            kbuild._readable(Source(f"dir:{mine}", "dir", "sha256:1", mine))
    cached = private_cache / "trees" / "sha256-1"
    cached.mkdir(parents=True)
    cached.chmod(0o700)
    kbuild._readable(Source("tarball:/x", "tarball", "sha256:1", cached))
    assert cached.stat().st_mode & 0o005 == 0o005
