"""The artifact store (pvmatrix/artifacts.py) on a local directory and on a
real S3-compatible server (moto's, on 127.0.0.1), and the builder's
publish/load path through it. No kernel is built: artifacts are real files
from an earlier build when the cache has one, else files made here."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from conftest import free_port
from pvmatrix import artifacts, build
from pvmatrix.build import kbuild
from pvmatrix.errors import PvmError

REAL_CACHE = Path(os.environ.get("PVMATRIX_CACHE") or Path.home() / ".cache" / "pvmatrix")
KEY = "a1" * 32


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def cache(private_cache, monkeypatch):
    monkeypatch.delenv("PVMATRIX_STORE", raising=False)
    return private_cache


@pytest.fixture
def s3_url(moto_endpoint, monkeypatch, request):
    import boto3
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("PVMATRIX_S3_ENDPOINT", moto_endpoint)):
        monkeypatch.setenv(name, value)
    bucket = "pvm-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/artifacts"


@pytest.fixture(params=["file", "s3"])
def store_url(request, cache, tmp_path):
    if request.param == "file":
        return f"file://{tmp_path / 'shared' / 'artifacts'}"
    return request.getfixturevalue("s3_url")


def _real(name: str) -> bytes | None:
    for manifest in sorted(REAL_CACHE.glob("artifacts/*/manifest.json")):
        path = manifest.parent / name
        if path.is_file() and path.stat().st_size < 8 << 20:
            return path.read_bytes()
    return None


def make_artifact(where: Path, log: str = "build log\n") -> dict[str, bytes]:
    """A build's files as the builder stages them; returns relative path -> bytes."""
    files = {
        "bzImage": _real("bzImage") or b"MZ" + os.urandom(300_000),
        "vmlinux": b"\x7fELF" + os.urandom(200_000),
        "config": _real("config") or b"CONFIG_XEN=y\nCONFIG_XEN_PV=y\n# CONFIG_NVME is not set\n",
        "System.map": _real("System.map") or b"ffffffff81000000 T _text\n",
        "build.log": log.encode(),
        "modules/lib/modules/6.1.0/modules.dep": b"kernel/drivers/net/e1000e.ko:\n",
        "modules/lib/modules/6.1.0/kernel/drivers/net/e1000e.ko": b"\x7fELF" + os.urandom(5000),
    }
    for rel, data in files.items():
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_bytes(data)
    os.symlink("/out", where / "modules/lib/modules/6.1.0/build")   # as modules_install leaves it
    return files


def assert_same(directory: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (directory / rel).read_bytes() == data, rel
    assert os.readlink(directory / "modules/lib/modules/6.1.0/build") == "/out"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the store API ------------------------------------------------------------

def test_publish_and_load_roundtrip(store_url):
    store = artifacts.Store(store_url)
    store.check()
    assert store.load(KEY) is None
    staged = store.stage(KEY)
    files = make_artifact(staged)
    published = store.publish(KEY, staged, {"key": KEY, "version": "6.1.0"})
    assert not staged.exists()

    loaded = artifacts.Store(store_url).load(KEY)          # a reader of its own
    assert loaded == published
    assert loaded["version"] == "6.1.0" and loaded["store"] == store.url
    for rel, data in files.items():
        assert loaded["files"][rel] == {"sha256": sha(data), "size": len(data)}
    assert loaded["files"]["modules/lib/modules/6.1.0/build"] == {"link": "/out"}
    assert_same(store.fetch(KEY, loaded["manifest_sha256"]), files)
    if store.local:      # published by one rename: today's layout, nothing left beside it
        assert store.local_dir(KEY) == store.local / KEY and (store.local / KEY / "bzImage").exists()
        assert sorted(p.name for p in store.local.iterdir()) == [KEY]
    else:
        top = sorted(p.rsplit("/", 1)[1] for p in store.fs.ls(f"{store.root}/{KEY}", detail=False))
        assert top == [loaded["data"], "manifest.json"]


def test_unpublished_key_is_not_seen(store_url):
    """An interrupted writer leaves files but no manifest: the key does not exist."""
    store = artifacts.Store(store_url)
    store.check()
    if store.local:
        leftover = store.local / KEY               # e.g. a copy that died half way
        leftover.mkdir(parents=True)
        (leftover / "bzImage").write_bytes(b"half")
        make_artifact(store.stage(KEY))            # and a writer killed before its rename
    else:
        store.fs.pipe_file(f"{store.root}/{KEY}/d-deadbeef/bzImage", b"half")
        store.fs.pipe_file(f"{store.root}/{KEY}/d-deadbeef/config", b"CONFIG_X=y\n")
    assert store.load(KEY) is None
    assert artifacts.Store(store_url).load(KEY) is None
    with pytest.raises(PvmError, match="no artifact"):
        store.fetch(KEY)

    staged = store.stage(KEY)
    files = make_artifact(staged)
    published = store.publish(KEY, staged, {"key": KEY})
    assert published["files"]["bzImage"]["sha256"] == sha(files["bzImage"])
    assert_same(store.fetch(KEY, published["manifest_sha256"]), files)


def test_concurrent_publish_leaves_one_valid_artifact(store_url):
    """Two writers of one key at once (different bytes: builds need not be
    reproducible): both end up with the same published manifest, which
    matches the files a reader fetches."""
    writers = [artifacts.Store(store_url), artifacts.Store(store_url)]
    staged = [w.stage(KEY) for w in writers]
    contents = [make_artifact(s, log=f"writer {i}\n" * 200_000) for i, s in enumerate(staged)]
    barrier, results, errors = threading.Barrier(2), [None, None], []

    def publish(i):
        try:
            barrier.wait()
            results[i] = writers[i].publish(KEY, staged[i], {"key": KEY, "writer": i})
        except Exception as exc:                   # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert results[0] == results[1]
    winner = results[0]["writer"]
    reader = artifacts.Store(store_url)
    assert reader.load(KEY) == results[0]
    if reader.local:
        assert sorted(p.name for p in reader.local.iterdir()) == [KEY]
        assert_same(reader.local / KEY, contents[winner])
    else:
        entries = reader.fs.ls(f"{reader.root}/{KEY}", detail=False)
        assert len([e for e in entries if e.rsplit("/", 1)[1].startswith("d-")]) == 1
        for d in [p for p in Path(artifacts.cache_dir("fetched")).iterdir()]:
            shutil.rmtree(d)                        # fetch from the store, not the writer's copy
        assert_same(reader.fetch(KEY, results[0]["manifest_sha256"]), contents[winner])


def test_fetch_of_a_remote_artifact(s3_url, cache, tmp_path, monkeypatch):
    """Another host fetches by key: identical bytes, fetched once, checked."""
    store = artifacts.Store(s3_url)
    staged = store.stage(KEY)
    files = make_artifact(staged)
    published = store.publish(KEY, staged, {"key": KEY})
    assert (store.local_dir(KEY) / "bzImage").exists()     # the writer keeps its copy

    monkeypatch.setenv("PVMATRIX_CACHE", str(tmp_path / "other-host"))
    other = artifacts.Store(s3_url)
    got = other.fetch(KEY, published["manifest_sha256"])
    assert got == tmp_path / "other-host" / "fetched" / KEY
    assert_same(got, files)
    assert json.loads((got / "manifest.json").read_bytes())["files"] == published["files"]
    inode = (got / "bzImage").stat().st_ino
    assert other.fetch(KEY) == got and (got / "bzImage").stat().st_ino == inode   # not again
    assert not [p for p in got.parent.iterdir() if p.name.startswith(".")]

    # bytes changed in the store behind the manifest's back: refused, nothing installed
    other.fs.pipe_file(f"{other.root}/{KEY}/{published['data']}/config", b"CONFIG_EVIL=y\n")
    monkeypatch.setenv("PVMATRIX_CACHE", str(tmp_path / "third-host"))
    with pytest.raises(PvmError, match=r"config does not match its manifest"):
        artifacts.Store(s3_url).fetch(KEY)
    assert not (tmp_path / "third-host" / "fetched" / KEY).exists()
    with pytest.raises(PvmError, match="not the one expected"):
        artifacts.Store(s3_url).fetch(KEY, "0" * 64)


def test_bad_url_and_unreachable_endpoint(cache, moto_endpoint, monkeypatch, capsys):
    with pytest.raises(PvmError) as err:
        artifacts.Store("nosuchproto://bucket/x")
    assert "nosuchproto://bucket/x" in str(err.value) and "\n" not in str(err.value)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("PVMATRIX_S3_ENDPOINT", moto_endpoint)
    with pytest.raises(PvmError, match=r"s3://no-such-bucket/a.*bucket no-such-bucket does not exist"):
        artifacts.Store("s3://no-such-bucket/a").check()

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PVMATRIX_S3_ENDPOINT", dead)
    for op in (lambda s: s.check(), lambda s: s.load(KEY)):
        with pytest.raises(PvmError) as err:
            op(artifacts.Store("s3://bucket/prefix"))
        text = str(err.value)
        assert text.startswith(f"artifact store s3://bucket/prefix (endpoint {dead})"), text
        assert "\n" not in text

    from pvmatrix import cli
    monkeypatch.delenv("PVMATRIX_STORE", raising=False)   # --store alone names the store
    assert cli.main(["build", "--store", "nosuchproto://x", "dir:/nonexistent"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "nosuchproto://x" in lines[0]


# -- the builder through the store ----------------------------------------------

def _work_dir(where: Path) -> dict[str, bytes]:
    """A finished build's output directory as _store finds it."""
    staged = make_artifact(where)
    names = {"bzImage": "arch/x86/boot/bzImage", "config": ".config", "modules": "_modules"}
    (where / "arch/x86/boot").mkdir(parents=True)
    for name, dest in names.items():
        os.rename(where / name, where / dest)
    return staged


def _built(key: str, directory: Path) -> build.Build:
    return build.Build(key=key, dir=directory, source="dir:/src", identity="sha256:00",
                       version="6.1.0", toolchain="bookworm-gcc12", image="img:tag",
                       base="tinyconfig", fragments=["boot", "xen-domu"], config_sha256="c" * 64,
                       unmet=[{"symbol": "XEN_FOO", "wanted": "y", "got": "n",
                               "fragment": "xen-domu", "reason": "no such option"}],
                       build_s=12.5, cpu_s=20.0)


def test_builder_default_store_is_zero_copy(cache, tmp_path):
    work = tmp_path / "work"
    files = _work_dir(work)
    inode = (work / "vmlinux").stat().st_ino
    b = kbuild._store(work, _built(KEY, cache / "artifacts" / KEY))
    assert b.dir == cache / "artifacts" / KEY and not b.cached
    assert (b.dir / "vmlinux").stat().st_ino == inode            # renamed, not copied
    assert sorted(p.name for p in b.dir.iterdir()) == [
        "System.map", "build.log", "bzImage", "config", "manifest.json", "modules", "vmlinux"]
    assert b.files["vmlinux"]["sha256"] == sha(files["vmlinux"])
    again = kbuild._load(KEY)
    assert again.cached and again.dir == b.dir and again.manifest() == b.manifest()
    brief = b.brief()
    assert artifacts.localize(brief, str(b.dir)) == str(b.dir)


def test_builder_loads_a_manifest_from_before_the_store(cache):
    """Artifacts published before digests existed stay valid."""
    old = {"key": KEY, "dir": "/elsewhere/artifacts/" + KEY, "source": "dir:/src",
           "identity": "sha256:00", "version": "6.1.0", "toolchain": "bookworm-gcc12",
           "image": "img:tag", "base": "tinyconfig", "fragments": [], "config_sha256": "c" * 64,
           "unmet": [], "build_s": 1.0, "cpu_s": 2.0}
    (cache / "artifacts" / KEY).mkdir(parents=True)
    (cache / "artifacts" / KEY / "manifest.json").write_text(json.dumps(old))
    b = kbuild._load(KEY)
    assert b.cached and b.dir == cache / "artifacts" / KEY and b.files == {} and b.store == ""


def test_builder_publishes_to_s3_and_another_host_loads_and_fetches(
        s3_url, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PVMATRIX_STORE", s3_url)
    work = tmp_path / "work"
    files = _work_dir(work)
    b = kbuild._store(work, _built(KEY, artifacts.open_store().local_dir(KEY)))
    assert b.store == s3_url and b.url == f"{s3_url}/{KEY}" and b.manifest_sha256
    assert b.files["bzImage"] == {"sha256": sha(files["bzImage"]), "size": len(files["bzImage"])}
    brief = b.brief()                       # what a build task returns through Dask
    assert set(brief["files"]) == {"bzImage", "vmlinux", "config", "System.map", "build.log"}
    assert brief["modules_files"] == 3 and len(json.dumps(brief)) < 4000

    monkeypatch.setenv("PVMATRIX_CACHE", str(tmp_path / "worker-2"))
    hit = kbuild._load(KEY)                  # from S3: the manifest only
    assert hit.cached and hit.unmet == b.unmet and hit.files == b.files
    assert hit.manifest_sha256 == b.manifest_sha256 and not hit.dir.exists()
    local = artifacts.localize({**brief, "kernel_path": str(b.dir)}, str(b.dir))
    assert local == str(tmp_path / "worker-2" / "fetched" / KEY)
    assert_same(Path(local), files)
    assert hit.fetch() == Path(local)
