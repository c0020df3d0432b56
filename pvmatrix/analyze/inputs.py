"""Find a kernel's files: a builder artifacts dir, a Debian linux-image .deb
or package name, any directory with vmlinuz/bzImage + config + modules tree,
or a bare image."""

from __future__ import annotations

from pathlib import Path

from ..digest import sha256_id
from ..errors import UserError
from ..kernel import Kernel, in_dir
from ..sources import debian, packages


def locate(kernel: str | Path) -> Kernel:
    """The files of KERNEL: a path to a directory, a .deb, a bzImage or a vmlinux,
    or debian:PACKAGE[@SUITE] (a metapackage is followed, the package fetched)."""
    given = str(kernel)
    if given.startswith("debian:"):
        package = packages.resolve_kernel(given)
        return _checked(in_dir(packages.unpacked_kernel(package), given, package.digest))
    path = Path(kernel).expanduser()
    if not path.exists():
        raise UserError(f"{kernel}: no such file or directory")
    if path.is_file() and path.suffix == ".deb":
        return _checked(in_dir(debian.unpacked(path), given, sha256_id(path)))
    if path.is_dir():
        return _checked(in_dir(path, given))
    head = path.open("rb").read(0x210)
    if head[:4] == b"\x7fELF":
        return Kernel(given, vmlinux=path)
    if head[0x202:0x206] == b"HdrS":
        return Kernel(given, image=path)
    raise UserError(f"{kernel}: not a kernel (neither a bzImage, an ELF vmlinux, a .deb nor a directory)")


def _checked(found: Kernel) -> Kernel:
    if not (found.image or found.vmlinux):
        raise UserError(f"{found.label}: no kernel image in it "
                        "(looked for bzImage, vmlinuz*, boot/vmlinuz-*, vmlinux)")
    return found
