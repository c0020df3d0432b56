"""The initramfs writer, checked with the system's own cpio (GNU cpio)."""

from __future__ import annotations

import io
import subprocess
import tarfile

from pvmatrix.boot import cpio


def _list(path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        import gzip
        data = gzip.decompress(data)
    return subprocess.run(["cpio", "-itv", "--quiet"], input=data, capture_output=True,
                          check=True).stdout.decode()


def test_writer_entries_as_cpio_reads_them(tmp_path):
    out = tmp_path / "a.cpio.gz"
    with cpio.gzip_writer(out) as gz:
        w = cpio.Writer(gz)
        w.file("pvm/bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
        w.symlink("pvm/bin/sh", "busybox")
        w.close()
    listing = _list(out)
    assert "drwxr-xr-x" in listing and " pvm/bin\n" in listing
    assert "-rwxr-xr-x" in listing and "pvm/bin/tool" in listing
    assert "pvm/bin/sh -> busybox" in listing


def test_tar_to_cpio_keeps_hardlinks_and_symlinks_drops_devices(tmp_path):
    tar = tmp_path / "root.tar"
    with tarfile.open(tar, "w") as tf:
        for name, kind, data, link in (("./usr", tarfile.DIRTYPE, b"", ""),
                                        ("./usr/bin", tarfile.DIRTYPE, b"", ""),
                                        ("./usr/bin/a", tarfile.REGTYPE, b"AAAA", ""),
                                        ("./usr/bin/b", tarfile.LNKTYPE, b"", "./usr/bin/a"),
                                        ("./lib", tarfile.SYMTYPE, b"", "usr/lib"),
                                        ("./.hidden", tarfile.REGTYPE, b"x", ""),
                                        ("./dev/null", tarfile.CHRTYPE, b"", "")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o755
            tf.addfile(info, io.BytesIO(data) if data else None)
    out = tmp_path / "root.cpio"
    with cpio.plain_writer(out) as fh:
        count = cpio.from_tar(tar, fh, skip=("dev",))
    assert count == 6
    listing = _list(out)
    assert "lib -> usr/lib" in listing and ".hidden" in listing and "dev/null" not in listing
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], input=out.read_bytes(), cwd=extract, check=True)
    assert (extract / "usr/bin/b").read_bytes() == b"AAAA"


def test_concatenated_archives_are_one_stream(tmp_path):
    parts = []
    for i in range(2):
        p = tmp_path / f"p{i}.cpio"
        with cpio.plain_writer(p) as fh:
            w = cpio.Writer(fh)
            w.file(f"f{i}", b"%d" % i)
            w.close()
        parts.append(p)
    both = cpio.concat(parts, tmp_path / "both.cpio")
    assert both.stat().st_size == sum(p.stat().st_size for p in parts)
    # GNU cpio stops at the first trailer; the kernel goes on: check the second is whole
    second = both.read_bytes()[parts[0].stat().st_size:]
    assert second.startswith(b"070701") and b"TRAILER!!!" in second
