"""Matrix specs (TOML): which kernels, built how, booted under which Xen, on
which hardware, in which roles. Every error names the file, the key and what
was expected.

    mirror = "http://HOST/debian"     # the Debian archive (default: the host's apt sources)

    [matrix]
    name = "default"                  # runs of one name are compared (default: file stem)
    xen = ["4.17"]
    hardware = ["default"]            # profiles under pvmatrix/data/hardware/, or TOML paths
    boot_hardware = ["default"]       # the profiles booted (default: all); the rest analyzed only
    machines = ["dell-poweredge-860"] # real machines, a column each: "N/M devices covered" per
                                      # kernel (pvmatrix/data/machines, hardware profiles, or
                                      # lspci dumps in the spec's folder)
    roles = ["baremetal", "dom0", "domU-pv", "domU-pvh"]
    dom0_fallback = "debian-6.1-generic"   # hosts the domUs of kernels that cannot be dom0

    [[kernel]]                        # built from source
    name = "debian-6.1-xen-min"
    source = "debian:linux-source-6.1@bookworm"
    base = "tinyconfig"
    fragments = ["boot", "xen-domu"]
    toolchain = "auto"

    [[kernel]]                        # a prebuilt Debian kernel package
    name = "debian-6.1-generic"
    package = "debian:linux-image-amd64@bookworm"

    [[kernel]]                        # a ladder: one row per kernel ABI of the suite
    name = "bpo"                      # rows bpo-6.18.5, bpo-6.18.9, ...
    package = "debian:linux-image-amd64@trixie-backports"
    ladder = true                     # every ABI; or, instead, only a range:
    versions = ">=6.18,<7.1"          # PEP 440 specifiers over the upstream version
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog, configure, settings, sources
from ..analyze import machines
from ..aptsources import check_url
from ..errors import UserError
from ..paths import KCONFIGS, SPECS
from ..sources import ladder, packages

DEFAULT = SPECS / "default.toml"
KERNEL_KEYS = {"name", "source", "package", "base", "fragments", "toolchain", "ladder", "versions"}
MATRIX_KEYS = {"name", "xen", "hardware", "boot_hardware", "roles", "dom0_fallback", "machines"}
# a kernel name becomes part of paths and cell ids: no '/', no leading '.' or '-'
KERNEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


@dataclass
class KernelSpec:
    """One row of the matrix: a kernel built from SOURCE, or a prebuilt PACKAGE."""
    name: str
    source: str | None = None
    base: str = "tinyconfig"
    fragments: list[str] = field(default_factory=list)
    toolchain: str = "auto"
    package: str | None = None
    ladder: bool = False             # PACKAGE is a flavour: one row per ABI of its suite
    versions: str | None = None      # the ladder's range (PEP 440 specifiers), else every ABI

    @property
    def prebuilt(self) -> bool:
        return self.package is not None


@dataclass
class Spec:
    path: Path
    kernels: list[KernelSpec]
    name: str = ""
    xen: list[str] = field(default_factory=lambda: [catalog.default("xen").name])
    hardware: list[str] = field(default_factory=lambda: ["default"])
    roles: list[str] = field(default_factory=lambda: catalog.names("role"))
    dom0_fallback: str | None = None
    boot_hardware: list[str] | None = None   # the profiles booted (None: every profile)
    machines: list[str] = field(default_factory=list)   # real machines (analyze/machines.py)
    mirror: str | None = None          # the Debian archive, unless --mirror names one
    text: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def booted(self) -> list[str]:
        """The hardware profiles boots run on: boot_hardware, else every profile (a
        real machine's profile QEMU cannot emulate is worth its static coverage)."""
        return self.hardware if self.boot_hardware is None else self.boot_hardware

    def kernel(self, name: str) -> KernelSpec:
        return next(k for k in self.kernels if k.name == name)

    def run_settings(self) -> settings.Settings:
        """The settings in effect with the mirror chosen once for the whole run,
        so every task uses it, here or on a worker: --mirror, else this spec's,
        else the host's apt sources'."""
        now = settings.current()
        with settings.use(dataclasses.replace(now, mirror=now.mirror or self.mirror)):
            return dataclasses.replace(now, mirror=catalog.mirror())


def _want(path: Path, key: str, value, kind, what: str, item=None):
    if not isinstance(value, kind) or (item and not all(isinstance(x, item) for x in value)):
        raise UserError(f"{path}: {key}: expected {what}, got {value!r}")
    return value


def _checked(path: Path, key: str, check, *args) -> None:
    """CHECK(*ARGS), its UserError (an unknown name, a missing ref or file, a
    broken fragment) behind the file and the key, as every spec error is."""
    try:
        check(*args)
    except UserError as exc:
        raise UserError(f"{path}: {key}: {exc}") from None


def _name(path: Path, where: str, entry: dict) -> str:
    name = _want(path, f"{where}.name", entry.get("name"), str, "a string")
    if not KERNEL_NAME.fullmatch(name):
        raise UserError(f"{path}: {where}.name: expected letters, digits, '.', '_' or '-' "
                        f"(not first: '.', '-'; at most 64), got {name!r}")
    return name


def _kernel(path: Path, where: str, entry) -> KernelSpec:
    _want(path, where, entry, dict, "a table")
    unknown = set(entry) - KERNEL_KEYS
    if unknown:
        raise UserError(f"{path}: {where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = _name(path, where, entry)
    if "package" in entry:
        package = _want(path, f"{where}.package", entry["package"], str,
                        "a prebuilt kernel package, e.g. 'debian:linux-image-amd64@bookworm'")
        if not package.startswith("debian:linux-image"):
            raise UserError(f"{path}: {where}.package: expected 'debian:linux-image-...[@SUITE]', "
                            f"got {package!r}")
        extra = set(entry) & {"source", "base", "fragments", "toolchain"}
        if extra:
            raise UserError(f"{path}: {where}: a prebuilt package takes no {', '.join(sorted(extra))}")
        return _ladder(path, where, entry, KernelSpec(name=name, package=package))
    if set(entry) & {"ladder", "versions"}:
        raise UserError(f"{path}: {where}: ladder and versions take a prebuilt package "
                        "(package = 'debian:linux-image-FLAVOUR@SUITE'), not a source")
    return KernelSpec(
        name=name,
        source=_want(path, f"{where}.source", entry.get("source"), str, "a source string"),
        base=_want(path, f"{where}.base", entry.get("base", "tinyconfig"), str, "a string"),
        fragments=_want(path, f"{where}.fragments", entry.get("fragments", []), list,
                        "a list of fragment names", item=str),
        toolchain=_want(path, f"{where}.toolchain", entry.get("toolchain", "auto"), str,
                        "a toolchain name"))


def _ladder(path: Path, where: str, entry: dict, k: KernelSpec) -> KernelSpec:
    """K with its ladder keys: `versions` makes a ladder of its own; `ladder =
    false` with a range says two things at once."""
    k.ladder = _want(path, f"{where}.ladder", entry.get("ladder", "versions" in entry), bool,
                     "true or false")
    if "versions" in entry:
        k.versions = _want(path, f"{where}.versions", entry["versions"], str,
                           "version specifiers, e.g. '>=6.18,<7.1'")
        if not k.ladder:
            raise UserError(f"{path}: {where}: versions makes a ladder; drop ladder = false")
    if k.ladder:
        _checked(path, f"{where}.package", ladder.check, k.package, k.versions)
    return k


def _rows(path: Path, where: str, k: KernelSpec) -> list[KernelSpec]:
    """K's rows: itself, or one per ABI of its ladder (this asks apt)."""
    if not k.ladder:
        return [k]
    try:
        rungs = ladder.ladder(k.package, k.versions)
    except UserError as exc:
        raise UserError(f"{path}: {where}: {exc}") from None
    rows = []
    for name, rung in zip(ladder.row_names(k.name, rungs), rungs):
        if not KERNEL_NAME.fullmatch(name):
            raise UserError(f"{path}: {where}.name: row {name!r} of the ladder is not a "
                            "valid kernel name (at most 64 letters, digits, '.', '_', '-')")
        rows.append(KernelSpec(name=name, package=rung.spec))
    return rows


def _inputs(path: Path, where: str, k: KernelSpec) -> None:
    """Everything kernel K names exists, before any work: its package or source,
    toolchain, base and fragments (inside kconfigs/ or the spec's folder)."""
    if k.prebuilt:
        _checked(path, f"{where}.package", packages.check, k.package)
        return
    _checked(path, f"{where}.source", sources.check, k.source)
    if k.toolchain != "auto":
        _checked(path, f"{where}.toolchain", catalog.get, "toolchain", k.toolchain)
    roots = [KCONFIGS, path.resolve().parent]
    _checked(path, f"{where}.base", configure.base_text, k.base, roots)
    for fragment in k.fragments:
        _checked(path, f"{where}.fragments", configure.load, "tinyconfig", [fragment], roots)


def _matrix(path: Path, data, spec: Spec) -> None:
    _want(path, "matrix", data, dict, "a [matrix] table")
    unknown = set(data) - MATRIX_KEYS
    if unknown:
        raise UserError(f"{path}: matrix: unknown key(s) {', '.join(sorted(unknown))}")
    spec.name = _want(path, "matrix.name", data.get("name", spec.name), str, "a string")
    spec.xen = _want(path, "matrix.xen", data.get("xen", spec.xen), list,
                     f"a list of Xen versions ({', '.join(catalog.names('xen'))})", item=str)
    for x in spec.xen:
        _checked(path, "matrix.xen", catalog.get, "xen", x)
    spec.hardware = _want(path, "matrix.hardware", data.get("hardware", spec.hardware), list,
                          "a list of hardware profile names", item=str)
    for h in spec.hardware:
        _checked(path, "matrix.hardware", catalog.profile, h, [path.resolve().parent])
    if "boot_hardware" in data:
        spec.boot_hardware = _want(path, "matrix.boot_hardware", data["boot_hardware"], list,
                                   "a list of profiles out of matrix.hardware", item=str)
        if extra := [h for h in spec.boot_hardware if h not in spec.hardware]:
            raise UserError(f"{path}: matrix.boot_hardware: expected profiles out of "
                            f"matrix.hardware ({', '.join(spec.hardware)}), got {extra[0]!r}")
    _machines(path, data, spec)
    roles = catalog.names("role")
    spec.roles = _want(path, "matrix.roles", data.get("roles", spec.roles), list,
                       f"a list of roles ({', '.join(roles)})", item=str)
    for r in spec.roles:
        _checked(path, "matrix.roles", catalog.get, "role", r)
    if spec.roles and (not spec.booted):
        raise UserError(f"{path}: matrix.hardware: expected at least one profile to boot on")
    if any(catalog.get("role", r).xen for r in spec.roles) and not spec.xen:
        raise UserError(f"{path}: matrix.xen: expected at least one Xen version for the Xen roles")
    fallback = data.get("dom0_fallback")
    if fallback is not None:
        spec.dom0_fallback = _want(path, "matrix.dom0_fallback", fallback, str, "a kernel name")


def _machines(path: Path, data: dict, spec: Spec) -> None:
    """matrix.machines: each one readable now, and one column name each."""
    spec.machines = _want(path, "matrix.machines", data.get("machines", []), list,
                          "a list of machines (names or lspci dumps)", item=str)
    for m in spec.machines:
        _checked(path, "matrix.machines", machines.load, m, [path.resolve().parent])
    labels = [machines.label(m) for m in spec.machines]
    if clash := next((x for x, n in Counter(labels).items() if n > 1), None):
        raise UserError(f"{path}: matrix.machines: two machines named {clash!r}")


def load(path: str | Path | None) -> Spec:
    """Read and check the spec at PATH (default: the shipped specs/default.toml)."""
    path = Path(path) if path else DEFAULT
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError as exc:
        raise UserError(f"spec {path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"spec {path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"kernel", "matrix", "mirror"}
    if unknown:
        raise UserError(f"{path}: unknown table(s) {', '.join(sorted(unknown))} "
                        "(expected mirror, [matrix] and [[kernel]])")
    mirror = data.get("mirror")
    if mirror is not None:
        mirror = check_url(_want(path, "mirror", mirror, str, "a mirror URL"), f"{path}: mirror")
    entries = _want(path, "kernel", data.get("kernel"), list, "a list of [[kernel]] tables")
    if not entries:
        raise UserError(f"{path}: kernel: expected at least one [[kernel]], got []")
    kernels, seen = [], set()
    for i, entry in enumerate(entries):
        k = _kernel(path, f"kernel[{i}]", entry)
        if k.name in seen:
            raise UserError(f"{path}: kernel[{i}].name: duplicate kernel name {k.name!r}")
        seen.add(k.name)
        kernels.append(k)
    spec = Spec(path, kernels, name=path.stem, mirror=mirror, text=text)
    _matrix(path, data.get("matrix", {}), spec)
    now = settings.current()
    with settings.use(dataclasses.replace(now, mirror=now.mirror or spec.mirror)):
        rows = [(i, row) for i, k in enumerate(kernels) for row in _rows(path, f"kernel[{i}]", k)]
        spec.kernels, seen = [row for _, row in rows], {row.name for _, row in rows}
        if clash := next((n for n, c in Counter(r.name for _, r in rows).items() if c > 1), None):
            raise UserError(f"{path}: kernel: a ladder's row {clash!r} is also another kernel's name")
        if spec.dom0_fallback is not None and spec.dom0_fallback not in seen:
            raise UserError(f"{path}: matrix.dom0_fallback: expected the name of a [[kernel]], "
                            f"got {spec.dom0_fallback!r}")
        for i, k in rows:                    # after the syntax: these may ask git or apt
            if not kernels[i].ladder:        # a ladder's rows came from the suite's lists
                _inputs(path, f"kernel[{i}]", k)
    return spec
