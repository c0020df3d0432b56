"""What a run's verdicts were measured on: the facts its run.json keeps."""

from __future__ import annotations

import os
import platform

from ..boot import qemu


def facts() -> dict:
    """This host: its name, kernel, Python, CPUs, memory, QEMU and its accelerator."""
    found = {"hostname": platform.node(), "kernel": platform.release(),
             "python": platform.python_version(), "cpus": os.cpu_count(),
             "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
             "qemu": qemu.version()}
    try:
        accel = qemu.probe_accel()
        found["accel"] = f"{accel.name} ({accel.why})"
    except Exception as exc:          # a run records its cells without the harness too
        found["accel"] = f"unknown ({exc})"
    try:
        import distributed
        found["dask_distributed"] = distributed.__version__
    except ImportError:
        pass
    return found
