"""The package's layers: its import graph, read from the source (module-level and function-level
imports alike, since a function-level import is the same dependency deferred).

Issue 14 asks for no cycles at all. Until then the strongly connected components left are listed
in ``KNOWN`` and this test is a ratchet: a new cycle fails, and so does a listed one that is gone
(take it off the list)."""
import ast
import os

import networkx as nx

ROOT = os.path.join(os.path.dirname(__file__), os.pardir, "torchzygote")

KNOWN = {
    # container pullbacks and the closure form of rules live in both layers
    frozenset({"ad.runtime", "rules.containers", "rules.numpy_rules", "rules.registry"}),
}


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


def test_import_cycles_only_shrink():
    g = import_graph()
    sccs = {frozenset(c) for c in nx.strongly_connected_components(g) if len(c) > 1}
    new = [sorted(c) for c in sccs if not any(c <= k for k in KNOWN)]
    assert not new, f"new import cycles: {new}"
    gone = [sorted(k) for k in KNOWN if not any(c == k for c in sccs)]
    assert not gone, f"these cycles are gone or smaller: update KNOWN (issue 14): {gone}"
