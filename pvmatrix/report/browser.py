"""Debian's Chromium, headless, on a published page: its DOM as the browser
built it (scripts run), and screenshots (`pvmatrix publish --screenshot`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import NotSupported

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--virtual-time-budget=3000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise NotSupported("chromium is not installed (.ci/setup installs it: apt-get install chromium)")
    return found


def _run(args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="pvmatrix-chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


def dom(url: str) -> str:
    """The DOM of URL once its scripts ran."""
    done = _run(["--dump-dom", url])
    if done.returncode != 0:
        raise NotSupported(f"chromium --dump-dom {url}: {done.stderr.strip()[-300:]}")
    return done.stdout


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 900) -> Path:
    """PNG of PAGE (a file) at WIDTHxHEIGHT."""
    png.parent.mkdir(parents=True, exist_ok=True)
    done = _run([f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
                 page.resolve().as_uri()])
    if not png.is_file():
        raise NotSupported(f"chromium --screenshot {page}: {done.stderr.strip()[-300:]}")
    return png
