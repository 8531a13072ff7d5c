"""The package's import graph, read from the source with ast: layered, and without a circle.

core/ (NumPy only) < scene/ (Blender geometry) < live, animation/ < ui/, cli/: nothing imports
a module of a higher layer, ui/ never reaches into the command line, core/ never imports bpy,
and no two modules import each other, directly or around a loop (imports inside functions
count too: a circle there is still a circle).
"""

import ast
import os

from conftest import ROOT

PACKAGE = "nnviz_blender"
PKG_DIR = os.path.join(ROOT, PACKAGE)
BLENDER = {"bpy", "bpy_extras", "mathutils", "bmesh", "gpu"}


def _modules() -> dict[str, str]:
    """Dotted module name -> file, for every .py file of the package."""
    found = {}
    for folder, _dirs, files in os.walk(PKG_DIR):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join(rel)] = os.path.join(folder, f)
    return found


def _imports(module: str, path: str, known: set[str]) -> tuple[set[str], set[str]]:
    """(package modules, outside top-level names) that `module` imports anywhere in its file."""
    is_pkg = path.endswith("__init__.py")
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    inside, outside = set(), set()
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = ".".join(base[: len(base) - node.level + 1])
                target = f"{parent}.{node.module}" if node.module else parent
            else:
                target = node.module or ""
            # `from pkg import mod` imports the module pkg.mod when there is one
            names = [
                f"{target}.{a.name}" if f"{target}.{a.name}" in known else target
                for a in node.names
            ]
        else:
            continue
        for name in names:
            if name.split(".")[0] == PACKAGE:
                while name not in known:
                    name = name.rsplit(".", 1)[0]
                if name != module:
                    inside.add(name)
            else:
                outside.add(name.split(".")[0])
    return inside, outside


def _graph():
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _layer(module: str) -> int:
    parts = module.split(".")[1:]
    top = parts[0] if parts else ""
    return {"core": 0, "paths": 0, "scene": 1, "inputs": 1, "live": 2, "animation": 2}.get(
        top, 3 if top in ("ui", "cli") else 4
    )


def test_the_walk_sees_function_level_and_relative_imports():
    graph = _graph()
    assert "nnviz_blender.scene.attributes" in graph["nnviz_blender.inputs"][0]
    assert "nnviz_blender.core.values" in graph["nnviz_blender.scene.network"][0]
    assert "nnviz_blender.ui" in graph["nnviz_blender"][0]  # imported inside register()
    assert "bpy" in graph["nnviz_blender.cli.render"][1]  # imported inside run()


def test_no_module_imports_a_higher_layer():
    wrong = [
        f"{m} -> {t}"
        for m, (inside, _) in _graph().items()
        for t in inside
        if _layer(t) > _layer(m) and m != PACKAGE
    ]
    assert not wrong, wrong


def test_core_is_numpy_only_and_ui_does_not_use_the_command_line():
    graph = _graph()
    for m, (inside, outside) in graph.items():
        if m.startswith(f"{PACKAGE}.core"):
            assert not outside & BLENDER, (m, outside & BLENDER)
            assert all(t.startswith(f"{PACKAGE}.core") for t in inside), (m, inside)
        if m.startswith(f"{PACKAGE}.ui"):
            assert not any(t.startswith(f"{PACKAGE}.cli") for t in inside), (m, inside)


def test_no_import_circle():
    graph = {m: inside for m, (inside, _) in _graph().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(t) :] + [t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
