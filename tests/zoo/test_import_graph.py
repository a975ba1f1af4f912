"""The zoo's modules import each other without a circle, and the callbacks do not import the zoo.

Read from the source with ``ast``: every ``import`` statement counts, the ones
inside functions too (the circle this guards against, backbones -> build ->
backbones and hub -> registry -> hub, was made of function-level imports).
"""

import ast
import os

import keras_priors

PACKAGE_DIR = os.path.dirname(keras_priors.__file__)


def imported_modules(path: str, package: str) -> set:
    """Dotted names of the modules ``path`` imports anywhere in its body (``from p import m`` gives ``p.m``)."""
    tree = ast.parse(open(path, encoding="utf8").read(), filename=path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph(package_dir: str, package: str) -> dict:
    """``{module: {modules of the same package it imports}}`` for the ``.py`` files directly in ``package_dir``."""
    modules = {f[:-3] for f in os.listdir(package_dir) if f.endswith(".py") and f != "__init__.py"}
    graph = {}
    for name in sorted(modules):
        targets = imported_modules(os.path.join(package_dir, f"{name}.py"), package)
        graph[name] = {m for m in modules if f"{package}.{m}" in targets and m != name}
    return graph


def find_cycle(graph: dict):
    """One import circle as ``[a, b, ..., a]``, or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_checker_finds_a_function_level_circle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import c\n")
    (pkg / "c.py").write_text("def g():\n    from . import a\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = import_graph(str(pkg), "pkg")
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"c"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(str(pkg), "pkg")) is None


def test_the_zoo_has_no_import_circle():
    graph = import_graph(os.path.join(PACKAGE_DIR, "zoo"), "keras_priors.zoo")
    assert {"backbones", "build", "hub", "registry", "weights"} <= set(graph)
    assert graph["weights"] == set(), "zoo.weights is the bottom of the zoo: it imports no other zoo module"
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle in keras_priors.zoo: {' -> '.join(cycle)}"


def test_the_callbacks_do_not_import_the_zoo():
    callbacks = os.path.join(PACKAGE_DIR, "callbacks")
    for f in sorted(os.listdir(callbacks)):
        if f.endswith(".py"):
            imported = imported_modules(os.path.join(callbacks, f), "keras_priors.callbacks")
            upward = sorted(m for m in imported if m == "keras_priors.zoo" or m.startswith("keras_priors.zoo."))
            assert not upward, f"callbacks/{f} imports {upward}"
