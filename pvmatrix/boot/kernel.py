"""The kernel a boot runs: its image, its modules tree, its config.

A kernel is named by a builder artifacts directory, a directory holding an
unpacked kernel package (boot/vmlinuz-*, lib/modules/*), or a Debian binary
package "debian:linux-image-X[@SUITE]" (fetched and unpacked once). The
type is pvmatrix.kernel.Kernel, shared with build and analyze.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..analyze.bzimage import read_boot_image
from ..errors import NotSupported, UserError
from ..kernel import Kernel, in_dir
from ..sources import packages


def from_dir(path: Path, label: str | None = None, identity: str = "") -> Kernel:
    """A builder artifacts dir or an unpacked kernel package: a kernel with an image."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"kernel {path}: not a directory (want a build's artifacts dir)")
    if label is None and (path / "manifest.json").is_file():
        meta = json.loads((path / "manifest.json").read_text())
        label = f"{meta.get('version', '?')}-{meta.get('key', path.name)[:8]}"
        identity = identity or meta.get("key", "")
    return _bootable(in_dir(path, label or path.name[:12], identity), path)


def from_build(build) -> Kernel:
    """The kernel of a pvmatrix.build.Build."""
    return _bootable(build.kernel, build.dir)


def _bootable(kernel: Kernel, path: Path) -> Kernel:
    """KERNEL, when its image is a whole bzImage (a boot protocol header whose
    payload fits in the file): a truncated one is the input's fault, said before
    any boot rather than as a kernel that never printed."""
    if kernel.image is None:
        raise UserError(f"kernel {path}: no bzImage or boot/vmlinuz-* in it")
    try:
        read_boot_image(kernel.image)
    except NotSupported:          # a boot protocol before 2.08: no payload fields to check
        pass
    return kernel


def from_debian(spec: str) -> Kernel:
    """debian:PACKAGE[@SUITE]: a Debian kernel image (a metapackage followed to
    every package holding its files), unpacked in the cache with its module
    indexes."""
    package = packages.resolve_kernel(spec)
    return from_dir(packages.unpacked_kernel(package), package.abi, package.digest)


def load(spec: str | Path) -> Kernel:
    """Resolve a KERNEL argument."""
    text = str(spec)
    if text.startswith("debian:"):
        return from_debian(text)
    return from_dir(Path(text))
