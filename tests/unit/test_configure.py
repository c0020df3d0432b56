"""Config recipes: fragment parsing, merging, keys and the unmet report."""

import pytest

from pvmatrix import build, configure
from pvmatrix.errors import PvmError, UnknownName


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_fragment_parsing_reads_set_and_unset(tmp_path):
    frag = write(tmp_path, "a.config", "# comment\nCONFIG_A=y\n# CONFIG_B is not set\n"
                                       'CONFIG_C="x y"\nCONFIG_D=0x10\n\n')
    recipe = configure.load("tinyconfig", [frag])
    assert recipe.options == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x y"',
                              "CONFIG_D": "0x10"}


@pytest.mark.parametrize("line", ["CONFIG_A=maybe", "CONFIG A=y", "XEN=y", 'CONFIG_S="open'])
def test_broken_fragment_names_file_and_line(tmp_path, line):
    frag = write(tmp_path, "broken.config", f"CONFIG_OK=y\n{line}\n")
    with pytest.raises(PvmError, match=r"broken\.config:2: "):
        configure.load("tinyconfig", [frag])


def test_unknown_fragment_and_base_are_named():
    with pytest.raises(UnknownName, match="config fragment 'no-such-fragment'"):
        configure.load("tinyconfig", ["no-such-fragment"])
    with pytest.raises(PvmError, match="config base 'nonsense'"):
        configure.load("nonsense", [])


def test_shipped_fragments_parse():
    recipe = configure.load("tinyconfig", ["boot", "xen-domu", "xen-dom0", "hw/e1000e",
                                           "hw/nvme", "hw/ahci", "hw/megaraid_sas"])
    assert recipe.options["CONFIG_XEN_PV"] == "y"
    assert recipe.options["CONFIG_FILE_LOCKING"] == "y"
    assert recipe.origin["CONFIG_MEGARAID_SAS"] == "hw/megaraid_sas"


def test_reordering_non_conflicting_fragments_keeps_the_key(tmp_path):
    a = write(tmp_path, "a.config", "CONFIG_A=y\n")
    b = write(tmp_path, "b.config", "CONFIG_B=m\n")
    assert configure.load("tinyconfig", [a, b]).key == configure.load("tinyconfig", [b, a]).key


def test_conflicting_fragments_last_wins_and_order_matters(tmp_path):
    on = write(tmp_path, "on.config", "CONFIG_A=y\n")
    off = write(tmp_path, "off.config", "# CONFIG_A is not set\n")
    first, second = configure.load("tinyconfig", [on, off]), configure.load("tinyconfig", [off, on])
    assert first.options["CONFIG_A"] == "n" and second.options["CONFIG_A"] == "y"
    assert first.key != second.key


def test_base_changes_the_key(tmp_path):
    base = write(tmp_path, "distro.config", "CONFIG_A=y\n")
    keys = {configure.load(b, []).key for b in ("tinyconfig", "defconfig", base)}
    assert len(keys) == 3


def test_artifact_key_follows_the_resolved_config_only():
    config = "#\n# Linux/x86 6.1.0 Kernel Configuration\n#\nCONFIG_A=y\n# CONFIG_B is not set\n"
    key = build.artifact_key("sha256:1", config, "img")
    assert build.artifact_key("sha256:1", config.replace("6.1.0 Kernel", "other header"),
                              "img") == key
    assert build.artifact_key("sha256:1", config.replace("CONFIG_A=y", "CONFIG_A=m"), "img") != key
    assert build.artifact_key("sha256:2", config, "img") != key
    assert build.artifact_key("sha256:1", config, "img2") != key
