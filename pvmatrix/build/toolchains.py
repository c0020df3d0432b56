"""Toolchains as data, and their container images, tagged by content.

A suite's base image is bootstrapped here (no registry is assumed) and
imported; the toolchain image is built on top from a Containerfile. Tags carry
a digest of everything that defines the image, so a changed definition
rebuilds and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..sources import debian
from ..errors import PvmError
from ..paths import DATA


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(".")[:2])


@dataclass(frozen=True)
class Toolchain:
    name: str
    suite: str
    compiler: str
    packages: tuple[str, ...]
    min_version: str
    max_version: str

    @property
    def containerfile(self) -> str:
        return (DATA / "toolchain.Containerfile").read_text().format(
            base=base_tag(self.suite), packages=" ".join(self.packages),
            name=self.name, compiler=self.compiler)

    @property
    def image(self) -> str:
        """Content tag: changes whenever the definition or its base changes."""
        return f"pvmatrix/toolchain:{self.name}-{_digest(self.containerfile)}"

    def covers(self, version: str) -> bool:
        v = _version_tuple(version)
        return _version_tuple(self.min_version) <= v < _version_tuple(self.max_version)


def all_toolchains() -> dict[str, Toolchain]:
    data = tomllib.loads((DATA / "toolchains.toml").read_text())
    common = data.get("common_packages", [])
    return {name: Toolchain(name=name, suite=t["suite"], compiler=t["compiler"],
                            packages=tuple(common + [t["compiler"]] + t.get("packages", [])),
                            min_version=t["min_version"], max_version=t["max_version"])
            for name, t in data["toolchain"].items()}


def pick(name: str, kernel_version: str) -> Toolchain:
    """The named toolchain, or for "auto" the one whose range covers the kernel."""
    known = all_toolchains()
    if name != "auto":
        if name not in known:
            raise PvmError(f"unknown toolchain {name!r} (known: {', '.join(known)})")
        return known[name]
    for tc in known.values():
        if tc.covers(kernel_version):
            return tc
    raise PvmError(f"no toolchain covers kernel {kernel_version} (see data/toolchains.toml)")


def base_tag(suite: str) -> str:
    mirror = debian.suites()["mirror"]
    return f"pvmatrix/base:{suite}-{_digest(suite, mirror, 'minbase')}"


def _has_image(client, tag: str) -> bool:
    import docker.errors
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _say(msg: str) -> None:
    print(f"pvmatrix: {msg}", file=sys.stderr, flush=True)


def ensure_base(client, suite: str) -> str:
    """Bootstrap SUITE with debootstrap and import it as an image (once)."""
    tag = base_tag(suite)
    if _has_image(client, tag):
        return tag
    mirror = debian.suites()["mirror"]
    _say(f"bootstrapping Debian {suite} base image (once)")
    with tempfile.TemporaryDirectory(prefix="pvmatrix-boot-") as tmp:
        root = Path(tmp) / "root"
        done = subprocess.run(["debootstrap", "--variant=minbase", suite, str(root), mirror],
                              capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise PvmError(f"debootstrap of Debian {suite} failed: {' '.join(tail)}")
        tar = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
        repo, _, version = tag.partition(":")
        with open(tar, "rb") as fh:
            out = client.api.import_image_from_data(fh, repository=repo, tag=version)
        # podman's compat API ignores the tag of an import: tag the id it reports
        image_id = json.loads(out.strip().splitlines()[-1]).get("id") or ""
        client.images.get(image_id).tag(repo, version)
    if not _has_image(client, tag):
        raise PvmError(f"importing the {suite} base image as {tag} failed")
    return tag


def ensure_image(client, tc: Toolchain) -> str:
    """The toolchain's image, built if its content tag is not present yet."""
    if _has_image(client, tc.image):
        return tc.image
    ensure_base(client, tc.suite)
    _say(f"building toolchain image {tc.image}")
    import docker.errors
    try:
        client.images.build(fileobj=io.BytesIO(tc.containerfile.encode()), tag=tc.image,
                            network_mode="host", rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        lines = [str(x.get("stream", x.get("error", ""))).strip() for x in exc.build_log]
        raise PvmError(f"building toolchain image {tc.name} failed: "
                       f"{next((l for l in reversed(lines) if l), exc.msg)}") from None
    return tc.image
