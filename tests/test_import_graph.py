"""No import circles among handtrack's modules.

Every `import handtrack...`, `from handtrack... import` and relative import counts, at module level and inside
functions alike: an import deferred into a function still ties the two modules together (it only hides the
circle until that function runs). A name imported from a package counts as the submodule of that name where
there is one, else as the package itself (its __init__); importing a module also runs the packages above it, so
those count too, except the importer's own.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# pyproject's package-dir: handtrack.<name> lives in the folder <name>
PACKAGES = ("app", "inference", "training", "models_onnx", "calibration")


def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of the handtrack packages (a package's name -> its __init__.py)."""
    modules = {}
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            parts = ("handtrack",) + path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The handtrack modules that the module `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    # Importing a.b.c first runs the packages a and a.b, except the importer's own: those are already running.
    above = {m.rsplit(".", k)[0] for m in found for k in range(1, m.count(".") + 1)}
    found |= {m for m in above if not name.startswith(m + ".")}
    return {m for m in found if m in modules and m != name}


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The strongly connected components of more than one module in the import graph (Tarjan), each sorted."""
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(cycles)


def test_the_graph_sees_deferred_and_relative_imports():
    modules = module_files()
    assert "handtrack.inference.camera" in imported_modules(
        "handtrack.inference.crop", modules["handtrack.inference.crop"], modules)  # `from .camera import ...`
    assert "handtrack.app.commands.bench_tracker" in imported_modules(
        "handtrack.app.commands.bench", modules["handtrack.app.commands.bench"], modules)  # inside a function


def test_no_import_cycles():
    cycles = import_cycles(module_files())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
