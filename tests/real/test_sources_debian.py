"""Kernel sources from Debian packages (downloads from the Debian archive)."""

import pytest

from pvmatrix import sources
from pvmatrix.errors import PvmError


def test_missing_debian_package_is_named():
    with pytest.raises(PvmError, match="Debian package linux-source-0.42 not found in suite"):
        sources.resolve("debian:linux-source-0.42@bookworm")


def test_debian_source_package(debian_61):
    assert debian_61.kind == "debian"
    assert debian_61.version.startswith("6.1.")
    assert debian_61.identity.startswith("sha256:")
    assert (debian_61.tree / "scripts/kconfig/merge_config.sh").exists()
