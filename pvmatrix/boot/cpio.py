"""Writing initramfs archives (cpio "newc"), in plain Python.

No root, no host cpio: entries are added with the mode and owner they must
have in the guest. Several gzip'd archives concatenated make one initramfs,
which is how the dom0 userspace and a boot's own files are combined.
"""

from __future__ import annotations

import gzip
import stat
import tarfile
from pathlib import Path
from contextlib import contextmanager
from typing import BinaryIO, Iterator

TRAILER = "TRAILER!!!"


class Writer:
    """A newc archive being written to a binary stream."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", uid: int = 0, gid: int = 0,
               mtime: int = 0, nlink: int = 1) -> None:
        name = name.strip("/") or "."
        fields = [self.ino, mode, uid, gid, nlink, mtime, len(data), 0, 0, 0, 0,
                  len(name) + 1, 0]
        self.ino += 1
        head = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(head + name.encode() + b"\0")
        self.out.write(b"\0" * (-(len(head) + len(name) + 1) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def parents(self, name: str) -> None:
        """Directory entries for NAME's parents not written yet (0755 root)."""
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, name: str, mode: int = 0o755) -> None:
        name = name.strip("/")
        if name in self.dirs:
            return
        self.parents(name)
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.parents(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def copy(self, name: str, src: Path, mode: int | None = None) -> None:
        self.file(name, Path(src).read_bytes(), mode if mode is not None else src.stat().st_mode & 0o7777)

    def symlink(self, name: str, target: str) -> None:
        self.parents(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def close(self) -> None:
        self._entry(TRAILER, 0)


def from_tar(tar_path: Path, out: BinaryIO, skip: tuple[str, ...] = ()) -> int:
    """Convert a tar (e.g. a container export) to newc; returns the entry count.

    Hard links become copies; device nodes are dropped (devtmpfs provides them).
    """
    w = Writer(out)
    count = 0
    with tarfile.open(tar_path) as tf:
        for m in tf:
            name = m.name.removeprefix("./").strip("/")
            if not name or any(name == s or name.startswith(s + "/") for s in skip):
                continue
            perm = m.mode & 0o7777
            if m.isdir():
                w.dirs.add(name)
                w._entry(name, stat.S_IFDIR | perm, uid=m.uid, gid=m.gid, nlink=2)
            elif m.issym():
                w._entry(name, stat.S_IFLNK | 0o777, m.linkname.encode(), uid=m.uid, gid=m.gid)
            elif m.isreg() or m.islnk():
                fh = tf.extractfile(m)
                w._entry(name, stat.S_IFREG | perm, fh.read() if fh else b"", uid=m.uid, gid=m.gid)
            else:
                continue
            count += 1
    w.close()
    return count


@contextmanager
def gzip_writer(path: Path, level: int = 1) -> Iterator[gzip.GzipFile]:
    """A gzip stream for an archive (level 1: the guest unpacks it, under TCG)."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                compresslevel=level, mtime=0) as gz:
        yield gz


@contextmanager
def plain_writer(path: Path) -> Iterator[BinaryIO]:
    """An uncompressed archive: under TCG the guest kernel copies it far faster
    than it inflates a gzip'd one (and QEMU/Xen move modules at memcpy speed)."""
    with open(path, "wb") as raw:
        yield raw


def concat(parts: list[Path], dest: Path) -> Path:
    """Concatenate archives (each compressed or not) into one initramfs file."""
    with open(dest, "wb") as out:
        for p in parts:
            with open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    out.write(chunk)
    return dest
