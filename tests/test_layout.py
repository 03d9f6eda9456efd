"""The package's shape: one direction through the code (compute -> render -> cli), no import circles,
thin command modules. Read from the source with ast, every import counted, deferred ones too."""

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).parent.parent / "modscope"
DISPLAY_HOOKS = {"__rich__", "_repr_mimebundle_", "draw"}  # may import a renderer lazily (design.md)


def _module(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """(imported modscope module, inside a display hook) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, hook):
        for child in ast.iter_child_nodes(node):
            inside = hook or (isinstance(child, ast.FunctionDef) and child.name in DISPLAY_HOOKS)
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("modscope"):
                names = [f"{child.module}.{a.name}" for a in child.names]
                found.extend(
                    (n if (PACKAGE.parent / (n.replace(".", "/") + ".py")).exists() else child.module, inside)
                    for n in names
                )
            elif isinstance(child, ast.Import):
                found.extend((a.name, inside) for a in child.names if a.name.startswith("modscope"))
            visit(child, inside)

    visit(tree, False)
    return found


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module):
    return (
        "cli"
        if module.startswith(("modscope.cli", "modscope.__main__"))
        else "render"
        if module.startswith("modscope.render")
        else "api"
        if module == "modscope"
        else "compute"
    )


def test_compute_imports_neither_render_nor_cli():
    wrong = [
        (m, i)
        for m, p in MODULES.items()
        if _layer(m) == "compute"
        for i, hook in _imports(p)
        if _layer(i) in ("cli", "render") and not hook
    ]
    assert not wrong


def test_render_imports_no_cli():
    assert not [
        (m, i) for m, p in MODULES.items() if _layer(m) == "render" for i, _ in _imports(p) if _layer(i) == "cli"
    ]


def test_no_import_circles():
    graph = nx.DiGraph()
    for module, path in MODULES.items():
        for imported, hook in _imports(path):
            if not hook and imported != module and not module.startswith(imported + "."):
                graph.add_edge(module, imported)
    assert list(nx.simple_cycles(graph)) == []


def test_command_modules_are_thin():
    for path in (PACKAGE / "cli").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 120, path.name


def test_no_module_is_huge():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 340, sizes  # roles.py: one idea, the classification
