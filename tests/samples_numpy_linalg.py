"""Generic-test samples for the rules in torchzygote/rules/numpy_linalg.py (see test_rules_generic)."""
import numpy as np

# Programs over Python floats (checked against central differences): NumPy 2's keyword-only arguments
_M = np.linspace(-1.0, 1.0, 24).reshape(2, 3, 4)


def _mat(x, y):
    """A 3x4 array of active entries."""
    return np.array([[x, y, x * y, 0.5], [y * y, -x, 1.0, x - y], [0.3, x * x, y, 2.0 * x]])


def p_tensordot_kw(x, y):
    m = _mat(x, y)
    return np.sum(np.linalg.tensordot(m, _M, axes=([1], [2])) ** 2) + np.sum(np.linalg.tensordot(m, m.T, axes=1))


def p_vecdot_kw(x, y):
    m = _mat(x, y)
    return np.sum(np.linalg.vecdot(m, m * y, axis=0) ** 2)


def p_offsets(x, y):
    m = _mat(x, y)
    s = np.linalg.trace(m, offset=1) * np.linalg.trace(m, offset=-1)
    return s + np.sum(np.linalg.diagonal(m, offset=2) ** 2) + np.sum(np.linalg.diagonal(m * x, offset=-1))


def p_cholesky_upper(x, y):
    m = np.array([[2.0 + x, y, 0.3], [0.1, 3.0, x * y], [y * y, 0.2, 2.5]])
    return np.sum(np.linalg.cholesky(m, upper=True) * _M[0, :, :3])


def p_cross_axis(x, y):
    m = _mat(x, y)[:, :3]
    return np.sum(np.linalg.cross(m, m * y + 0.5, axis=0) * _M[0, :, :3])


def register(put, b):
    """``put(fns, make, **opts)`` as in test_rules_generic; ``b`` is that module (builders a, t, spd, ...)."""
    a = b.a
    f64 = np.float64
    # einsum: matrix products, batched (ellipsis), implicit output, traces and diagonals (repeated
    # letters), a summed-out axis, broadcasting a size-1 axis, numbers among the operands
    put(np.einsum, lambda: [
        ("ij,jk->ik", a(2, 3), a(3, 4)), ("...ij,...jk", a(2, 2, 3), a(3, 2)), ("ij,jk", a(2, 3), a(3, 2)),
        ("ii", a(3, 3)), ("ii->i", a(3, 3)), ("ij->j", a(3, 2)), ("i,i,i->", a(3), a(3), a(3)),
        ("bij,bj->bi", a(1, 2, 3), a(4, 3)), ("i,->i", a(3), 0.7), ("i,->i", a(3), f64(-1.3)),
        ("iij->ij", a(2, 2, 3)), ("ij,ij->", a(2, 3), a(2, 3)), ("ji", a(2, 3))])
    put((np.tensordot, np.linalg.tensordot), lambda: [(a(2, 3, 4), a(3, 4, 2))])
    put(np.tensordot, lambda: [(a(2, 3), a(3, 2), 1), (a(2, 3, 4), a(4, 3), ([1, 2], [1, 0])), (a(3), a(2), 0),
                               (a(2, 3), a(3), ([1], [0])), (a(2, 3), a(3, 2), ((1,), (0,))), (0.7, a(3), 0)])
    put(np.linalg.tensordot, b.Program(p_tensordot_kw))
    put(np.inner, lambda: [(a(3), a(3)), (a(2, 3), a(4, 3)), (a(2, 2, 3), a(3)), (0.7, a(2, 3)),
                           (a(3), f64(-1.3))])
    put(np.kron, lambda: [(a(2, 3), a(3, 2)), (a(3), a(2, 2)), (a(2), a(3)), (0.7, a(3))])
    put(np.vdot, lambda: [(a(3), a(3)), (a(2, 3), a(3, 2))])
    put((np.vecdot, np.linalg.vecdot), lambda: [(a(3), a(3)), (a(2, 3), a(3)), (a(4, 1, 3), a(2, 3))])
    put(np.linalg.vecdot, b.Program(p_vecdot_kw))
    put(np.linalg.outer, lambda: [(a(3), a(2))])
    put(np.linalg.matmul, lambda: [(a(2, 3), a(3, 2)), (a(2, 2, 3), a(3, 4)), (a(3), a(3, 2)), (a(3), a(3))])
    put(np.linalg.matrix_transpose, lambda: [(a(2, 3),), (a(2, 3, 4),)])
    put((np.linalg.diagonal, np.linalg.trace), lambda: [(a(3, 3),), (a(2, 3, 4),)])
    put((np.linalg.diagonal, np.linalg.trace), b.Program(p_offsets))

    def well(*shape):
        """Well-conditioned square matrices (a stack when shape has more axes)."""
        n = shape[-1]
        return a(*shape) + 2.0 * np.eye(n)

    put(np.linalg.slogdet, lambda: [(well(3, 3),), (well(2, 3, 3),), (-well(3, 3),)])
    put(np.linalg.pinv, lambda: [(a(3, 2),), (a(2, 3),), (well(3, 3),), (a(2, 3, 2),), (a(3, 3) + a(3, 3).T + 3 * np.eye(3), 1e-15, True)])
    # eigh / eigvalsh / cholesky read one triangle: any matrix (the other triangle gets no gradient)
    put(np.linalg.eigh, lambda: [(a(3, 3),), (a(2, 3, 3),), (a(3, 3), "U")])
    put(np.linalg.eigvalsh, lambda: [(a(3, 3),), (a(2, 3, 3),), (a(3, 3), "U")])
    put(np.linalg.svd, lambda: [(a(3, 3),), (a(3, 2), False), (a(2, 3), False), (a(2, 3, 2), False),
                                (a(3, 2), False, False), (a(3, 2), True, False), (a(3, 3), False, True, True)])
    put(np.linalg.svdvals, lambda: [(a(3, 2),), (a(2, 3, 4),)])
    put(np.linalg.cholesky, lambda: [(b.spd(3).numpy(),), (np.stack([b.spd(3).numpy(), b.spd(3).numpy()]),)])
    put(np.linalg.cholesky, b.Program(p_cholesky_upper))
    put(np.linalg.qr, lambda: [(a(3, 2),), (well(3, 3),), (a(2, 3),), (a(2, 3, 2),), (a(3, 2), "r"),
                               (a(2, 3), "complete"), (a(2, 4), "r")])
    put(np.linalg.lstsq, lambda: [(a(4, 2), a(4)), (a(4, 2), a(4, 3)), (a(2, 3), a(2))])
    put(np.linalg.matrix_power, lambda: [(a(3, 3), 3), (a(3, 3), 1), (a(3, 3), 0), (well(3, 3) / 2, -2),
                                         (a(2, 3, 3), 2)])
    put(np.linalg.multi_dot, lambda: [([a(3), a(3, 4), a(4, 2)],), ((a(2, 3), a(3, 3), a(3)),),
                                      ([a(2, 3), a(3, 2)],), ([a(3), a(3, 2), a(2)],)])
    put(np.linalg.tensorinv, lambda: [(np.reshape(well(6, 6), (2, 3, 6)),), (np.reshape(well(6, 6), (6, 2, 3)), 1)])
    put(np.linalg.tensorsolve, lambda: [(np.reshape(well(6, 6), (2, 3, 6)), a(2, 3)),
                                        (np.reshape(well(6, 6), (6, 2, 3)), a(2, 3), (0,))])
    put(np.cross, lambda: [(a(3), a(3)), (a(4, 3), a(3)), (a(3, 4), a(3, 4), 0, 0, 0), (a(3, 2), a(3, 2), -1, -1, -1, 0),
                           (a(3), a(2, 3, 4), -1, 1, 0)])
    put(np.linalg.cross, lambda: [(a(3), a(3)), (a(2, 3), a(3))])
    put(np.linalg.cross, b.Program(p_cross_axis))
