"""Generic-test samples for the rules in torchzygote/rules/numpy_linalg.py (see test_rules_generic)."""
import numpy as np
import scipy.linalg

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


def p_norm_kw(x, y):
    m = _mat(x, y)
    v = np.linalg.vector_norm(m, axis=(0, 1), ord=3) + np.sum(np.linalg.vector_norm(m, axis=1, keepdims=True, ord=1))
    w = np.linalg.matrix_norm(m, ord="nuc") + np.linalg.matrix_norm(m, ord=np.inf, keepdims=True)[0, 0]
    return v * w + np.linalg.matrix_norm(m, ord=-2) + np.linalg.vector_norm(m, ord=-np.inf)


def _complex_weights(b):
    """The generic test turns an output into a real number by weights; a complex array gets one
    weight for its real part and one for its imaginary part (torch's convention for a complex
    output: the gradient of a real function of it)."""
    plain = b._Weights.expr
    if getattr(plain, "complex_parts", False):
        return

    def expr(self, v, path):
        if isinstance(v, np.ndarray) and v.dtype.kind == "c":
            # Re(y * (wr - i wi)) = wr Re(y) + wi Im(y)
            w = f"W{len(self.env)}"
            self.env[w] = (np.linspace(0.3, 1.1, v.size) - 1j * np.linspace(-0.9, 0.6, v.size)).reshape(v.shape)
            return f"np.sum(({path} * {w}).real)"
        return plain(self, v, path)
    expr.complex_parts = True
    b._Weights.expr = expr


def register(put, b):
    """``put(fns, make, **opts)`` as in test_rules_generic; ``b`` is that module (builders a, t, spd, ...)."""
    a = b.a

    def cx(make):
        """Samples whose outputs are complex: the weights for them are set up when the test runs
        (``b`` is still being imported here)."""
        def made():
            _complex_weights(b)
            return make()
        return made
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

    def sep(*shape):
        """Matrices whose singular values are well apart (1.9, 1.2, 0.6, ...): the derivatives of singular
        and eigen-vectors stay moderate, whatever the random state."""
        m, n = shape[-2:]
        k = min(m, n)
        u = np.linalg.qr(a(*shape[:-2], m, k))[0]
        v = np.linalg.qr(a(*shape[:-2], n, k))[0]
        return (u * np.linspace(1.9, 0.6, k)) @ np.swapaxes(v, -1, -2)

    def sym(*shape):
        """Eigenvalues well apart in the lower triangle's symmetric matrix; noise in the upper one."""
        m = sep(*shape)
        m = m @ np.swapaxes(m, -1, -2) - np.eye(shape[-1])
        return np.tril(m) + np.triu(a(*shape), 1)

    put(np.linalg.slogdet, lambda: [(well(3, 3),), (well(2, 3, 3),), (-well(3, 3),)])
    put(np.linalg.pinv, lambda: [(sep(3, 2),), (sep(2, 3),), (well(3, 3),), (sep(2, 3, 2),),
                                 (sym(3, 3) + 3 * np.eye(3), 1e-15, True)])
    # eigh / eigvalsh / cholesky read one triangle: any matrix (the other triangle gets no gradient)
    put(np.linalg.eigh, lambda: [(sym(3, 3),), (sym(2, 3, 3),), (np.swapaxes(sym(3, 3), 0, 1), "U")])
    put(np.linalg.eigvalsh, lambda: [(sym(3, 3),), (sym(2, 3, 3),), (np.swapaxes(sym(3, 3), 0, 1), "U")])
    put(np.linalg.svd, lambda: [(sep(3, 3),), (sep(3, 2), False), (sep(2, 3), False), (sep(2, 3, 2), False),
                                (sep(3, 2), False, False), (sep(3, 2), True, False), (sym(3, 3), False, True, True)])
    put(np.linalg.svdvals, lambda: [(sep(3, 2),), (sep(2, 3, 4),)])
    put(np.linalg.cholesky, lambda: [(b.spd(3).numpy(),), (np.stack([b.spd(3).numpy(), b.spd(3).numpy()]),)])
    put(np.linalg.cholesky, b.Program(p_cholesky_upper))
    put(np.linalg.qr, lambda: [(sep(3, 2),), (well(3, 3),), (sep(2, 3),), (sep(2, 3, 2),), (sep(3, 2), "r"),
                               (sep(2, 3), "complete"), (sep(2, 4), "r")])
    put(np.linalg.lstsq, lambda: [(sep(4, 2), a(4)), (sep(4, 2), a(4, 3)), (sep(2, 3), a(2))])
    put(np.linalg.matrix_power, lambda: [(a(3, 3), 3), (a(3, 3), 1), (a(3, 3), 0), (well(3, 3) / 2, -2),
                                         (a(2, 3, 3), 2)])
    put(np.linalg.multi_dot, lambda: [([a(3), a(3, 4), a(4, 2)],), ((a(2, 3), a(3, 3), a(3)),),
                                      ([a(2, 3), a(3, 2)],), ([a(3), a(3, 2), a(2)],)])
    put(np.linalg.tensorinv, lambda: [(np.reshape(well(6, 6), (2, 3, 6)),), (np.reshape(well(6, 6), (6, 2, 3)), 1)])
    put(np.linalg.tensorsolve, lambda: [(np.reshape(well(6, 6), (2, 3, 6)), a(2, 3)),
                                        (np.reshape(well(6, 6), (6, 2, 3)), a(2, 3), (0,))])
    put(np.cross, lambda: [(a(3), a(3)), (a(4, 3), a(3)), (a(3, 4), a(3, 4), 0, 0, 0),
                           (a(3, 2), a(3, 2), -1, -1, -1, 0),
                           (a(3), a(2, 3, 4), -1, 1, 0)])
    put(np.linalg.cross, lambda: [(a(3), a(3)), (a(2, 3), a(3))])
    put(np.linalg.cross, b.Program(p_cross_axis))

    inf = np.inf
    put(np.linalg.norm, lambda: [
        (a(5),), (a(3, 4),), (a(5), 1), (a(5), inf), (a(5), -inf), (a(5), 3), (a(5, lo=0.2), 0.5), (a(5), 0),
        (a(3, 4), "fro"), (sep(3, 4), "nuc"), (sep(3, 4), 2), (sep(3, 4), -2), (a(3, 4), 1), (a(3, 4), -1),
        (a(3, 4), inf), (a(3, 4), -inf), (a(3, 4), None, 1), (a(3, 4), 3, 0, True), (a(2, 3, 4), "fro", (0, 2)),
        (sep(2, 4, 3), 2, (2, 1), True), (a(3, 4), None, None, True), (a(2, 3, 4), -1, (1, 2))])
    put(np.linalg.vector_norm, lambda: [(a(5),), (a(2, 3),)])
    put(np.linalg.matrix_norm, lambda: [(a(3, 4),), (a(2, 3, 4),)])
    put((np.linalg.vector_norm, np.linalg.matrix_norm), b.Program(p_norm_kw))
    # FFT: real inputs, and complex ones made inside the call (``pre``) so central differences apply
    FFT = "np.fft.fft({0})"
    one = lambda: [(a(8),), (a(8), 5), (a(8), 12), (a(3, 8), None, 0), (a(4, 6), 6, -1, "ortho"),  # noqa: E731
                   (a(6), None, -1, "forward")]
    many = lambda: [(a(4, 6),), (a(2, 4, 6), (5, 4), (1, 2)), (a(4, 6), None, (0, 1), "ortho"),  # noqa: E731
                    (a(3, 4, 5), (4, 6), (0, 2), "forward")]
    put((np.fft.fft, np.fft.ifft, np.fft.rfft, np.fft.ihfft, np.fft.irfft, np.fft.hfft), cx(one))
    put((np.fft.ifft, np.fft.irfft, np.fft.hfft), cx(one), pre=FFT)
    put((np.fft.fft2, np.fft.ifft2, np.fft.fftn, np.fft.ifftn, np.fft.rfft2, np.fft.rfftn, np.fft.irfft2,
         np.fft.irfftn), cx(many))
    put((np.fft.ifft2, np.fft.ifftn, np.fft.irfft2, np.fft.irfftn), cx(many), pre="np.fft.fftn({0})")
    put((np.fft.fftn, np.fft.ifftn, np.fft.rfftn, np.fft.irfftn), cx(lambda: [(a(3, 4, 5),), (a(7),)]))
    put((np.fft.fftshift, np.fft.ifftshift), lambda: [(a(5),), (a(4, 5), 0), (a(4, 5), (0, 1))])
    put((np.fft.fftshift, np.fft.ifftshift), cx(lambda: [(a(4, 5),)]), pre=FFT)
    conv = lambda: [(a(5), a(3)), (a(3), a(5)), (a(5), a(3), "same"), (a(2), a(5), "same"),  # noqa: E731
                    (a(4), a(4), "valid"), (a(3), a(6), "valid"), (a(4), a(2), "same"), (a(4), a(6), "same"),
                    (a(6), a(4), "full"), (a(1), a(3), "same")]
    put((np.convolve, np.correlate), conv)
    put(np.polyval, lambda: [(a(4), a(3)), (a(4), 0.7), (a(4), f64(-0.4)), ([0.7, -1.3, 0.45], a(3)),
                             ((0.7, -1.3), 0.3), (a(1), a(2)), (a(3), a(2, 3))])
    put(np.vander, lambda: [(a(4),), (a(4), 3), (a(4), 5, True)])
    # polynomial fits (x's points well apart: a well-conditioned Vandermonde matrix), scipy.linalg
    pts = lambda n: np.linspace(-1.0, 1.0, n) + 0.05 * a(n)  # noqa: E731
    put(np.polyfit, lambda: [(pts(7), a(7), 2), (pts(6), a(6, 2), 3),
                             (pts(7), a(7), 1, None, False, a(7, lo=0.5, hi=1.5))])
    put(scipy.linalg.expm, lambda: [(a(3, 3),), (a(2, 2, 2),)])
    put(scipy.linalg.inv, lambda: [(well(3, 3),), (well(2, 3, 3),)])
    put(scipy.linalg.det, lambda: [(well(3, 3),), (well(2, 3, 3),)])
    put(scipy.linalg.solve, lambda: [(well(3, 3), a(3)), (well(3, 3), a(3, 2))])
    # one triangle is read (upper by default): any matrix whose read triangle is an SPD matrix's
    put(scipy.linalg.cholesky, lambda: [(np.triu(b.spd(3).numpy()) + np.tril(a(3, 3), -1),),
                                        (np.tril(b.spd(3).numpy()) + np.triu(a(3, 3), 1), True)])
