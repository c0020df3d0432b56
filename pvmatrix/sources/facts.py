"""What a source task hands on (the `manifest` of its outcome and of its cell
record): a source tree, or a prebuilt Debian kernel package. Each is a typed
record whose to_dict() is the JSON the outcome cache and results/ hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .packages import Package, Prebuilt


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
    """A prebuilt kernel: its linux-image package (a metapackage already
    followed) and every package holding its files."""
    kernel: Prebuilt

    @property
    def package(self) -> Package:
        """The linux-image-ABI package."""
        return self.kernel.image

    @property
    def kernel_id(self) -> str:
        return self.kernel.digest

    @property
    def kernel_path(self) -> str:
        """What the analyzer reads: the .deb when it alone holds the kernel, else
        debian:NAME@SUITE (its packages unpacked together)."""
        return str(self.package.deb) if len(self.kernel.parts) == 1 else self.kernel.spec

    @property
    def boot_kernel(self) -> str:
        """What the boot harness loads: debian:NAME@SUITE."""
        return self.kernel.spec

    def here(self, path: str) -> str:
        """PATH usable on this host: a package is fetched by whoever loads it."""
        return path

    def to_dict(self) -> dict:
        p = self.package
        return {"package": p.name, "suite": p.suite, "deb": str(p.deb), "version": p.version,
                "kernel_id": self.kernel_id, "kernel_path": self.kernel_path,
                "boot_kernel": self.boot_kernel, **self._parts()}

    def _parts(self) -> dict:
        """The packages, when more than one holds the kernel (one alone: the
        fields above say it all, as before the split packaging)."""
        if len(self.kernel.parts) == 1:
            return {}
        return {"parts": [{"package": q.name, "suite": q.suite, "deb": str(q.deb),
                           "version": q.version, "digest": q.digest} for q in self.kernel.parts]}

    @classmethod
    def from_dict(cls, data: dict) -> PackageFacts:
        # an outcome from before the split packaging: one package, whose digest is the kernel's
        parts = data.get("parts") or [{**data, "digest": data["kernel_id"]}]
        return cls(Prebuilt(tuple(Package(q["package"], q["suite"], Path(q["deb"]), q["version"],
                                          q["digest"]) for q in parts)))

    def provenance(self) -> dict:
        p = self.package
        return {"source_identity": self.kernel_id, "package": f"{p.name} {p.version}".strip(),
                "packages": self.kernel.provenance()}
