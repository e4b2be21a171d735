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
