#!/usr/bin/env python3
"""Builder benchmark: cold build overhead vs plain make, cache hit, ccache-warm.

Writes bench/results/build.json. All figures come from one run, the ratios
comparing runs made back to back on the same machine. Uses its own cache
(bench/.cache by default, or $PVMATRIX_CACHE) so that "cold" is cold: the
source tree is fetched beforehand, artifacts and ccache start empty.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("PVMATRIX_CACHE", str(HERE / ".cache"))
sys.path.insert(0, str(HERE.parent))

from pvmatrix import build, sources  # noqa: E402
from pvmatrix.build import container, engine, toolchains  # noqa: E402
from pvmatrix.paths import cache_root  # noqa: E402

SOURCE = "debian:linux-source-6.1@bookworm"
FRAGMENTS = ["boot", "xen-domu", "xen-dom0", "hw/e1000e"]
CLI = [sys.executable, "-m", "pvmatrix.cli", "build", SOURCE, "--base", "tinyconfig",
       *[a for f in FRAGMENTS for a in ("-f", f)]]


LOAD: dict[str, float] = {}   # 1-min load average at the end of each phase: other work running?


def timed_cli(phase: str = "") -> float:
    start = time.monotonic()
    child = subprocess.Popen(CLI, cwd=HERE.parent, stdout=subprocess.DEVNULL)
    try:
        if child.wait():
            sys.exit(f"pvmatrix build failed ({child.returncode})")
    finally:
        if child.poll() is None:      # interrupted: let the CLI stop its container
            child.terminate()
            child.wait()
    took = time.monotonic() - start
    if phase:
        LOAD[phase] = os.getloadavg()[0]
    return took


def forget(*parts: str) -> None:
    for part in parts:
        shutil.rmtree(cache_root() / part, ignore_errors=True)


def plain_make(config: Path, tc: toolchains.Toolchain, tree: Path) -> tuple[float, float]:
    """make -j2 of the same tree and config in the same image, no pvmatrix, no ccache."""
    with tempfile.TemporaryDirectory(dir=cache_root()) as out:
        shutil.copy(config, Path(out) / ".config")
        empty = Path(out) / "no-ccache"
        empty.mkdir()
        mounts = container.Mounts(tree, Path(out), empty)
        start = time.monotonic()
        code = container.run(tc.image, f"set -e\nmake -C /src O=/out ARCH=x86_64 -j2 "
                             f"CC={tc.compiler} HOSTCC={tc.compiler}\n" + container.CPU_REPORT,
                             mounts, Path(out) / "log", {})
        took = time.monotonic() - start
        LOAD["plain"] = os.getloadavg()[0]
        if code:
            sys.exit(f"plain make failed: see {out}/log")
        return took, build.cpu_seconds((Path(out) / "log").read_text())


def main() -> None:
    src = sources.resolve(SOURCE)
    tc = toolchains.pick("auto", src.version)
    toolchains.ensure_image(engine.client(), tc)
    forget("artifacts", "recipes", "ccache", "warm")
    cold = timed_cli("cold")
    built = build.build(SOURCE, "tinyconfig", FRAGMENTS)
    hit = min(timed_cli() for _ in range(3))
    plain, plain_cpu = plain_make(built.kernel.config, tc, src.tree)
    forget("artifacts", "recipes", "warm")         # ccache-warm in a fresh output dir
    warm = timed_cli("ccache_warm")
    rebuilt = build.build(SOURCE, "tinyconfig", FRAGMENTS)
    result = {
        "kernel": f"{src.version} tinyconfig + {' + '.join(FRAGMENTS)}",
        "toolchain": tc.name, "cores": os.cpu_count(), "host": platform.node(),
        "cold_s": round(cold, 1), "plain_make_s": round(plain, 1),
        "overhead_ratio": round(cold / plain, 3),
        "cache_hit_s": round(hit, 2),
        "ccache_warm_s": round(warm, 1), "ccache_warm_ratio": round(warm / cold, 3),
        "cold_cpu_s": built.cpu_s, "plain_make_cpu_s": plain_cpu,
        "overhead_cpu_ratio": round(built.cpu_s / plain_cpu, 3),
        "ccache_warm_cpu_ratio": round(rebuilt.cpu_s / built.cpu_s, 3),
        # wall ratios are only as good as the machine was quiet: load after each phase
        "load_avg_1m_after": {k: round(v, 2) for k, v in LOAD.items()},
    }
    out = HERE / "results" / "build.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    from pvmatrix.cli import _terminate
    import signal
    signal.signal(signal.SIGTERM, _terminate)   # stop the container on kill too
    main()
