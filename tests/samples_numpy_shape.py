"""Generic-test samples for the rules in torchzygote/rules/numpy_shape.py (see test_rules_generic).

Functions of a list or tuple of arrays are sampled with ``pre``: the list is built from the first
argument inside the call, so the finite differences (which perturb arrays and floats, not lists)
check each item's gradient, and floats among the items check that a float item gets a float.
Programs cover what the argument tuples cannot say: keyword-only arguments, unused output pieces.
"""
import operator

import numpy as np

W4 = np.linspace(0.3, 1.1, 4)


def p_split_one_piece(x, y):
    parts = np.split(np.array([x, y, x * y, y * y]), 2)   # the first piece unused: its gradient is None
    return np.sum(parts[1] * parts[1] * W4[:2])


def p_split_unpack(x, y):
    u, v = np.array_split(np.array([x, y, x * y]), 2)
    return float(np.sum(u * u) + v[0] * x)


def p_unstack_one(x, y):
    rows = np.unstack(np.array([[x, y], [x * y, y]]))
    return np.sum(np.sin(rows[1]))


def p_pad_values(x, y):
    v = np.array([x, y * x])
    return np.sum(np.pad(v, (1, 2), constant_values=x * y) * np.linspace(0.3, 1.1, 5)) + \
        np.sum(np.pad(np.array([[x, y]]), 1, constant_values=((y, 0.5), (x, 2.0))) *
               np.linspace(0.3, 1.1, 12).reshape(3, 4))


def p_meshgrid_ij(x, y):
    u, v = np.meshgrid(np.array([x, y]), np.array([y, x * y, 1.0]), indexing="ij", sparse=True)
    return np.sum(np.sin(u * v))


def p_meshgrid_xy(x, y):
    u, v, w = np.meshgrid(np.array([x, y]), np.array([[y, x * y, 1.0]]), np.array([x]))
    return np.sum(np.sin(u * v + w) * np.linspace(0.3, 1.1, 6).reshape(3, 2, 1))


def p_broadcast_arrays(x, y):
    u, v, w = np.broadcast_arrays(np.array([[x], [y]]), np.array([y, x * y, 1.0]), x)
    return np.sum(np.sin(u * v * w) * np.linspace(0.3, 1.1, 6).reshape(2, 3))


def p_choose_tuple(x, y):
    return np.sum(np.choose(np.array([1, 0, 1]), (np.array([x, y, x * y]), y)) * W4[:3])


def p_select(x, y):
    c = np.array([0.2, -0.4, 1.3])
    return np.sum(np.select([c < 0, c > 1], [np.array([x, y, x * y]), y * y], default=x) * W4[:3])


def p_block_lists(x, y):
    m = np.block([[np.array([[x, y]]), np.array([[x * y]])], [np.array([[y, y, x]])]])
    return np.sum(m * np.linspace(0.3, 1.1, 6).reshape(2, 3))


def p_concat_list_var(x, y):
    xs = [np.array([x, y]), np.array([x * y])]
    xs.append(np.array([y * y]))
    return np.sum(np.concatenate(xs) * W4)


def p_index_reads(x, y):
    v = np.array([[x, y, x * y], [y * y, x, 2.0]])
    return np.sum(v[[1, 0, 1]] ** 2) + np.sum(v[v > 0.5]) + v[:, [2, 0]].sum() * v[-1, ::-2].sum() + \
        np.sum(v[..., None] * v[:, None, :]) + v[np.array([0, 0]), 1:].sum()


def p_reshape_order(x, y):
    m = np.array([[x, y, x * y], [y * y, x, 0.5]])
    return np.sum(m.reshape(3, 2, order="F") * np.linspace(0.3, 1.1, 6).reshape(3, 2)) + \
        np.sum(m.reshape(6, order="A") ** 2 * np.linspace(0.3, 1.1, 6))


def register(put, b):
    """``put(fns, make, **opts)`` as in test_rules_generic; ``b`` is that module (builders a, t, spd, ...)."""
    a, P = b.a, b.Program
    x64 = np.float64
    # ---------------------------------------------------------------- joining
    two = "[{0}[0], {0}[1] * 2.0]"
    put(np.concatenate, lambda: [(a(2, 3, 2),), (a(2, 3, 2), 1), (a(2, 3, 2), None), (a(2, 3, 2), -1)], pre=two)
    put(np.concatenate, lambda: [(a(2, 3, 2),)], pre="({0}[0], {0}[1, :1], {0}[1])")
    put(np.concatenate, lambda: [([a(3), a(2)],), ((a(2, 2), a(1, 2)), 0)])
    put(np.concatenate, P(p_concat_list_var))
    put(np.hstack, lambda: [(a(2, 3),)], pre="[{0}[0], float({0}[1, 0]), {0}[1], {0}[1, 1]]")
    put(np.hstack, lambda: [(a(2, 3, 2),)], pre=two)
    for f in (np.vstack, np.row_stack) if hasattr(np, "row_stack") else (np.vstack,):
        put(f, lambda: [(a(2, 3, 2),)], pre="[{0}[0], {0}[1, 0], {0}[1] * 3.0]")
        put(f, lambda: [(a(2, 3),)], pre="({0}[0], {0}[1])")
    put(np.dstack, lambda: [(a(2, 3, 2),), (a(2, 3),)], pre=two)
    put(np.column_stack, lambda: [(a(2, 3),)], pre=two)
    put(np.column_stack, lambda: [(a(3, 3),)], pre="({0}[:, :2], {0}[:, 2], float({0}[0, 0]) * {0}[:, 1])")
    put(np.block, lambda: [(a(2, 2, 2),)], pre="[[{0}[0], {0}[1]], [{0}[1] * 3.0, {0}[0]]]")
    put(np.block, lambda: [(a(2, 2),)], pre="[[{0}[0], float({0}[1, 1]), {0}[1, 0]]]")
    put(np.block, lambda: [(a(3),)], pre="[{0}, {0} * 2.0]")
    put(np.block, P(p_block_lists))
    put(np.append, lambda: [(a(3, 2), a(2)), (a(3, 2), a(1, 2), 0), (a(3), 0.7), (0.7, x64(0.3)),
                            (a(2, 2), a(2, 1), 1)])
    # ---------------------------------------------------------------- splitting (outputs are lists)
    put((np.split, np.array_split), lambda: [(a(6, 2), 3), (a(6, 2), [1, 4]), (a(2, 6), 2, 1)])
    put(np.array_split, lambda: [(a(7, 2), 3), (a(5), 2)])
    put(np.split, P(p_split_one_piece))
    put(np.array_split, P(p_split_unpack))
    put(np.hsplit, lambda: [(a(2, 6), 3), (a(6), [2, 3])])
    put(np.vsplit, lambda: [(a(4, 2), 2)])
    put(np.dsplit, lambda: [(a(2, 2, 4), [1])])
    if hasattr(np, "unstack"):
        put(np.unstack, lambda: [(a(3, 2),)])
        put(np.unstack, P(p_unstack_one))
    # ---------------------------------------------------------------- flipping and moving
    put(np.flip, lambda: [(a(3, 2),), (a(3, 2), 0), (a(2, 3, 2), (0, 2)), (0.7,), (x64(0.3),)])
    put((np.flipud, np.fliplr), lambda: [(a(3, 2),)])
    put(np.rot90, lambda: [(a(3, 2),), (a(3, 2), 2), (a(2, 3, 4), -1, (1, 2))])
    put(np.roll, lambda: [(a(3, 2), 1), (a(3, 2), -2, 0), (a(3, 2, 2), (1, 3), (0, 2)), (0.7, 1)])
    put(np.rollaxis, lambda: [(a(2, 3, 4), 2), (a(2, 3, 4), 0, 3), (a(2, 3, 4), -1, 1)])
    put(np.tile, lambda: [(a(3, 2), 2), (a(3, 2), (2, 1, 2)), (a(3), (2, 2)), (0.7, 3), (x64(0.3), (2, 2))])
    put(np.repeat, lambda: [(a(3, 2), 2), (a(3, 2), [1, 0, 3], 0), (a(3, 2), 2, 1), (0.7, 3)])
    put(np.ndarray.repeat, lambda: [(a(3, 2), 2), (a(3, 2), [2, 1], 1)])
    put(np.resize, lambda: [(a(3, 2), (4, 4)), (a(3, 2), 3), (0.7, (2,))])
    put(np.pad, lambda: [(a(3, 2), 1), (a(3, 2), ((1, 0), (2, 1)), "reflect"), (a(3, 2), 2, "symmetric"),
                         (a(3, 2), ((0, 3), (1, 1)), "wrap"), (a(3, 2), (1, 2), "edge"), (a(4), 5, "reflect")])
    put(np.pad, P(p_pad_values))
    # ---------------------------------------------------------------- dropping dims, copies
    put(np.squeeze, lambda: [(a(3, 1, 2),), (a(1, 3, 1), 0), (x64(0.3),), (0.7,)])
    put(np.ndarray.squeeze, lambda: [(a(3, 1, 2), 1)])
    put(np.copy, lambda: [(a(3, 2),), (0.7,), (x64(0.3),)])
    put(np.ndarray.copy, lambda: [(a(3, 2),)])
    put(np.ascontiguousarray, lambda: [(a(3, 2).T,), (0.7,)])
    # (orders 'A' and 'K' read the array's memory order, which the finite differences' copies do not keep)
    put(np.ravel, lambda: [(a(3, 2),), (a(3, 2), "F"), (0.7,)])
    put((np.ndarray.ravel, np.ndarray.flatten), lambda: [(a(3, 2),), (a(3, 2), "F")])
    put((np.atleast_1d, np.atleast_2d, np.atleast_3d), lambda: [(0.7,), (x64(0.3),), (a(3),), (a(3, 2),),
                                                                (a(3), 0.7), (a(2, 2), x64(0.3), a(2))])
    # np.meshgrid and np.broadcast_arrays are lifted stand-ins made of broadcasts
    put(np.broadcast_to, P(p_meshgrid_ij))
    put(np.broadcast_to, P(p_meshgrid_xy))
    put(np.broadcast_to, P(p_broadcast_arrays))
    if hasattr(np, "matrix_transpose"):
        put(np.matrix_transpose, lambda: [(a(2, 3, 4),), (a(3, 2),)])
    put(np.ndarray.swapaxes, lambda: [(a(2, 3, 4), 0, 2)])
    put(np.real_if_close, lambda: [(a(3, 2),), (0.7,)])
    # ---------------------------------------------------------------- triangles and diagonals
    put((np.triu, np.tril), lambda: [(a(3, 3),), (a(3, 4), 1), (a(2, 3, 3), -1)])
    put(np.diag, lambda: [(a(3),), (a(3), 1), (a(3), -2), (a(3, 4),), (a(3, 4), 1), (a(4, 3), -1)])
    put(np.diagflat, lambda: [(a(2, 2),), (a(3), -1), (0.7,)])
    put(np.diagonal, lambda: [(a(3, 3),), (a(3, 4), 1), (a(2, 3, 3), -1, 1, 2)])
    put(np.ndarray.diagonal, lambda: [(a(3, 3), 1)])
    # ---------------------------------------------------------------- gathering
    put(np.take, lambda: [(a(3, 2), [0, 5, 0]), (a(3, 2), [[2, 0], [2, 1]], 0), (a(4), 7, None, None, "wrap"),
                          (a(3, 2), -1, 1), (a(3, 2), 4), (0.7, [0, 0]), (a(4), [5, -9], 0, None, "clip")])
    put(np.ndarray.take, lambda: [(a(3, 2), [1, 1], 1)])
    put(np.take_along_axis, lambda: [(a(3, 2), np.array([[1, 0], [1, 1], [0, 0]]), 1),
                                     (a(3, 2), np.array([[2, 2]]), 0), (a(3, 2), np.array([5, 0, 5]), None)])
    put(np.ndarray.item, lambda: [(a(3, 2), 3), (a(3, 2), (1, 0)), (a(3, 2), 1, 1), (a(1, 1),)])
    put(np.compress, lambda: [([True, False, True], a(3, 2), 0), (np.array([False, True]), a(3, 2), 1),
                              ([True, False, True], a(3, 2))])
    put(np.ndarray.compress, lambda: [(a(3, 2), [True, False, True], 0)])
    put(np.extract, lambda: [(np.array([[True, False], [False, True], [True, True]]), a(3, 2))])
    put(np.delete, lambda: [(a(3, 2), 1), (a(3, 2), [0, 2], 0), (a(3, 2), slice(0, 2), 1), (a(5), [1, 1])])
    put(np.insert, lambda: [(a(5), 2, 0.7), (a(5), [1, 1], a(2)), (a(3, 2), 1, a(2), 0), (a(4), 1, x64(0.3)),
                            (a(3, 2), [0, 2], a(3, 1), 1), (a(3, 2), 1, 0.5, 1)])
    put(np.choose, lambda: [(np.array([0, 2, 1, 0]), a(3, 4)), (np.array([[0], [1]]), a(2, 3)),
                            (np.array([0, 3, -1]), a(2, 3), None, "wrap"),
                            (np.array([0, 3, -1]), a(2, 3), None, "clip")])
    put(np.choose, P(p_choose_tuple))
    put(np.select, lambda: [([np.array([True, False, False]), np.array([True, True, False])], a(2, 3))])
    put(np.select, P(p_select))
    put(np.where, lambda: [(np.bool_(True), x64(0.7), x64(1.3)), (np.bool_(False), a(3), 0.5),
                           (np.float64(0.4) > 0.5, 0.25, x64(1.3))])
    put(np.where, lambda: [(a(3, 2) > 0,)], nograd=True)
    # ---------------------------------------------------------------- indexing arrays
    put(operator.getitem, lambda: [(a(4, 3), 1), (a(4, 3), (slice(1, 3), slice(None, None, 2))),
                                   (a(4, 3), (Ellipsis, None)), (a(4), [0, 2, 0]), (a(4, 3), a(4, 3) > 0),
                                   (a(4, 3), (np.array([2, 0, 2]), slice(None))), (a(4, 3), (slice(None), [1, 0])),
                                   (a(4, 3), (-1, slice(None, None, -2)))])
    put(operator.getitem, P(p_index_reads))
    put(np.reshape, lambda: [(a(3, 2), (2, 3), "F"), (a(2, 3, 2), (3, 4), "A"), (0.7, (1,)), (x64(-0.4), (1, 1), "F"),
                             (a(2, 3), -1)])
    put(np.ndarray.reshape, P(p_reshape_order))
    put(float, lambda: [(np.array(0.7),), (np.array(-1.3),)])
