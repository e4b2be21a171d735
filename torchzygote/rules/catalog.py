"""The NumPy and SciPy callables with gradient rules, by public name: README.rst's list is this
module's output (``python -m torchzygote.rules.catalog --write README.rst``), and a test keeps the two
equal, so the documented coverage is the registry's."""
from __future__ import annotations

import importlib
import sys
import textwrap
from typing import Dict, List, Optional, Tuple

from .registry import TABLE

# where public names are looked up, with the prefix README uses for each
NAMESPACES = (("numpy", "np"), ("numpy.linalg", "np.linalg"), ("numpy.fft", "np.fft"), ("numpy.random", "np.random"),
              ("scipy.special", "scipy.special"), ("scipy.linalg", "scipy.linalg"))
UFUNC_METHODS = ("outer", "reduce", "accumulate", "at", "reduceat")
ORDER = ("np", "np.ndarray", "np.generic", "ufunc methods", "np.linalg", "np.fft", "np.random", "np.random.Generator",
         "np.random.RandomState", "scipy.special", "scipy.linalg")
BEGIN, END = ".. numpy-rules-begin", ".. numpy-rules-end"


def _public_names() -> Dict[int, Tuple[str, str]]:
    """id of each public callable -> (namespace, name). A callable is named by its own ``__name__``
    where that is public, so ``np.amax``, an alias of ``np.max`` in NumPy 2, is listed once."""
    import numpy as np
    names: Dict[int, Tuple[str, str]] = {}
    for module, prefix in NAMESPACES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        found: Dict[int, List[str]] = {}
        for attr in dir(mod):
            obj = getattr(mod, attr, None)
            if not attr.startswith("_") and callable(obj):
                found.setdefault(id(obj), []).append(attr)
        for key, attrs in found.items():
            own = getattr(getattr(mod, attrs[0]), "__name__", None)
            names.setdefault(key, (prefix, own if own in attrs else sorted(attrs)[0]))
    for cls, prefix in ((np.ndarray, "np.ndarray"), (np.generic, "np.generic"),
                        (np.random.Generator, "np.random.Generator"), (np.random.RandomState, "np.random.RandomState")):
        for attr, obj in vars(cls).items():
            if not attr.startswith("_") and callable(obj):
                names.setdefault(id(obj), (prefix, attr))
    return names


def _name(fn, names) -> Optional[Tuple[str, str]]:
    import numpy as np
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, np.ufunc) and getattr(fn, "__name__", None) in UFUNC_METHODS:
        return ("ufunc methods", f"{owner.__name__}.{fn.__name__}")
    return names.get(id(fn))


def numpy_rules() -> List[Tuple[str, str]]:
    """(namespace, name) of the NumPy/SciPy callables that have a rule."""
    names = _public_names()
    return sorted({n for n in (_name(f, names) for f in TABLE.rules) if n})


def numpy_nondiff() -> List[Tuple[str, str]]:
    """(namespace, name) of the NumPy/SciPy callables declared to carry no gradient."""
    names = _public_names()
    return sorted({n for n in (_name(f, names) for f in TABLE.nondiff) if n} - set(numpy_rules()))


def rst() -> str:
    """The README block: the names grouped by namespace, with counts."""
    rules, zero = numpy_rules(), numpy_nondiff()
    lines = [BEGIN, ""] + textwrap.wrap(
        f"{len(rules)} NumPy/SciPy callables have gradient rules (method and function forms count apart, "
        f"aliases once); {len(zero)} more are declared to have no gradient.", 100) + [""]
    groups: Dict[str, List[str]] = {}
    for ns, name in rules:
        groups.setdefault(ns, []).append(name)
    for ns in sorted(groups, key=ORDER.index):
        lines += _item(f"``{ns}`` ({len(groups[ns])}): ", [f"``{n}``" for n in groups[ns]])
    lines += _item(f"no gradient ({len(zero)}): ", [f"``{ns}.{n}``" for ns, n in zero])
    lines += ["", END]
    return "\n".join(lines)


def _item(head: str, names: List[str]) -> List[str]:
    return textwrap.wrap(head + ", ".join(names), 100, initial_indent="* ", subsequent_indent="  ",
                         break_on_hyphens=False)


def write(path: str) -> None:
    """Replace the block between the markers in ``path`` with ``rst()``."""
    text = open(path).read()
    i, j = text.index(BEGIN), text.index(END) + len(END)
    with open(path, "w") as f:
        f.write(text[:i] + rst() + text[j:])


if __name__ == "__main__":
    import torchzygote  # noqa: F401  (registers the rule tables)
    if sys.argv[1:2] == ["--write"]:
        write(sys.argv[2])
    else:
        print(rst())
