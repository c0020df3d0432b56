"""Benchmark the module scan of the static analyzer on Debian 6.1 generic
(bookworm's linux-image-amd64): cold (empty pvmatrix cache) and repeated,
with a pool of 2 processes. Writes bench/results/scan.json.

    python3 bench/scan.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "scan.json"


def busy_compilers() -> int:
    done = subprocess.run(["pgrep", "-c", "cc1"], capture_output=True, text=True)
    return int(done.stdout.strip() or 0)


def drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from pvmatrix import settings
    from pvmatrix.sources import packages
    from pvmatrix.analyze.inputs import locate
    from pvmatrix.analyze.modules import scan_modules

    package = packages.resolve("debian:linux-image-amd64@bookworm")
    image, deb = package.name, package.deb
    root = locate(deb).modules

    cold, repeat, page_cache_dropped, compilers = [], [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="pvmatrix-bench-") as tmp, \
                settings.use(settings.Settings.from_env(cache=tmp)):
            compilers.append(busy_compilers())
            page_cache_dropped.append(drop_page_cache())
            start = time.perf_counter()
            scan = scan_modules(root, jobs=2)
            cold.append(time.perf_counter() - start)
            assert scan.from_cache == 0
            start = time.perf_counter()
            again = scan_modules(root, jobs=2)
            repeat.append(time.perf_counter() - start)
            assert again.from_cache == len(again.modules)
            compilers.append(busy_compilers())

    result = {
        "modules": len(scan.modules),
        "cold_s": round(statistics.median(cold), 3),
        "repeat_s": round(statistics.median(repeat), 3),
        "cold_runs_s": [round(t, 3) for t in cold],
        "repeat_runs_s": [round(t, 3) for t in repeat],
        "pci_aliases": sum(len(m.pci_aliases) for m in scan.modules),
        "unreadable": len(scan.unreadable),
        "kernel": image,
        "package": deb.name,
        "jobs": 2,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "page_cache_dropped": all(page_cache_dropped),
        "cold_means": "empty pvmatrix cache" + ("" if all(page_cache_dropped)
                                                else "; module files already in the OS page cache"),
        "machine_idle": max(compilers) == 0,
        "busy_compilers_seen": max(compilers),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
