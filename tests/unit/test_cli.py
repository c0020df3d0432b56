"""The command line on bad input: one clear line naming the input, non-zero exit."""

import pytest

from conftest import one_error_line, pvmatrix
from pvmatrix.build import toolchains
from pvmatrix.matrix import spec
from pvmatrix.errors import PvmError


def test_missing_ref(tmp_path):
    import git
    git.Repo.init(tmp_path / "r")
    line = one_error_line(pvmatrix("build", f"git:{tmp_path}/r@v6.1"))
    assert "ref 'v6.1' not found" in line


@pytest.mark.parametrize("text,expected", [
    ("kernel = 3\n", "kernel: expected a list of [[kernel]] tables"),
    ("[[kernel]]\nname = 'a'\n", "kernel[0].source: expected a source string"),
    ("[[kernel]]\nname = 'a'\nsource = 'x'\nfragments = 'boot'\n",
     "kernel[0].fragments: expected a list"),
    ("[[kernel]]\nname = 'a'\nsource = 'x'\ncolour = 1\n", "kernel[0]: unknown key(s) colour"),
    ("[[kernel\n", "not valid TOML"),
])
def test_spec_errors_name_file_and_key(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PvmError) as err:
        spec.load(path)
    assert str(err.value).startswith(f"{path}: ") or str(err.value).startswith(f"spec {path}: ")
    assert expected in str(err.value)
    line = one_error_line(pvmatrix("run", str(path)))
    assert expected in line


def test_default_spec_loads():
    loaded = spec.load(None)
    assert [k.source for k in loaded.kernels][:1] == ["debian:linux-source-6.1@bookworm"]


def test_toolchains_are_data_and_tags_follow_content():
    known = toolchains.all_toolchains()
    assert {"bullseye-gcc10", "bookworm-gcc12", "trixie-gcc14"} <= set(known)
    assert toolchains.pick("auto", "5.10.200").name == "bullseye-gcc10"
    assert toolchains.pick("auto", "6.1.176").name == "bookworm-gcc12"
    assert toolchains.pick("auto", "6.12.5").name == "trixie-gcc14"
    tc = known["bookworm-gcc12"]
    changed = toolchains.Toolchain(**{**tc.__dict__, "packages": tc.packages + ("bison",)})
    assert changed.image != tc.image
    assert toolchains.Toolchain(**tc.__dict__).image == tc.image
    with pytest.raises(PvmError, match="unknown toolchain 'gcc-1'"):
        toolchains.pick("gcc-1", "6.1")
