"""Toolchains (catalog kind "toolchain") and their container images, tagged by content.

A suite's base image is bootstrapped here (no registry is assumed) and
imported; the toolchain image is built on top from a Containerfile. Tags carry
a digest of everything that defines the image, so a changed definition
rebuilds and an unchanged one is reused.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import catalog, settings
from ..errors import HarnessFault, NotSupported
from ..catalog import Toolchain


def all_toolchains() -> dict[str, Toolchain]:
    return catalog.all("toolchain")


def pick(name: str, kernel_version: str) -> Toolchain:
    """The named toolchain, or for "auto" the one whose range covers the kernel."""
    if name != "auto":
        return catalog.get("toolchain", name)
    for tc in all_toolchains().values():
        if tc.covers(kernel_version):
            return tc
    raise NotSupported(f"no toolchain covers kernel {kernel_version} (see data/toolchains.toml)")


def expected(name: str, kernel_version: str | None) -> Toolchain | None:
    """The toolchain a build will pick, known before the source is fetched: the
    named one, or for "auto" the one covering KERNEL_VERSION (None: not known
    yet). NotSupported: no toolchain covers it."""
    if name == "auto" and kernel_version is None:
        return None
    return pick(name, kernel_version or "")


def base_tag(suite: str) -> str:
    return catalog.get("suite", suite).base_image


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
    mirror = catalog.mirror()
    _say(f"bootstrapping Debian {suite} base image (once)")
    with tempfile.TemporaryDirectory(prefix="pvmatrix-boot-") as tmp:
        root = Path(tmp) / "root"
        done = subprocess.run(["debootstrap", "--variant=minbase", suite, str(root), mirror],
                              capture_output=True, text=True, env=settings.current().child_env())
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise HarnessFault(f"debootstrap of Debian {suite} failed: {' '.join(tail)}")
        tar = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
        repo, _, version = tag.partition(":")
        with open(tar, "rb") as fh:
            out = client.api.import_image_from_data(fh, repository=repo, tag=version)
        # podman's compat API ignores the tag of an import: tag the id it reports
        image_id = json.loads(out.strip().splitlines()[-1]).get("id") or ""
        client.images.get(image_id).tag(repo, version)
    if not _has_image(client, tag):
        raise HarnessFault(f"importing the {suite} base image as {tag} failed")
    return tag


def _build_error(build_log) -> str:
    """The line that says why an image build failed: apt's first `E:` line
    (the step's exit status alone says nothing), else the last line."""
    lines = [l.strip() for x in build_log
             for l in str(x.get("stream", x.get("error", ""))).splitlines() if l.strip()]
    return next((l for l in lines if l.startswith("E: ")), lines[-1] if lines else "")


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
        raise HarnessFault(f"building toolchain image {tc.name} failed: "
                           f"{_build_error(exc.build_log) or exc.msg}") from None
    return tc.image
