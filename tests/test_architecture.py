"""The package's layers: its import graph, read from the source (module-level and function-level
imports alike, since a function-level import is the same dependency deferred), has no cycle
(issue 14): ``values`` beneath ``rules``, dispatch (``ad``) above them; and its modules and
functions are small enough to read whole."""
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


# ---------------------------------------------------------------- sizes (issue 14)
# No module over 600 lines, no function over 80 (from its ``def`` line to its last line): a module
# with one job, and a function whose pieces have names of their own, can be read whole.

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

# Declarative rule tables are long by nature (one entry per rule, as PyTorch's derivatives.yaml):
# exempt, whatever their length. Their backward helpers belong in modules of their own.
RULE_TABLES = {
    "rules.tensor": "torch functions, Tensor methods, torch.nn.functional, torch.linalg: one entry per rule",
    "rules.numpy_rules": "NumPy's core ufunc and reduction tables: one entry per rule",
    "rules.numpy_ufuncs": "NumPy's ufunc tables and scipy.special: one entry per rule",
    "rules.numpy_reduce": "NumPy's reductions: one entry per rule",
    "rules.numpy_shape": "NumPy's shape functions: one entry per rule",
    "rules.numpy_linalg": "NumPy's linear algebra: one entry per rule",
}

def _function_sizes(tree: ast.AST, prefix: str = ""):
    """``(qualified name, lines)`` of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                yield name, node.end_lineno - node.lineno + 1
            yield from _function_sizes(node, name + ".")
        else:
            yield from _function_sizes(node, prefix)


def _sizes():
    modules, functions = {}, {}
    for mod, path in _modules().items():
        with open(path) as f:
            src = f.read()
        modules[mod] = len(src.splitlines())
        for name, n in _function_sizes(ast.parse(src)):
            functions[f"{mod}:{name}"] = n
    return modules, functions


def test_module_sizes():
    modules, _ = _sizes()
    assert not set(RULE_TABLES) - set(modules), "rule tables listed that do not exist"
    long = sorted(f"{m} ({n} lines)" for m, n in modules.items() if n > MAX_MODULE_LINES and m not in RULE_TABLES)
    assert not long, f"modules over {MAX_MODULE_LINES} lines: split them by job: {long}"


def test_function_sizes():
    _, functions = _sizes()
    long = sorted(f"{f} ({n} lines)" for f, n in functions.items() if n > MAX_FUNCTION_LINES)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: give their pieces names: {long}"
