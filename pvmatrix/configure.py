"""Config recipes: a base plus Kconfig fragments, resolved by the kernel itself.

Fragments merge last-wins (as merge_config.sh does), so the effective input
of a recipe is its base and the merged option set: fragments that do not
conflict give the same recipe key in any order.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import UnknownName, UserError
from .paths import KCONFIGS, confined, inside

MAKE_BASES = ("tinyconfig", "allnoconfig", "defconfig", "allmodconfig", "allyesconfig",
              "kvm_guest.config", "xen.config")
SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Unmet:
    """An option a fragment asked for that olddefconfig did not keep."""
    symbol: str
    wanted: str
    got: str
    fragment: str
    reason: str


@dataclass
class Recipe:
    base: str
    fragments: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)   # merged, last wins
    origin: dict[str, str] = field(default_factory=dict)    # symbol -> fragment name
    base_text: str = ""                                      # a base config file's text

    @property
    def key(self) -> str:
        h = hashlib.sha256()
        h.update(self.base.encode() if self.base in MAKE_BASES else self.base_text.encode())
        for sym in sorted(self.options):
            h.update(f"\n{sym}={self.options[sym]}".encode())
        return h.hexdigest()

    def fragment_text(self) -> str:
        return "".join(f"# {s} is not set\n" if v == "n" else f"{s}={v}\n"
                       for s, v in self.options.items())


def fragment_path(name: str, roots: Sequence[Path] | None = None) -> Path:
    """A fragment by name (kconfigs/NAME.config) or by path; with ROOTS, a path
    must lie inside one of them (see paths.confined)."""
    named = KCONFIGS / f"{name}.config"
    if named.is_file() and inside(named, [KCONFIGS]):
        return named
    path = Path(name)
    if path.is_file():
        return confined(path, roots, "config fragment", name)
    known = sorted(str(p.relative_to(KCONFIGS).with_suffix("")) for p in KCONFIGS.rglob("*.config"))
    raise UnknownName("config fragment", name, known, "or give a fragment file")


def parse_config(text: str, name: str) -> dict[str, str]:
    """Options of a .config or fragment; 'n' for '# CONFIG_X is not set'. An
    error quotes no text of the file: it may be no Kconfig file at all."""
    options = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := SET.match(line):
            value = m.group(2)
            if not re.fullmatch(r'[ynm]|-?(0x)?[0-9a-fA-F]+|"([^"\\]|\\.)*"', value):
                raise UserError(f"{name}:{number}: bad value for {m.group(1)} (expected y, n, m, "
                                "a number or a quoted string)")
            options[m.group(1)] = value
        elif m := UNSET.match(line):
            options[m.group(1)] = "n"
        elif line and not line.startswith("#"):
            raise UserError(f"{name}:{number}: not a Kconfig line (is it a Kconfig fragment?)")
    return options


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise UserError(f"{name}: cannot read: {exc.strerror}") from None


def base_text(base: str, roots: Sequence[Path] | None = None) -> str:
    """The text of config base BASE ("" for a make target), checked line by line;
    with ROOTS, a file must lie inside one of them (see paths.confined)."""
    if base in MAKE_BASES:
        return ""
    path = Path(base)
    if not path.is_file():
        raise UserError(f"config base {base!r} is neither a make target "
                        f"({', '.join(MAKE_BASES)}) nor a config file")
    text = _read(confined(path, roots, "config base", base), base)
    parse_config(text, base)
    return text


def load(base: str, fragments: list[str], roots: Sequence[Path] | None = None) -> Recipe:
    """The recipe of BASE and FRAGMENTS; ROOTS: the folders their files must lie
    in (a spec's), None for paths the user named on the command line."""
    recipe = Recipe(base=base, fragments=list(fragments), base_text=base_text(base, roots))
    for name in fragments:
        path = fragment_path(name, roots)
        for sym, value in parse_config(_read(path, str(path)), str(path)).items():
            recipe.options.pop(sym, None)   # keep merge order: last one wins
            recipe.options[sym] = value
            recipe.origin[sym] = name
    return recipe


def normalized(config_text: str) -> str:
    """The settings of a .config, without its generated header and comments."""
    keep = [l for l in config_text.splitlines() if SET.match(l) or UNSET.match(l)]
    return "\n".join(keep) + "\n"


def config_digest(config_text: str) -> str:
    return hashlib.sha256(normalized(config_text).encode()).hexdigest()


def known_symbols(tree: Path) -> set[str]:
    """Every symbol some Kconfig file of the tree declares."""
    found: set[str] = set()
    decl = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)", re.M)
    for path in tree.rglob("Kconfig*"):
        if path.is_file():
            found.update(decl.findall(path.read_text(errors="replace")))
    return found


def unmet(recipe: Recipe, final_text: str, tree: Path) -> list[Unmet]:
    """Options asked for by fragments that the final config does not have."""
    final = parse_config(normalized(final_text), ".config")
    missing = []
    symbols: set[str] | None = None
    for sym, wanted in recipe.options.items():
        got = final.get(sym, "n")
        if got == wanted:
            continue
        if symbols is None:
            symbols = known_symbols(tree)
        if sym.removeprefix("CONFIG_") not in symbols:
            reason = "no such symbol in this kernel"
        elif wanted == "m" and got == "y":
            reason = "forced built-in (a y-only dependency or select)"
        else:
            reason = "dependencies not met or selected otherwise"
        missing.append(Unmet(sym, wanted, got, recipe.origin.get(sym, "?"), reason))
    return missing


def script(recipe: Recipe, make: str) -> str:
    """Shell that leaves the resolved .config in /out (fragment at /out/.pvm-fragment)."""
    start = (f"{make} {recipe.base}" if recipe.base in MAKE_BASES
             else "cp /out/.pvm-base /out/.config")
    return (f"set -e\necho '@@pvmatrix-step configure'\n{start}\n"
            "cd /out && /src/scripts/kconfig/merge_config.sh -m -O /out /out/.config /out/.pvm-fragment\n"
            f"{make} olddefconfig\n")
