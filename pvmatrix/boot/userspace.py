"""dom0 userspace per Xen version: a container image exported to an initramfs.

The image (data/boot/dom0.Containerfile: the suite's xen-utils, busybox, kmod,
iproute2) is built with the docker SDK on the suite's bootstrapped base image,
then its filesystem is exported and turned into a newc archive (uncompressed:
see cpio.plain_writer). Both
are cached by the digest of the Containerfile as instantiated.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

from ..errors import HarnessFault
from ..paths import DATA, cache_dir
from . import cpio
from .xen import Xen
from ..build import engine, toolchains
from ..build.toolchains import base_tag
from ..digest import short as short_sha256

SKIP = ("dev", "proc", "sys", "run", "tmp")   # mounted by the init


def containerfile(xen: Xen, base: str, packages: tuple[str, ...] = ()) -> str:
    """The Containerfile as instantiated; PACKAGES (roles' dom0_packages) join the
    toolstack's install line, so without them the text, and so the image's
    digest, is the plain image's."""
    utils = " ".join([xen.utils, *packages])
    return (DATA / "boot" / "dom0.Containerfile").read_text().format(
        base=base, utils=utils, xen=xen.version)


def digest(text: str) -> str:
    """The content tag of an instantiated Containerfile (image tag and cpio name)."""
    return short_sha256(text)


def _say(msg: str) -> None:
    print(f"pvmatrix: {msg}", file=sys.stderr, flush=True)


def dom0_initramfs(xen: Xen, packages: tuple[str, ...] = ()) -> Path:
    """The cached (uncompressed) cpio of the dom0 userspace for XEN's version,
    with PACKAGES on top of the plain image (a variant of its own)."""
    text = containerfile(xen, base_tag(xen.suite), packages)
    digest_ = digest(text)
    out = cache_dir("boot", "userspace") / f"dom0-xen{xen.version}-{digest_}.cpio"
    if out.exists():
        return out
    client = engine.client()
    toolchains.ensure_base(client, xen.suite)
    tag = f"pvmatrix/dom0:xen{xen.version}-{digest_}"
    if not toolchains._has_image(client, tag):
        _say(f"building dom0 userspace image {tag} (once)")
        import docker.errors
        try:
            client.images.build(fileobj=io.BytesIO(text.encode()), tag=tag, network_mode="host",
                                rm=True, forcerm=True)
        except docker.errors.BuildError as exc:
            lines = [str(x.get("stream", x.get("error", ""))).strip() for x in exc.build_log]
            raise HarnessFault(f"building the dom0 userspace for Xen {xen.version} "
                               f"({' '.join([xen.utils, *packages])}, "
                               f"{xen.suite}) failed: "
                               f"{next((l for l in reversed(lines) if l), exc.msg)}") from None
    _say(f"exporting {tag} to an initramfs (once)")
    with tempfile.TemporaryDirectory(prefix="dom0-", dir=cache_dir("work")) as tmp:
        tar = Path(tmp) / "rootfs.tar"
        box = client.containers.create(tag, command=["true"])
        try:
            with open(tar, "wb") as fh:
                for chunk in box.export():
                    fh.write(chunk)
        finally:
            box.remove(force=True)
        part = Path(tmp) / "rootfs.cpio"
        with cpio.plain_writer(part) as fh:
            cpio.from_tar(tar, fh, skip=SKIP)
        os.replace(part, out)
    return out
