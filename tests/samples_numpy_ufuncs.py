"""Generic-test samples for the rules in torchzygote/rules/numpy_ufuncs.py (see test_rules_generic)."""


def register(put, b):
    """``put(fns, make, **opts)`` as in test_rules_generic; ``b`` is that module (builders a, t, spd, ...)."""
