"""Config recipes against a real kernel tree: the unmet report (needs Debian's
6.1 source, downloaded once)."""

from pvmatrix import configure


def test_unmet_report_against_a_real_tree(debian_61):
    frag = {"CONFIG_XEN_PV": "y", "CONFIG_NO_SUCH_SYMBOL_PVM": "y", "CONFIG_E1000E": "m",
            "CONFIG_PRINTK": "n"}
    recipe = configure.Recipe(base="tinyconfig", options=frag,
                              origin={s: "t" for s in frag})
    final = "CONFIG_XEN_PV=y\n# CONFIG_E1000E is not set\n"
    report = {u.symbol: u for u in configure.unmet(recipe, final, debian_61.tree)}
    assert set(report) == {"CONFIG_NO_SUCH_SYMBOL_PVM", "CONFIG_E1000E"}
    assert report["CONFIG_NO_SUCH_SYMBOL_PVM"].reason == "no such symbol in this kernel"
    assert report["CONFIG_E1000E"].reason.startswith("dependencies not met")
    assert (report["CONFIG_E1000E"].wanted, report["CONFIG_E1000E"].got) == ("m", "n")
