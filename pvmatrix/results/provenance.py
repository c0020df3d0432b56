"""Each cell record's provenance: what its verdict was made from.

    source, source_identity   the kernel source (or Debian package) and its content id
    config_sha256             the resolved .config (source-built kernels)
    toolchain, toolchain_image, toolchain_image_id
                              the build container: content-tagged name and engine image id
    dom0_kernel_id            the kernel that hosted the domUs, when it is another one
    qemu, accel               QEMU's version line and accelerator (boot cells)
    xen                       Debian package (name_version) and sha256 of the hypervisor loaded
    dom0_userspace            image tag, engine image id, sha256 of the cpio dom0 booted
    tool                      pvmatrix version and git commit (+ "-dirty")

A task's part comes with its outcome (matrix.outcomes.provenance_of), a boot's
with its cell's boot facts; record() joins them.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache

from .. import __version__, settings
from ..paths import PACKAGE as PACKAGE_DIR
from ..records import BootFacts



@lru_cache(maxsize=1)
def tool_version() -> str:
    """pvmatrix VERSION (git COMMIT[-dirty]) when run from a git checkout."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(PACKAGE_DIR), *args], capture_output=True,
                                  text=True, timeout=10,
                                  env=settings.current().child_env()).stdout.strip()
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", str(PACKAGE_DIR))
    except (OSError, subprocess.SubprocessError):
        commit = dirty = ""
    return f"pvmatrix {__version__}" + (f" (git {commit}{'-dirty' if dirty else ''})" if commit else "")


def record(task_provenance: dict | None, boot: BootFacts | None) -> dict:
    """The provenance of one cell record: its task's (matrix.outcomes.provenance_of),
    its BOOT's (the boot facts of its cell), the tool's."""
    boot_part = boot.provenance if boot is not None else None
    return {**(task_provenance or {}), **(boot_part or {}), "tool": tool_version()}
