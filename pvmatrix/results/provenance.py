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
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from .. import __version__, settings

PACKAGE_DIR = Path(__file__).resolve().parent.parent


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


def _kernel(out: dict | None) -> dict:
    """Provenance of a kernel from its source or build task's outcome."""
    if not out:
        return {}
    m, i = out.get("manifest") or {}, out.get("inputs") or {}
    got = {"source": i.get("source") or i.get("package") or m.get("source"),
           "source_identity": i.get("identity") or m.get("identity") or m.get("kernel_id"),
           "config_sha256": i.get("config_sha256") or m.get("config_sha256"),
           "toolchain": i.get("toolchain") or m.get("toolchain"),
           "toolchain_image": i.get("toolchain_image") or m.get("image"),
           "toolchain_image_id": i.get("toolchain_image_id")}
    if m.get("package"):
        got["package"] = f"{m['package']} {m.get('version', '')}".strip()
    return {k: v for k, v in got.items() if v}


def of_task(task: dict, deps: dict, out: dict) -> dict:
    """What a task's outcome rests on, before any boot facts (see record())."""
    if task["stage"] in ("source", "build"):
        prov = _kernel(deps.get("source")) if task["stage"] == "build" else {}
        prov.update(_kernel(out))
        return prov
    prov = _kernel(deps.get("kernel"))
    inputs = out.get("inputs") or {}
    if inputs.get("dom0_kernel") and inputs.get("dom0_kernel_id") != inputs.get("kernel_id"):
        prov.update(dom0_kernel=inputs["dom0_kernel"], dom0_kernel_id=inputs["dom0_kernel_id"])
    return prov


def record(outcome: dict, cell_out: dict) -> dict:
    """The provenance of one cell record: its task's, its boot's, the tool's."""
    boot = (cell_out.get("boot") or {}).get("provenance") or {}
    return {**(outcome.get("provenance") or {}), **boot, "tool": tool_version()}
