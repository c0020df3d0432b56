"""The initramfs archives of a boot, built here from data/boot/ and a kernel.

- probe: busybox (the host's static one), the probe library, an init, and the
  kernel's modules; for bare metal and for domU guests.
- dom0 overlay: appended to the dom0 userspace archive; its init, the probe
  library, the boot plan, hotplug scripts, the candidate's modules and the
  domU kernel + probe initramfs that dom0 will start with xl.
"""

from __future__ import annotations

import lzma
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..digest import sha256_remembered, short
from ..paths import DATA, cache_dir
from . import cpio, rundirs
from ..kernel import Kernel, busybox
from ..analyze.bzimage import extract_vmlinux

BOOT_DATA = DATA / "boot"
SELECT_ABOVE_MB = 48       # a bigger modules tree is cut down to what the boot needs
# The domU kernel rides in dom0's initramfs, unpacked into a tmpfs of half of
# dom0's memory: Debian's generic ELF (63 MB) made the unpack fail, so a big
# one goes as its bzImage (8 MB) and libxc inflates it.
GUEST_ELF_MAX_MB = 24
ELF_KEEP_MB = 2048         # decompressed kernels kept (elf_file)
# static busybox applets put first in dom0's PATH: cheaper to exec than Debian's
DOM0_APPLETS = ("sh", "cat", "cut", "sed", "grep", "tr", "dd", "sleep", "awk", "readlink", "ls",
                "tail", "head", "printf", "mkdir", "uname", "poweroff", "sync", "basename", "ts",
                "ip", "losetup", "mount", "mv", "timeout", "pidof", "nc")
# class drivers udev would load through a non-PCI modalias (scsi:t-0x00 ...)
STORAGE_CLASS_MODULES = ("sd_mod",)


def _norm(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    for ext in (".xz", ".zst", ".gz"):
        base = base.removesuffix(ext)
    return base.removesuffix(".ko").replace("-", "_")


def _deps(tree: Path) -> dict[str, tuple[str, list[str]]]:
    """modules.dep: normalized name -> (path, dependency paths)."""
    out = {}
    dep = tree / "modules.dep"
    if dep.exists():
        for line in dep.read_text().splitlines():
            path, _, rest = line.partition(":")
            out[_norm(path)] = (path, rest.split())
    return out


def module_paths(kernel: Kernel, wanted: list[str] | None) -> list[str]:
    """Module files (relative to the tree) to ship: all of them when WANTED is
    None, else those named and their dependencies."""
    tree = kernel.modules
    if tree is None:
        return []
    deps = _deps(tree)
    if wanted is None:
        return sorted(p for p, _ in deps.values())
    chosen: set[str] = set()
    todo = [_norm(w) for w in wanted]
    while todo:
        name = todo.pop()
        if name in deps and deps[name][0] not in chosen:
            chosen.add(deps[name][0])
            todo += [_norm(d) for d in deps[name][1]]
    return sorted(chosen)


def selects_modules(kernel: Kernel) -> bool:
    """Whether a boot of KERNEL ships only the modules it needs (its tree is past
    SELECT_ABOVE_MB), not the whole tree."""
    return kernel.modules is not None and tree_mb(kernel) > SELECT_ABOVE_MB


def tree_mb(kernel: Kernel) -> float:
    if kernel.modules is None:
        return 0.0
    return sum(p.stat().st_size for p in kernel.modules.rglob("*.ko*") if p.is_file()) / 2**20


def add_modules(w: cpio.Writer, kernel: Kernel, root: str, wanted: list[str] | None,
                decompress: bool) -> int:
    """Ship the chosen modules under ROOT/RELEASE with the tree's index files.

    DECOMPRESS: .ko.xz become .ko (busybox modprobe) and modules.dep follows.
    """
    tree = kernel.modules
    if tree is None:
        return 0
    dest = f"{root}/{kernel.release}"
    paths = module_paths(kernel, wanted)
    for rel in paths:
        src = tree / rel
        if not src.exists():
            continue
        if decompress and rel.endswith(".xz"):
            w.file(f"{dest}/{rel[:-3]}", lzma.decompress(src.read_bytes()))
        else:
            w.copy(f"{dest}/{rel}", src, 0o644)
    for index in sorted(tree.glob("modules.*")):
        if not index.is_file():
            continue
        if decompress and index.name.endswith(".bin"):
            continue     # busybox reads the text files; they are rewritten below
        data = index.read_bytes()
        if decompress and index.name in ("modules.dep", "modules.order"):
            data = data.replace(b".ko.xz", b".ko")
        w.file(f"{dest}/{index.name}", data)
    return len(paths)


def _scripts(w: cpio.Writer, init: str) -> None:
    w.copy("init", BOOT_DATA / init, 0o755)
    w.copy("pvm/lib.sh", BOOT_DATA / "lib.sh", 0o644)


def probe(out: Path, init: str, kernel: Kernel | None, wanted: list[str] | None = None,
          load: bool = False, ship: list[str] = ()) -> Path:
    """A busybox initramfs running INIT, with KERNEL's modules (gzip'd newc);
    LOAD: the init loads the WANTED ones (pvm/modules lists them: a role's modules).
    SHIP: more modules, shipped for the init to load by modalias (a passed-through
    device's driver), not listed."""
    with cpio.gzip_writer(out) as gz:
        w = cpio.Writer(gz)
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp"):
            w.dir(d)
        w.copy("bin/busybox", busybox(), 0o755)
        w.symlink("bin/sh", "busybox")
        _scripts(w, init)
        if load:
            w.file("pvm/modules", " ".join(wanted or ()).encode() + b"\n", 0o644)
        if kernel is not None:
            add_modules(w, kernel, "lib/modules",
                        None if wanted is None else [*wanted, *ship], decompress=True)
        w.close()
    return out


@dataclass
class GuestFiles:
    """A guest kernel's files in dom0's initramfs, under DIR (dom0-init.sh: DIR_name):
    its kernel, its probe initrd and each of its HVM guests' boot disk (guest name,
    image: bootdisk.py), shipped as boot-NAME.img."""
    dir: str
    kernel: Kernel
    initrd: Path
    boot_disks: tuple[tuple[str, Path], ...] = ()


def dom0_overlay(out: Path, kernel: Kernel, guests: list[GuestFiles], plan: dict[str, str],
                 wanted: list[str] | None) -> Path:
    """The dom0 boot's own files, to append to the userspace archive, with each of
    GUESTS' files."""
    with cpio.plain_writer(out) as fh:
        w = cpio.Writer(fh)
        _scripts(w, "dom0-init.sh")
        w.copy("pvm/bin/busybox", busybox(), 0o755)
        for applet in DOM0_APPLETS:
            w.symlink(f"pvm/bin/{applet}", "busybox")
        w.file("pvm/plan.env", _env(plan))
        for script in ("pvm-vif", "pvm-block"):
            w.copy(f"etc/xen/scripts/{script}", BOOT_DATA / script, 0o755)
        # merged /usr: "lib" is a symlink in the userspace, an entry for it would replace it
        add_modules(w, kernel, "usr/lib/modules", wanted, decompress=False)
        _guests(w, guests)
        w.close()
    return out


def _guests(w: cpio.Writer, guests: list[GuestFiles]) -> None:
    for g in guests:
        w.file(f"{g.dir}/kernel", elf_image(g.kernel, GUEST_ELF_MAX_MB), 0o644)
        w.copy(f"{g.dir}/initrd.gz", g.initrd, 0o644)
        for name, disk in g.boot_disks:
            w.copy(f"{g.dir}/boot-{name}.img", disk, 0o644)


def batch(out: Path, guests: list[GuestFiles], plan: dict[str, str]) -> Path:
    """A batch for a parked dom0 (snapshot.py): its plan and GUESTS' files, which
    dom0-init.sh unpacks over its root."""
    with cpio.plain_writer(out) as fh:
        w = cpio.Writer(fh)
        w.file("pvm/plan.env", _env(plan))
        _guests(w, guests)
        w.close()
    return out


def _env(plan: dict[str, str]) -> bytes:
    return "".join(f'{k}="{v}"\n' for k, v in plan.items()).encode()


def elf_image(kernel: Kernel, max_mb: float | None = None) -> bytes:
    """A kernel as Xen or xl will load it: the bzImage's decompressed ELF when
    it can be had (libxc would otherwise decompress it inside dom0, seconds
    under TCG) and is at most MAX_MB, else the bzImage itself. Same Xen notes."""
    elf = elf_file(kernel)
    if elf is None or (max_mb is not None and elf.stat().st_size > max_mb * 2**20):
        return kernel.image.read_bytes()
    return elf.read_bytes()


def elf_file(kernel: Kernel) -> Path | None:
    """KERNEL's decompressed ELF, cached by its bzImage's digest (boot/elf; the least
    recently used go past ELF_KEEP_MB), or None when it has none."""
    root = cache_dir("boot", "elf")
    d = root / short(sha256_remembered(kernel.image))
    elf, none = d / "vmlinux", d / "none"
    if elf.is_file() or none.is_file():
        os.utime(d)
        return elf if elf.is_file() else None
    rundirs.prune(root, ELF_KEEP_MB * 2**20, by_use=True)
    d.mkdir(parents=True, exist_ok=True)
    try:
        data = extract_vmlinux(kernel.image)
    except Exception:            # no ELF inside (or not a bzImage): the image goes as it is
        none.touch()
        return None
    tmp = d / f"vmlinux.{os.getpid()}"
    tmp.write_bytes(data)
    os.replace(tmp, elf)
    return elf


def place_image(kernel: Kernel, dest: Path) -> Path:
    """DEST: KERNEL as Xen loads it (elf_image), linked from the cache when it can be."""
    src = elf_file(kernel)
    if src is not None:
        try:
            os.link(src, dest)
            return dest
        except OSError:          # another file system: a copy
            pass
    shutil.copyfile(src or kernel.image, dest)
    return dest
