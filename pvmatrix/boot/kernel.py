"""The kernel a boot runs: its image, its modules tree, its config.

A kernel is named by a builder artifacts directory, a directory holding an
unpacked kernel package (boot/vmlinuz-*, lib/modules/*), or a Debian binary
package "debian:linux-image-X[@SUITE]" (fetched and unpacked once).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import PvmError
from ..paths import cache_dir


@dataclass(frozen=True)
class Kernel:
    label: str
    image: Path                 # bzImage / vmlinuz
    modules: Path | None        # .../lib/modules/RELEASE, or None (no modules)
    config: Path | None = None

    @property
    def release(self) -> str | None:
        return self.modules.name if self.modules else None


def _modules_in(root: Path) -> Path | None:
    for base in ("lib/modules", "usr/lib/modules", "modules/lib/modules"):
        found = sorted(p for p in (root / base).glob("*") if p.is_dir())
        if found:
            return found[-1]
    return None


def from_dir(path: Path, label: str | None = None) -> Kernel:
    """A builder artifacts dir or an unpacked kernel package."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise PvmError(f"kernel {path}: not a directory (want a build's artifacts dir)")
    images = [path / "bzImage", *sorted((path / "boot").glob("vmlinuz-*"))]
    image = next((p for p in images if p.is_file()), None)
    if image is None:
        raise PvmError(f"kernel {path}: no bzImage or boot/vmlinuz-* in it")
    configs = [path / "config", *sorted((path / "boot").glob("config-*"))]
    config = next((p for p in configs if p.is_file()), None)
    if label is None and (path / "manifest.json").is_file():
        meta = json.loads((path / "manifest.json").read_text())
        label = f"{meta.get('version', '?')}-{meta.get('key', path.name)[:8]}"
    return Kernel(label or path.name[:12], image, _modules_in(path), config)


def from_build(build) -> Kernel:
    """The kernel of a pvmatrix.build.Build."""
    return from_dir(build.dir)


def from_debian(spec: str) -> Kernel:
    """debian:PACKAGE[@SUITE]: a Debian kernel image package, unpacked in the cache."""
    from ..sources import debian
    name, _, suite = spec.removeprefix("debian:").partition("@")
    deb = debian.download(name, suite or None)
    dest = cache_dir("boot", "kernels", deb.stem)
    if not any(dest.iterdir()):
        debian.extract(deb, dest)
    kernel = from_dir(dest, name.removeprefix("linux-image-"))
    if kernel.modules is not None and not (kernel.modules / "modules.dep").exists():
        _depmod(kernel.modules)
    return kernel


def _depmod(tree: Path) -> None:
    """A kernel package ships no module indexes (its postinst makes them):
    make the text ones with busybox depmod (the boot inits read those)."""
    from .initramfs import busybox
    base = tree.parent.parent.parent          # BASE/lib/modules/RELEASE
    done = subprocess.run([str(busybox()), "depmod", "-b", str(base), tree.name],
                          capture_output=True, text=True)
    if done.returncode != 0 or not (tree / "modules.dep").exists():
        raise PvmError(f"kernel {tree}: depmod failed: {done.stderr.strip()[:200]}")


def load(spec: str | Path) -> Kernel:
    """Resolve a KERNEL argument."""
    text = str(spec)
    if text.startswith("debian:"):
        return from_debian(text)
    return from_dir(Path(text))
