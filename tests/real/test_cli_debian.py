"""The command line on bad input that needs the Debian archive: one clear line
naming the input, non-zero exit."""

from conftest import one_error_line, pvmatrix


def test_missing_debian_package():
    line = one_error_line(pvmatrix("build", "debian:linux-source-0.42@bookworm"))
    assert "linux-source-0.42 not found" in line


def test_broken_fragment(tmp_path):
    (tmp_path / "f.config").write_text("CONFIG_XEN=perhaps\n")
    line = one_error_line(pvmatrix("build", "debian:linux-source-6.1@bookworm",
                                   "-f", str(tmp_path / "f.config")))
    assert "f.config:1: bad value for CONFIG_XEN" in line
