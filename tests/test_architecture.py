"""The package's layers: its import graph, read from the source (module-level and function-level
imports alike, since a function-level import is the same dependency deferred), has no cycle
(issue 14): ``values`` beneath ``rules``, dispatch (``ad``) above them."""
import ast
import os

import networkx as nx

ROOT = os.path.join(os.path.dirname(__file__), os.pardir, "torchzygote")

def _modules():
    out = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith("__init__") else rel] = os.path.join(dirpath, f)
    return out


def import_graph() -> nx.DiGraph:
    mods = _modules()
    g = nx.DiGraph()
    for mod, path in mods.items():
        g.add_node(mod)
        pkg = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(open(path).read())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.split(".") if pkg else []
                base = base[:len(base) - node.level + 1]
                head = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{head}.{a.name}".lstrip(".") if f"{head}.{a.name}".lstrip(".") in mods else head
                           for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torchzygote"):
                head = node.module[len("torchzygote."):] if node.module != "torchzygote" else ""
                targets = [f"{head}.{a.name}".lstrip(".") if f"{head}.{a.name}".lstrip(".") in mods else head
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name[len("torchzygote."):] for a in node.names if a.name.startswith("torchzygote.")]
            for t in targets:
                if t in mods and t != mod and t != "":   # the package itself (__init__) is the entry point
                    g.add_edge(mod, t)
    return g


def test_no_import_cycles():
    g = import_graph()
    sccs = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not sccs, f"import cycles: {sccs}"


def test_values_layer_is_beneath_rules_and_ad():
    g = import_graph()
    up = [(a, b) for a, b in g.edges if a.startswith("values") and b.split(".")[0] in ("rules", "ad", "api")]
    assert not up, f"the values layer imports from above it: {up}"
