"""No import cycles in pvmatrix, between modules or between stage packages,
counting function-local imports (parsed with ast, nothing is imported).

Function-local imports are allowed only where they keep CLI start-up fast:
pvmatrix/cli.py and the */cli.py modules that register subcommands. Those
are skipped here because the command line sits on top of every stage."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pvmatrix"
STAGES = ("sources", "configure", "build", "artifacts", "analyze", "boot", "matrix",
          "results", "report", "bisect", "cli")
SHARED = ("errors", "exitcodes", "records", "catalog", "settings", "paths", "kernel", "digest", "aptsources",
          "__init__")
PART_OF = {"lists": "cli"}        # top-level modules of a stage: `pvmatrix list` is the CLI's


def module_name(path: Path) -> str:
    parts = ["pvmatrix", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The pvmatrix modules NAME imports, anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, path.name == "__init__.py")
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:          # a name inside a module: the module
                t = t.rpartition(".")[0]
            if t.startswith("pvmatrix") and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def _is_cli(name: str) -> bool:
    return name == "pvmatrix.cli" or name.endswith(".cli")


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle in EDGES (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state and (found := visit(n)):
            return found
    return None


def stage_of(module: str) -> str | None:
    part = module.split(".")[1] if "." in module else "__init__"
    part = PART_OF.get(part, part)
    return part if part in STAGES else None


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {s: set() for s in STAGES}
    for src, targets in edges.items():
        if _is_cli(src) and src != "pvmatrix.cli":
            continue          # a stage's cli registers commands: it sits on top, with pvmatrix.cli
        a = stage_of(src)
        for t in targets:
            b = stage_of(t)
            if a and b and a != b:
                packages[a].add(b)
    return packages


def test_every_top_level_module_is_a_stage_or_shared():
    tops = {m.split(".")[1] for m in modules() if "." in m}
    assert tops <= set(STAGES) | set(SHARED) | set(PART_OF), sorted(tops - set(STAGES) - set(SHARED))


def test_no_module_cycle():
    assert cycle(graph()) is None


def test_no_package_cycle():
    assert cycle(package_graph(graph())) is None


def test_shared_modules_import_no_stage():
    for src, targets in graph().items():
        if src.split(".")[-1] in SHARED and src.count(".") == 1:
            assert not {stage_of(t) for t in targets} - {None}, (src, targets)




def function_local_imports() -> list[str]:
    """pvmatrix imports made inside functions, outside the command-line modules."""
    found = []
    for name, path in modules().items():
        if _is_cli(name):
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [f"{name}:{n.lineno}" for n in ast.walk(fn)
                          if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("pvmatrix"))
                          or isinstance(n, ast.Import) and any(a.name.startswith("pvmatrix") for a in n.names)]
    return found


def test_lazy_imports_only_in_the_command_line():
    """cli.py and */cli.py import lazily to start fast; elsewhere a function-local
    import would only hide a dependency (or a cycle)."""
    assert function_local_imports() == []


if __name__ == "__main__":
    g = graph()
    print("module cycle:", cycle(g))
    for a, bs in sorted(package_graph(g).items()):
        print(a, "->", sorted(bs))
    print("package cycle:", cycle(package_graph(g)))
