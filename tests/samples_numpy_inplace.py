"""Generic-test samples for the NumPy in-place rules in torchzygote/rules/inplace.py (see
test_rules_generic): writes are checked through programs (a write returns None, or the array,
so a plain call of the rule says nothing), the copies on samples."""
import operator

import numpy as np

from torchzygote.frontend import ops


def p_np_setitem(x, y):
    z = np.zeros((3, 2))
    z[0] = x * y                    # a row from a broadcast product
    z[1, 1] = np.sin(x[0])          # one entry
    z[z > 0.5] = 0.5 * y[0]         # a mask
    z[[2, 0, 2], [0, 1, 0]] = np.array([x[0], x[1], x[0] * y[1]])  # (2, 0) named twice: numpy keeps the last
    return np.sum(z * z) + z[2, 0] * y[1]


def p_np_augmented(x, y):
    z = x * 1.0
    z += y
    z -= 0.5 * x
    z *= y
    z /= 1.5 + y * y
    z **= 2
    z += np.float64(0.3)
    return np.sum(z * x)


def p_np_fill_copyto(x, y):
    z = x * 2.0
    s = np.sum(z * z)
    z.fill(y[0])
    w = np.ones((2, 2))
    np.copyto(w, y)
    return s + np.sum(z * x) + np.sum(w * w * x)


def p_np_add_at(x, y):
    z = np.zeros(3)
    np.add.at(z, [0, 2, 0], x)
    np.subtract.at(z, [1, 1], y)
    return np.sum(z * z)


XY = (np.array([0.7, -0.4]), np.array([0.3, 1.1]))


def register(put, b):
    """``put(fns, make, **opts)`` as in test_rules_generic; ``b`` is that module (builders a, t, spd, ...)."""
    put(ops.setitem_v, b.Program(p_np_setitem, XY))
    for f in (operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ipow):
        put(f, b.Program(p_np_augmented, XY))
    put((np.ndarray.fill, np.copyto, ops.mutated), b.Program(p_np_fill_copyto, XY))
    put(np.ufunc.at, b.Program(p_np_add_at, (np.array([0.7, -0.4, 1.2]), np.array([0.3, 1.1]))))
    put(np.copy, lambda: [(b.a(3, 2),), (0.7,), (np.float64(-0.4),)])
    put(np.ndarray.copy, lambda: [(b.a(3, 2),), (b.a(4),)])
    put(np.generic.copy, lambda: [(np.float64(0.7),)])
