"""The layering README's "How it works" writes down is the one the imports keep, with no import cycle."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orchestrator"
LAYER_LINE = re.compile(r"^\d+\. \*\*([^*]+)\*\*[^:]*: (.+)$", re.M)


def layers() -> dict[str, int]:
    """module -> its layer's number, from the README's list (1 is the lowest)."""
    section = (ROOT / "README.md").read_text().split("## How it works", 1)[1].split("\n## ", 1)[0]
    found = {}
    for number, (_, modules) in enumerate(LAYER_LINE.findall(section), start=1):
        for module in re.findall(r"`(\w+)`", modules):
            if module in found:
                raise AssertionError(f"{module} is listed twice")
            found[module] = number
    return found


def imports() -> dict[str, set[str]]:
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    graph = {}
    for path in PACKAGE.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "orchestrator":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orchestrator."):
                imported.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("orchestrator.")}
        graph[path.stem] = (imported & modules) - {path.stem}
    return graph


def test_every_module_is_in_one_layer():
    listed = set(layers())
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert listed == modules, f"not listed: {sorted(modules - listed)}; listed but gone: {sorted(listed - modules)}"


def test_no_module_imports_from_a_layer_below_it_in_the_list():
    layer = layers()
    against = [f"{module} ({layer[module]}) imports {imported} ({layer[imported]})"
               for module, imported_set in imports().items() if module in layer
               for imported in sorted(imported_set) if layer[imported] > layer[module]]
    assert not against, against


def test_no_import_cycle():
    graph = imports()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                pytest.fail("import cycle: " + " -> ".join(path[path.index(imported):] + [imported]))
            if imported not in state:
                visit(imported, path + [imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
