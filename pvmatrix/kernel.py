"""One kernel on disk, as build makes it, analyze reads it and boot runs it.

A kernel is a directory: a build's artifacts (bzImage, vmlinux, config,
System.map, modules/lib/modules/RELEASE), an unpacked Debian linux-image
package (boot/vmlinuz-*, boot/config-*, lib/modules/RELEASE; since 6.19
usr/lib/modules/RELEASE/vmlinuz and config), or any tree shaped like
either. `in_dir` finds the parts; any may be missing.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import HarnessFault


@dataclass(frozen=True)
class Kernel:
    label: str                        # how reports and logs name it
    image: Path | None = None         # bzImage / vmlinuz
    vmlinux: Path | None = None       # the uncompressed ELF, when kept
    config: Path | None = None
    system_map: Path | None = None
    modules: Path | None = None       # .../lib/modules/RELEASE
    identity: str = ""                # content id: artifact key or sha256:HEX of a .deb

    @property
    def release(self) -> str | None:
        """The modules tree's release name (uname -r), when there is one."""
        return self.modules.name if self.modules else None


def in_dir(root: Path, label: str, identity: str = "") -> Kernel:
    """The kernel whose files are under ROOT."""
    return Kernel(
        label,
        image=_first(root, ["bzImage", "vmlinuz", "arch/x86/boot/bzImage"],
                     ["vmlinuz-*", "boot/vmlinuz-*", "boot/vmlinuz", "boot/bzImage",
                      "usr/lib/modules/*/vmlinuz"]),
        vmlinux=_first(root, ["vmlinux"], []),
        config=_first(root, ["config", ".config"],
                      ["config-*", "boot/config-*", "usr/lib/modules/*/config"]),
        system_map=_first(root, ["System.map"],
                          ["System.map-*", "boot/System.map-*", "usr/lib/modules/*/System.map"]),
        modules=_modules_dir(root), identity=identity)


def _first(root: Path, names: list[str], patterns: list[str]) -> Path | None:
    """ROOT/NAME for the first NAME that is a file, else the last match of the
    first PATTERN that has one (the newest version, for vmlinuz-VERSION)."""
    for name in names:
        if (root / name).is_file():
            return root / name
    for pattern in patterns:
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        if found:
            return found[-1]
    return None


def _modules_dir(root: Path) -> Path | None:
    for base in (root / "modules" / "lib" / "modules", root / "lib" / "modules",
                 root / "usr" / "lib" / "modules"):
        if base.is_dir():
            releases = sorted(p for p in base.iterdir() if p.is_dir())
            if releases:
                return releases[-1]
    if (root / "modules" / "modules.order").exists():
        return root / "modules"
    return None


def busybox() -> Path:
    for p in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if p.is_file():
            return p
    raise HarnessFault("busybox is not installed on this host (apt-get install busybox-static)")


def make_module_indexes(tree: Path) -> None:
    """modules.dep, modules.alias and modules.symbols for the modules tree TREE
    (BASE/lib/modules/RELEASE), made with busybox depmod: a Debian kernel
    package ships none (its postinst makes them); the boot inits read the
    text ones. busybox takes a release only if it reads as X.Y.Z (else it
    uses the host's), and 7.3-amd64 does not: it is given the tree by a
    link of such a name."""
    with tempfile.TemporaryDirectory(prefix="depmod-") as tmp:
        modules = Path(tmp) / "lib" / "modules"
        modules.mkdir(parents=True)
        (modules / "0.0.0").symlink_to(tree.resolve(), target_is_directory=True)
        done = subprocess.run([str(busybox()), "depmod", "-b", tmp, "0.0.0"],
                              capture_output=True, text=True)
    if done.returncode != 0 or not (tree / "modules.alias").exists():
        raise HarnessFault(f"kernel {tree}: depmod failed: {done.stderr.strip()[:200]}")