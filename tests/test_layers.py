"""The layers of docs/architecture.md, checked on the code rather than remembered.

Every import in the package (module level and inside functions) is read with ast; the graph
between char_pipeline's modules must have no circle, and no edge may cross a layer the wrong
way. A fresh interpreter that imports the API app must not have loaded the Dagster graph.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import char_pipeline

PACKAGE = Path(char_pipeline.__file__).parent
GRAPH = ("char_pipeline.assets", "char_pipeline.sensors", "char_pipeline.schedules")
GRAPH_MODULES = (*GRAPH, "char_pipeline.definitions")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module name ``path`` imports, anywhere in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # `from char_pipeline import catalog` imports the module char_pipeline.catalog.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def package_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imports_of(path) if m in modules and m != name}
    return graph


def third_party(path: Path) -> set[str]:
    return {m.split(".")[0] for m in imports_of(path) if not m.startswith("char_pipeline")}


def in_layer(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_no_import_circles():
    graph = package_graph()
    # Package __init__ modules are imported implicitly by their children; only real edges count.
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(" → ".join(c) for c in circles)


def test_layers_are_respected():
    graph = package_graph()
    wrong = []
    for module, targets in graph.items():
        for target in targets:
            if in_layer(module, "char_pipeline.engine") and not in_layer(
                target, "char_pipeline.engine"
            ):
                wrong.append(f"{module} → {target} (engine imports only engine)")
            if in_layer(module, "char_pipeline.services") and any(
                in_layer(target, layer)
                for layer in (*GRAPH_MODULES, "char_pipeline.api", "char_pipeline.resources")
            ):
                wrong.append(f"{module} → {target} (services know no door)")
            if in_layer(module, "char_pipeline.api") and any(
                in_layer(target, layer) for layer in GRAPH_MODULES
            ):
                wrong.append(f"{module} → {target} (the API does not carry the asset graph)")
    assert not wrong, "\n".join(sorted(wrong))


def test_services_and_engine_import_neither_fastapi_nor_dagster():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if in_layer(module, "char_pipeline.services") or in_layer(module, "char_pipeline.engine"):
            banned = third_party(path) & {"fastapi", "starlette", "dagster", "uvicorn"}
            if banned:
                wrong.append(f"{module} imports {sorted(banned)}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_imports_inside_functions():
    # renderers.py imports the mesh renderer inside get_renderer (libigl is heavy).
    assert "char_pipeline.engine.deform" in imports_of(PACKAGE / "engine" / "renderers.py")
    assert "os" in third_party(PACKAGE / "engine" / "errors.py")


def test_the_api_process_loads_no_asset_graph(tmp_path):
    probe = (
        "import json, sys\n"
        "from char_pipeline.api.app import create_app\n"
        "create_app()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"CHAR_PIPELINE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    graph = [m for m in loaded if any(in_layer(m, layer) for layer in GRAPH_MODULES)]
    assert graph == [], graph
    # Not even Dagster itself: the API builds its stores from settings and asks the
    # instance (for daemon heartbeats) only when /readyz is called.
    assert not [m for m in loaded if m == "dagster" or m.startswith("dagster.")]
