"""The content-addressed artifact store, at any fsspec URL.

Where: `--store URL`, else `$PVMATRIX_STORE`, else the local directory
`$PVMATRIX_CACHE/artifacts` (the default: nothing is copied). URL forms:

- a plain path or `file:///path`: a local or shared (NFS, ...) directory;
- `s3://bucket/prefix`: any S3-compatible service. The endpoint comes from
  `$PVMATRIX_S3_ENDPOINT`, else `$AWS_ENDPOINT_URL`, else AWS; credentials
  and region from the usual AWS variables (`AWS_ACCESS_KEY_ID`, ...);
- any other fsspec URL (`sftp://`, `gcs://`, ... with its fsspec package).

Layout: `ROOT/KEY/manifest.json` names a published artifact. The manifest
holds the build's facts and a `files` table: every file's relative path with
its sha256 and size (a symlink with its target). Every file is hashed,
vmlinux and modules too: once per build, a fraction of a second for these
kernels. A local store's cache hit reads only the manifest; a remote
artifact is checked file by file when it is fetched.

Publish rule: a key exists only once its `KEY/manifest.json` exists, and the
manifest is written last, after every file it lists. Readers trust nothing
else: files under a key without a manifest (an interrupted upload) are never
seen. Writers never write files in place under final names:

- local directories: the files go into `ROOT/.KEY-RANDOM/`, the manifest
  last, then one rename publishes the directory as `ROOT/KEY` (today's layout;
  a second writer's rename fails and it drops its copy);
- elsewhere (no atomic rename): each writer uploads its files under its own
  `ROOT/KEY/d-RANDOM/` and then writes `KEY/manifest.json` (field `data`
  names that directory). On S3 the manifest is written with `If-None-Match`
  (exclusive create), so of two concurrent writers one wins and the other
  deletes its upload. Where a service ignores or rejects the condition
  (and on other fsspec backends) a writer checks, then writes: in a race the
  last manifest wins and still points at its own complete upload.

Consumers that need local files `fetch` a remote artifact by key into
`$PVMATRIX_CACHE/fetched/KEY`: once (kept while its manifest matches),
every file checked against the manifest's size and sha256, then renamed
into place whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from urllib.parse import urlparse

from .digest import sha256_file
from . import settings
from .errors import HarnessFault, NotSupported, PvmError, UserError, disk
from .paths import cache_dir, partial_dir

MANIFEST = "manifest.json"
KEY = re.compile(r"^[0-9a-f]{16,128}$")


def digest_tree(root: Path) -> dict[str, dict]:
    """Every file under ROOT (but the manifest) -> {sha256, size}; a symlink -> {link}."""
    files: dict[str, dict] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(filenames) + [d for d in sorted(dirnames) if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST:
                continue
            if path.is_symlink():
                files[rel] = {"link": os.readlink(path)}
            else:
                files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return dict(sorted(files.items()))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _local_path(url: str) -> Path | None:
    """The directory of a plain path or file:// URL, else None."""
    if "://" not in url:
        return Path(url).expanduser().absolute()
    parsed = urlparse(url)
    if parsed.scheme in ("file", "local"):
        return Path(parsed.path).absolute()
    return None


def store_url(url: str | None = None) -> str:
    """The store to use: URL, else the settings' (--store, $PVMATRIX_STORE), else
    $PVMATRIX_CACHE/artifacts."""
    return url or settings.current().store or str(cache_dir("artifacts"))


def s3_endpoint() -> str | None:
    return settings.current().s3_endpoint


class Store:
    """An artifact store at URL (see the module docstring for the layout and publish rule)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/") or url
        self.endpoint: str | None = None
        self.local = _local_path(url)
        if self.local is not None:
            self.fs, self.root = None, str(self.local)
            return
        import fsspec
        protocol = urlparse(url).scheme
        options: dict = {}
        if protocol in ("s3", "s3a"):
            self.endpoint = s3_endpoint()
            options = {"use_listings_cache": False, "skip_instance_cache": True,
                       "config_kwargs": {"connect_timeout": 5, "read_timeout": 60,
                                         "retries": {"max_attempts": 2, "mode": "standard"}}}
            if self.endpoint:
                options["client_kwargs"] = {"endpoint_url": self.endpoint}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise NotSupported(f"artifact store {url}: its fsspec backend is not installed "
                               f"({_one_line(exc)}; for s3:// install pvmatrix[s3])") from None
        except Exception as exc:
            raise UserError(f"artifact store {url}: not a usable URL ({_one_line(exc)})") from None
        self.root = self.root.rstrip("/")
        if hasattr(self.fs, "retries"):
            self.fs.retries = 2                            # s3fs's own retries, on top of botocore's
        self.exclusive = protocol in ("s3", "s3a")

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def where(self) -> str:
        return f"artifact store {self.url}" + (f" (endpoint {self.endpoint})" if self.endpoint else "")

    def _fail(self, what: str, exc: BaseException) -> HarnessFault:
        return HarnessFault(f"{self.where}: {what} failed: {_one_line(exc)}")

    def _remote(self, key: str, *parts: str) -> str:
        return "/".join([self.root, key, *[p for p in parts if p]])

    def url_of(self, key: str) -> str:
        """Where the artifact KEY lives (a directory or URL prefix)."""
        return artifact_url(self.url, key)

    def local_dir(self, key: str) -> Path:
        """Where KEY's files are on this host: in the store itself when it is
        local, else in the fetch cache (present after `fetch`)."""
        _check_key(key)
        return self.local / key if self.local else cache_dir("fetched") / key

    def check(self) -> None:
        """Fail now, with one line naming the URL, if the store cannot be read."""
        if self.local:
            try:
                self.local.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._fail("creating its directory", exc) from None
            return
        try:
            self.fs.cat_file(self._remote("0" * 64, MANIFEST))   # a key never published
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._fail("reading", exc) from None
        bucket = self.root.split("/")[0]
        if self.exclusive and not self.fs.exists(bucket):
            raise UserError(f"{self.where}: bucket {bucket} does not exist or is not readable")

    # -- reading ----------------------------------------------------------

    def load(self, key: str) -> dict | None:
        """KEY's published manifest (with its `manifest_sha256`), or None if unpublished."""
        raw = self._manifest_bytes(key)
        return None if raw is None else _parse(raw, f"{self.url_of(key)}/{MANIFEST}")

    def _manifest_bytes(self, key: str) -> bytes | None:
        _check_key(key)
        try:
            if self.local:
                raw = (self.local / key / MANIFEST).read_bytes()
            else:
                raw = self.fs.cat_file(self._remote(key, MANIFEST))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._fail(f"reading the manifest of {key}", exc) from None
        return raw

    def fetch(self, key: str, manifest_sha256: str | None = None) -> Path:
        """A local directory holding KEY's files, verified by its manifest.

        A remote artifact is downloaded once into the fetch cache; a copy
        already there is reused while its manifest is the wanted one."""
        dest = self.local_dir(key)
        if self.local:
            if not (dest / MANIFEST).exists():
                raise HarnessFault(f"{self.where}: no artifact {key} (no {MANIFEST})")
            return dest
        have = _read_manifest(dest)
        if have and manifest_sha256 and have["manifest_sha256"] == manifest_sha256:
            return dest
        raw = self._manifest_bytes(key)
        if raw is None:
            raise HarnessFault(f"{self.where}: no artifact {key} (no {MANIFEST})")
        want = _parse(raw, f"{self.url_of(key)}/{MANIFEST}")
        if manifest_sha256 and want["manifest_sha256"] != manifest_sha256:
            raise HarnessFault(f"{self.where}: the manifest of {key} is not the one expected "
                               f"(sha256 {want['manifest_sha256'][:16]}, wanted {manifest_sha256[:16]})")
        if have and have["manifest_sha256"] == want["manifest_sha256"]:
            return dest
        tmp = partial_dir(dest.parent, key)       # renamed into place whole, or removed
        try:
            tmp.chmod(0o755)
            remote, local = [], []
            for rel, entry in want["files"].items():
                target = tmp / _safe(rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                if "link" in entry:
                    os.symlink(entry["link"], target)
                else:
                    remote.append(self._remote(key, want.get("data", ""), rel))
                    local.append(str(target))
            try:
                if remote:
                    with disk(dest.parent):
                        self.fs.get(remote, local)         # concurrent where the backend is async
            except PvmError:
                raise
            except Exception as exc:
                raise self._fail(f"fetching {key}", exc) from None
            for rel, entry in want["files"].items():
                if "link" in entry:
                    continue
                target = tmp / rel
                got = sha256_file(target) if target.is_file() else "(missing)"
                if got != entry["sha256"] or target.stat().st_size != entry["size"]:
                    raise HarnessFault(f"{self.where}: {key}/{rel} does not match its manifest "
                                       f"(sha256 {got[:16]}, manifest {entry['sha256'][:16]})")
            with disk(dest.parent):
                (tmp / MANIFEST).write_bytes(raw)
            _install(tmp, dest, want["manifest_sha256"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    # -- writing ----------------------------------------------------------

    def stage(self, key: str) -> Path:
        """A fresh local directory to put KEY's files in before `publish`: in the
        store itself when it is local (so publishing is one rename), else in the
        fetch cache (so the builder keeps its copy without fetching it back)."""
        parent = self.local_dir(key).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = partial_dir(parent, key)
        except OSError as exc:
            raise HarnessFault(f"{self.where}: cannot stage {key} in {parent}: {_one_line(exc)}") from None
        tmp.chmod(0o755)
        return tmp

    def publish(self, key: str, staged: Path, meta: dict) -> dict:
        """Publish the files in STAGED (from `stage`) as KEY, with META and the
        files' digests as its manifest; returns the manifest now published
        (another writer's, if it published KEY first). STAGED is consumed."""
        _check_key(key)
        manifest = {**meta, "files": digest_tree(staged), "store": self.url}
        try:
            if self.local:
                return self._publish_local(key, staged, json.dumps(manifest, indent=2).encode())
            return self._publish_remote(key, staged, manifest)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def _publish_local(self, key: str, staged: Path, raw: bytes) -> dict:
        with disk(staged.parent):
            (staged / MANIFEST).write_bytes(raw)
        published = _install(staged, self.local / key, None)
        return _parse((published / MANIFEST).read_bytes(), str(published / MANIFEST))

    def _publish_remote(self, key: str, staged: Path, manifest: dict) -> dict:
        if (theirs := self.load(key)) is not None:
            return theirs                                  # already published
        data = f"d-{secrets.token_hex(8)}"
        manifest["data"] = data
        raw = json.dumps(manifest, indent=2).encode()
        names = [rel for rel, entry in manifest["files"].items() if "sha256" in entry]
        try:                                               # concurrent where the backend is async
            self.fs.put([str(staged / rel) for rel in names], [self._remote(key, data, rel) for rel in names])
        except Exception as exc:
            self._discard(key, data)
            raise self._fail(f"uploading {key}", exc) from None
        try:
            won = self._write_manifest(key, raw)
        except Exception as exc:
            self._discard(key, data)
            raise self._fail(f"publishing {key}", exc) from None
        if not won:
            self._discard(key, data)
            if (theirs := self.load(key)) is None:
                raise HarnessFault(f"{self.where}: {key} was published and then vanished")
            return theirs
        (staged / MANIFEST).write_bytes(raw)              # keep the builder's copy
        mine = _parse(raw, self._remote(key, MANIFEST))
        _install(staged, self.local_dir(key), mine["manifest_sha256"])
        return mine

    def _write_manifest(self, key: str, raw: bytes) -> bool:
        """Write KEY's manifest unless there is one; False if another writer's is there."""
        path = self._remote(key, MANIFEST)
        if self.exclusive:
            try:
                self.fs.pipe_file(path, raw, mode="create")   # S3 If-None-Match: *
                return True
            except FileExistsError:
                return False
            except Exception:
                pass              # a service without conditional writes: check, then write
        if self.fs.exists(path):
            return False
        self.fs.pipe_file(path, raw)
        return True

    def _discard(self, key: str, data: str) -> None:
        try:
            self.fs.rm(self._remote(key, data), recursive=True)
        except Exception:
            pass                                           # an orphan upload is never read


_STORES: dict[tuple, Store] = {}


def open_store(url: str | None = None) -> Store:
    """The Store at URL (default: `store_url()`), one object per URL and endpoint."""
    url = store_url(url)
    ident = (url, s3_endpoint())
    if ident not in _STORES:
        _STORES[ident] = Store(url)
    return _STORES[ident]


def artifact_url(url: str, key: str) -> str:
    """Where the artifact KEY of the store at URL lives (a directory or URL prefix)."""
    local = _local_path(url)
    return str(local / key) if local else f"{url.rstrip('/')}/{key}"


def localize(manifest: dict, path: str) -> str:
    """PATH of a build task's manifest made usable on this host: a kernel in a
    remote store is fetched (once) into the local fetch cache by its key."""
    url = manifest.get("store")
    if not url or _local_path(url) is not None:
        return path
    return str(open_store(url).fetch(manifest["key"], manifest.get("manifest_sha256")))


def _check_key(key: str) -> None:
    if not KEY.match(key):
        raise HarnessFault(f"not an artifact key: {key!r}")


def _safe(rel: str) -> str:
    if rel.startswith("/") or ".." in rel.split("/"):
        raise HarnessFault(f"artifact manifest names a file outside its artifact: {rel!r}")
    return rel


def _parse(raw: bytes, where: str) -> dict:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise HarnessFault(f"artifact manifest {where} is not JSON: {exc}") from None
    data["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
    return data


def _read_manifest(directory: Path) -> dict | None:
    try:
        return _parse((directory / MANIFEST).read_bytes(), str(directory / MANIFEST))
    except (FileNotFoundError, PvmError):
        return None


def _install(tmp: Path, dest: Path, manifest_sha256: str | None) -> Path:
    """Rename the complete directory TMP to DEST. If DEST exists already with
    a manifest (another writer, or the same artifact fetched before) and
    MANIFEST_SHA256 is None or matches, it stays and TMP is dropped; a DEST
    without a manifest or with another manifest is replaced."""
    for _ in range(3):
        try:
            os.rename(tmp, dest)
            return dest
        except OSError:
            have = _read_manifest(dest)
            if have and (manifest_sha256 is None or have["manifest_sha256"] == manifest_sha256):
                shutil.rmtree(tmp, ignore_errors=True)
                return dest
            old = dest.with_name(f".{dest.name}-old-{secrets.token_hex(4)}")
            try:
                os.rename(dest, old)
            except OSError:
                continue                                   # gone meanwhile: try again
            shutil.rmtree(old, ignore_errors=True)
    raise HarnessFault(f"cannot put {tmp} in place as {dest}")
