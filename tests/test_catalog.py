"""README.rst's list of NumPy/SciPy functions with rules is the registry's."""
import os

import torchzygote  # noqa: F401
from torchzygote.rules import catalog

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.rst")


def test_readme_lists_the_registry():
    text = open(README).read()
    block = text[text.index(catalog.BEGIN):text.index(catalog.END) + len(catalog.END)]
    assert block == catalog.rst(), "README.rst's NumPy list is stale: python -m torchzygote.rules.catalog --write README.rst"


def test_catalog_names_numpy_callables():
    rules = dict.fromkeys(catalog.numpy_rules())
    assert ("np", "sin") in rules and ("np.ndarray", "sum") in rules and ("np.linalg", "inv") in rules
    assert ("np", "zeros") in catalog.numpy_nondiff()


# in-place writes: their second order is checked on programs that write (tests/test_numpy_inplace.py)
SECOND_ORDER_ELSEWHERE = {("np.ndarray", "fill"), ("np", "copyto")}


def test_every_listed_rule_is_checked_at_second_order():
    """A NumPy/SciPy rule in README's list is in the generic second-order test (its rule module
    registers it with ``_r``), so no listed rule goes unchecked there."""
    import test_rules_generic as G
    from torchzygote.rules.registry import TABLE
    names = catalog._public_names()
    second = set(map(id, G.NP_SECOND))
    missing = {catalog._name(f, names) for f in TABLE.rules if id(f) not in second} - {None}
    assert missing == SECOND_ORDER_ELSEWHERE, sorted(missing - SECOND_ORDER_ELSEWHERE)
