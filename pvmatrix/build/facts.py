"""What a build task hands on (the `manifest` of its outcome and of its cell
record): the built kernel's facts, the top-level files' digests and where
the artifact is published, so that a consumer on another host fetches and
checks it. to_dict() is the JSON the outcome cache and results/ hold."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .. import artifacts
from .kbuild import Build, BuildManifest

# Set by every build since the artifact store; absent (None) in older records.
SINCE_THE_STORE = ("store", "files", "url", "manifest_sha256", "modules_files")


# Not frozen, unlike the other stages' facts: a dataclass cannot be frozen on
# a mutable base, and Build (the same base) is changed in place by a cache hit.
@dataclass
class BuildFacts(BuildManifest):
    """Build.brief(), typed; kernel_id/kernel_path/boot_kernel name the artifact."""
    dir: str
    store: str | None = None
    files: dict | None = None       # top-level files only: relative path -> {sha256, size}
    url: str | None = None
    manifest_sha256: str | None = None
    modules_files: int | None = None

    @classmethod
    def of(cls, b: Build) -> BuildFacts:
        return cls.from_dict(b.brief())

    @property
    def kernel_id(self) -> str:
        return self.key

    @property
    def kernel_path(self) -> str:
        """What the analyzer reads: the artifact directory."""
        return self.dir

    @property
    def boot_kernel(self) -> str:
        """What the boot harness loads: the artifact directory too."""
        return self.dir

    def here(self, path: str) -> str:
        """PATH usable on this host: a kernel in a remote store is fetched (once)."""
        return artifacts.localize(self.to_dict(), path)

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items()
                if v is not None or k not in SINCE_THE_STORE}
        data.update(kernel_id=self.kernel_id, kernel_path=self.kernel_path,
                    boot_kernel=self.boot_kernel)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BuildFacts:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def provenance(self) -> dict:
        return {"source": self.source, "source_identity": self.identity,
                "config_sha256": self.config_sha256, "toolchain": self.toolchain,
                "toolchain_image": self.image}
