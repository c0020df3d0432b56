"""What a boot ran on, for the cell records: QEMU's version, the Xen build
(Debian package version and the sha256 of the hypervisor QEMU loaded) and
the dom0 userspace image (content tag, engine image id, sha256 of its cpio).
Digests of big files are remembered by path, size and mtime (digest.py),
so a boot does not re-hash 80 MB every time."""

from __future__ import annotations

import re
from pathlib import Path

from ..build import engine
from ..digest import sha256_id
from .. import catalog
from ..paths import cache_dir
from . import qemu
from .xen import Xen


def qemu_facts(accel: str) -> dict:
    return {"qemu": qemu.version(), "qemu_binary": qemu.binary(), "accel": accel}


def xen_build(xen: Xen) -> dict:
    """Xen's build id: its Debian package (name_version) and the loaded binary's sha256."""
    rel = catalog.all("xen").get(xen.version)
    debs = sorted(cache_dir("apt", rel.suite, "debs").glob(f"{rel.package}_*.deb")) \
        if rel else []
    return {"version": xen.version, "package": debs[-1].stem if debs else None,
            "binary": str(xen.binary), "sha256": sha256_id(xen.binary)}


def userspace_image(cpio: Path) -> dict:
    """The dom0 userspace: the suite and toolstack it comes from, image tag (by
    Containerfile digest), engine image id, cpio sha256."""
    m = re.fullmatch(r"dom0-xen([\d.]+)-([0-9a-f]+)\.cpio", cpio.name)
    tag = f"pvmatrix/dom0:xen{m.group(1)}-{m.group(2)}" if m else None
    rel = catalog.all("xen").get(m.group(1)) if m else None
    return {"suite": rel.suite if rel else None, "utils": rel.utils if rel else None,
            "tag": tag, "image_id": engine.image_id(tag) if tag else None, "cpio": str(cpio),
            "cpio_sha256": sha256_id(cpio)}
