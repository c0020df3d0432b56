"""What a source task hands on (the `manifest` of its outcome and of its cell
record): a source tree, or a prebuilt Debian kernel package. Each is a typed
record whose to_dict() is the JSON the outcome cache and results/ hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .packages import Package


@dataclass(frozen=True)
class SourceFacts:
    """A kernel source tree, ready on disk, and its content identity."""
    source: str        # the spec, e.g. git:/src/linux@v6.1
    identity: str      # git:COMMIT or sha256:HEX
    version: str       # the kernel version the tree's Makefile says
    tree: str

    def to_dict(self) -> dict:
        return {"source": self.source, "identity": self.identity, "version": self.version,
                "tree": self.tree}

    @classmethod
    def from_dict(cls, data: dict) -> SourceFacts:
        return cls(data["source"], data["identity"], data["version"], data["tree"])

    def provenance(self) -> dict:
        return {"source": self.source, "source_identity": self.identity}


@dataclass(frozen=True)
class PackageFacts:
    """A prebuilt kernel: one concrete Debian package (a metapackage already followed)."""
    package: Package

    @property
    def kernel_id(self) -> str:
        return self.package.digest

    @property
    def kernel_path(self) -> str:
        """What the analyzer reads: the .deb itself."""
        return str(self.package.deb)

    @property
    def boot_kernel(self) -> str:
        """What the boot harness loads: debian:NAME@SUITE."""
        return self.package.spec

    def here(self, path: str) -> str:
        """PATH usable on this host: a package is fetched by whoever loads it."""
        return path

    def to_dict(self) -> dict:
        p = self.package
        return {"package": p.name, "suite": p.suite, "deb": str(p.deb), "version": p.version,
                "kernel_id": self.kernel_id, "kernel_path": self.kernel_path,
                "boot_kernel": self.boot_kernel}

    @classmethod
    def from_dict(cls, data: dict) -> PackageFacts:
        return cls(Package(data["package"], data["suite"], Path(data["deb"]), data["version"],
                           data["kernel_id"]))

    def provenance(self) -> dict:
        p = self.package
        return {"source_identity": self.kernel_id, "package": f"{p.name} {p.version}".strip()}
