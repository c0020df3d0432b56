"""Fixtures of the real tier."""

from __future__ import annotations

import pytest

from conftest import DEBIAN_61, XEN_FRAGMENTS


@pytest.fixture(scope="session")
def xen_kernel():
    """The small Debian 6.1 Xen kernel (tinyconfig + XEN_FRAGMENTS), built for real."""
    from pvmatrix import build
    from pvmatrix.boot.kernel import from_build
    return from_build(build.build(DEBIAN_61, "tinyconfig", XEN_FRAGMENTS))
