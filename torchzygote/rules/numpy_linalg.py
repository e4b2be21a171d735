"""NumPy rules: linear algebra (batched), einsum, tensor products, fft, convolve/correlate.

Written with the table helpers of ``numpy_rules`` (``_r``): each rule applies to arrays, Python
numbers and NumPy scalars where NumPy does, and its backward uses only functions with rules, so it is
differentiable again.

Conventions:
- complex values follow torch's convention: the gradient of a real loss with respect to a complex
  value is ``dL/dRe + i dL/dIm``; a real argument gets the real part (as ``torch.autograd`` does).
- functions that read one triangle of a matrix (``eigh``, ``eigvalsh``, ``cholesky``) get the exact
  derivative of what NumPy computes: the gradient lands on the triangle that is read (the other is 0).
  For a symmetric matrix built from parameters this equals the symmetrised convention of torch/JAX.
- where the derivative does not exist (repeated eigen- or singular values with eigenvector gradients,
  rank-deficient matrices for ``pinv``/``lstsq``) a GradientError says what to do.
- tangents (forward mode) follow the same conventions, and raise the same errors.
"""
from __future__ import annotations

import ast

from ..errors import GradientError
from .numpy_tangent import np_t_solve_a, np_t_weighted
from .registry import ARRAY, OBJECT, REAL, many, nondiff, some
from . import numpy_rules as _nr
from .numpy_linalg_backward import (_cj, _swap, np_la_real_like, _parts, np_la_explicit, np_la_ein_plan,
                                    np_la_ein_back, np_la_ein_grads, np_la_tensordot_spec, np_la_inner_spec,
                                    np_la_kron_spec, np_la_diag_sel, np_la_kron_back, np_la_vecdot_back,
                                    np_la_tri_masks, np_la_check_distinct, np_la_check_rank, np_la_real_only,
                                    np_la_slogdet_back, np_la_pinv_back, np_la_eigh_back, np_la_eigvalsh_back,
                                    np_la_svd_back, np_la_svdvals_back, np_la_cholesky_back, np_la_qr_back,
                                    np_la_lstsq_back, np_la_matrix_power_back, np_la_multi_dot_back,
                                    np_la_tensorinv_back, np_la_tensorsolve_order, np_la_tensorsolve_back,
                                    np_la_cross_back, np_la_vnorm_back, np_la_mnorm_back, np_la_norm_back,
                                    np_la_gap)
from .numpy_signal_backward import (np_fft_plan, np_fft_weights, np_fft_c2c_back, np_fft_r2c_back,
                                    np_fft_c2r_back, np_la_conv_offset, np_la_conv_back, np_la_polyval_p,
                                    np_la_polyval_x, np_la_vander_back, np_la_polyfit_back, _DUAL)

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

if np is not None:
    np_like = _nr.np_like
    NS = dict(_nr.ns)

    def _r(fns, sig, **kw):
        """``numpy_rules._r`` with this module's namespace; parameters after a ``*`` are passed by
        keyword when the rule calls the function (NumPy 2's positional-only, keyword-only APIs)."""
        kw.setdefault("ns", NS)
        a = ast.parse(f"lambda {sig}: 0", mode="eval").body.args
        if a.kwonlyargs and "fwd" not in kw:
            pos = [x.arg for x in a.args]
            args = ", ".join(pos + [f"{k.arg}={k.arg}" for k in a.kwonlyargs])
            for f in fns:
                mod = (getattr(f, "__module__", None) or "numpy").replace("numpy", "np", 1)
                _nr._r([f], sig, fwd=f"{mod}.{f.__name__}({args})", **kw)
            return
        _nr._r(fns, sig, **kw)

    # ------------------------------------------------------------------ einsum and products as einsum

    nondiff(np_la_explicit, np_la_ein_plan, np_la_tensordot_spec, np_la_inner_spec, np_la_kron_spec,
            np_la_diag_sel, np.iscomplexobj)
    NS.update(np_la_ein_back=np_la_ein_back, np_la_ein_grads=np_la_ein_grads, np_la_real_like=np_la_real_like,
              np_la_tensordot_spec=np_la_tensordot_spec, np_la_inner_spec=np_la_inner_spec,
              np_la_diag_sel=np_la_diag_sel, np_la_vecdot_back=np_la_vecdot_back, np_la_kron_back=np_la_kron_back,
              _parts=_parts, _swap=_swap, _cj=_cj, np_matmul_back=_nr.np_matmul_back)

    # ------------------------------------------------------------------ tangents (forward mode)
    # Written for the cases the pullbacks take (the decompositions: real matrices; the others fail as
    # their pullbacks do: repeated eigenvalues, rank deficiency).

    def np_la_t_multi(fn, head, args, ts):
        """The tangent of ``fn(*head, *args)``, linear in each of ``args`` (einsum, multi_dot): the sum
        of the calls with one argument replaced by its tangent (``ts``: None where it has none)."""
        out = None
        for i, t in enumerate(ts):
            if t is not None:
                term = fn(*head, *args[:i], t, *args[i + 1:])
                out = term if out is None else out + term
        return out

    def np_la_sym(d, lower):
        """The tangent of the Hermitian matrix a function builds from one triangle of its argument."""
        strict, eye = np_la_tri_masks(np.shape(d)[-1], lower)
        return d * strict + _cj(_swap(d * strict)) + d * eye

    def np_la_eigh_t(d, a, uplo, y):
        """``a = v diag(w) v^T``: ``dw = diag(v^T da v)``, ``dv = v (F * (v^T da v))``."""
        np_la_real_only(a, "np.linalg.eigh")
        w, v = y[0], y[1]
        p = _swap(v) @ np_la_sym(d, uplo in ("L", "l")) @ v
        return np.diagonal(p, axis1=-2, axis2=-1).copy(), v @ (np_la_gap(w, "eigenvectors") * p)

    def np_la_eigvalsh_t(d, a, uplo):
        np_la_real_only(a, "np.linalg.eigvalsh")
        v = np.linalg.eigh(a, uplo)[1]
        return np.diagonal(_swap(v) @ np_la_sym(d, uplo in ("L", "l")) @ v, axis1=-2, axis2=-1).copy()

    def np_la_svd_t(d, a, full_matrices, compute_uv, hermitian, y):
        """``a = u diag(s) vh`` (thin, real): ``p = u^T da v``, ``ds = diag(p)``, and for the vectors
        ``du = u (F * (p s + s p^T)) + (1 - u u^T) da v / s`` (``dv`` alike with ``da^T``)."""
        np_la_real_only(a, "np.linalg.svd")
        if hermitian:
            d = np_la_sym(d, True)   # (numpy's hermitian svd is eigh of the lower triangle)
        u, s, vh = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
        v = _swap(vh)
        p = _swap(u) @ d @ v
        ds = np.diagonal(p, axis1=-2, axis2=-1).copy()
        if not compute_uv:
            return ds
        k = np.shape(s)[-1]
        if full_matrices and (np.shape(y[0])[-1] > k or np.shape(y[2])[-2] > k):
            raise GradientError("np.linalg.svd(full_matrices=True) of a non-square matrix: the extra singular "
                                "vectors are not unique, so they have no tangent; use full_matrices=False")
        f = np_la_gap(s * s, "singular vectors")
        sr, sc = s[..., None, :], s[..., :, None]
        du = u @ (f * (p * sr + sc * _swap(p)))
        dv = v @ (f * (sc * p + _swap(p) * sr))
        if np.shape(u)[-2] > k or np.shape(v)[-2] > k:
            np_la_check_rank(s, "the singular vectors")
        if np.shape(u)[-2] > k:
            du = du + (d @ v - u @ p) / sr
        if np.shape(v)[-2] > k:
            dv = dv + (_swap(d) @ u - v @ _swap(p)) / sr
        return du, ds, _swap(dv)

    def np_la_cholesky_t(d, a, upper, y):
        """``a = l l^T`` from one triangle: ``dl = l Phi(l^-1 da l^-T)`` (Phi: the lower triangle, half
        the diagonal)."""
        np_la_real_only(a, "np.linalg.cholesky")
        l = _swap(y) if upper else y
        li = np.linalg.inv(l)
        strict, eye = np_la_tri_masks(np.shape(l)[-1], True)
        m = li @ np_la_sym(d, not upper) @ _swap(li)
        dl = l @ (m * strict + 0.5 * m * eye)
        return _swap(dl) if upper else dl

    def np_la_qr_t(d, a, mode, y):
        """``a = q r``: with ``c = q^T da r^-1``, ``q^T dq = w`` (the skew part of ``c`` below the
        diagonal), ``dr = (c - w) r``, ``dq = q w + (1 - q q^T) da r^-1``; a wide ``a = q [r1 r2]``
        takes the square part's and ``dr2 = q^T (da2 - dq r2)``."""
        np_la_real_only(a, "np.linalg.qr")
        if mode not in ("reduced", "complete", "r"):
            raise GradientError(f"np.linalg.qr(mode={mode!r}) has no tangent; use mode='reduced'")
        m, n = np.shape(a)[-2:]
        if mode == "complete" and m > n:
            raise GradientError("np.linalg.qr(mode='complete') of a tall matrix: the extra columns of q are "
                                "not unique, so they have no tangent; use mode='reduced'")
        q, r = np.linalg.qr(a)
        k = min(m, n)
        r1 = r[..., :k]
        c = _swap(np.linalg.solve(_swap(r1), _swap(_swap(q) @ d[..., :k])))
        low = np.tril(c, -1)
        w = low - _swap(low)
        dr = (c - w) @ r1
        dq = q @ w + _swap(np.linalg.solve(_swap(r1), _swap(d[..., :k] - q @ (_swap(q) @ d[..., :k]))))
        if n > m:
            dr = np.concatenate([dr, _swap(q) @ (d[..., m:] - dq @ r[..., m:])], axis=-1)
        return dr if mode == "r" else (dq, dr)

    def np_la_pinv_t(d, a, y, hermitian):
        """``p = pinv(a)`` (constant rank): ``-p da p + p p^T da^T (1 - a p) + (1 - p a) da^T p^T p``."""
        np_la_real_only(a, "np.linalg.pinv")
        np_la_check_rank(np.linalg.svd(a, compute_uv=False), "np.linalg.pinv")
        if hermitian:   # (numpy's hermitian pinv is of the matrix eigh reads: the lower triangle)
            a, d = np_la_sym(a, True), np_la_sym(d, True)
        p = y
        m, n = np.shape(a)[-2:]
        dt = _swap(d)
        return (-(p @ d @ p) + p @ _swap(p) @ dt @ (np.eye(m) - a @ p)
                + (np.eye(n) - p @ a) @ dt @ _swap(p) @ p)

    def np_la_lstsq_t(d, a, b, y, which):
        """``x = pinv(a) b`` (full rank), the residuals ``|a x - b|^2`` and the singular values of ``a``;
        ``rank`` has no tangent."""
        np_la_real_only(a, "np.linalg.lstsq")
        np_la_check_rank(np.linalg.svd(a, compute_uv=False), "np.linalg.lstsq")
        x, res = y[0], y[1]
        p = np.linalg.pinv(a)
        da, db = (d, 0.0) if which == 0 else (0.0 * a, d)
        dx = np_la_pinv_t(da, a, p, False) @ b if which == 0 else p @ db
        dres = np.reshape(np.sum(2.0 * (a @ x - b) * (da @ x + a @ dx - db), axis=0), np.shape(res)) \
            if np.size(res) else np.zeros(np.shape(res))
        ds = np_la_svd_t(d, a, False, False, False, None) if which == 0 else np.zeros(np.shape(y[3]))
        return dx, dres, None, ds

    def np_la_slogdet_t(d, a):
        """``(sign, log|det a|)``: the sign has none, the log ``tr(a^-1 da)``."""
        np_la_real_only(a, "np.linalg.slogdet")
        return None, np.trace(np.linalg.solve(a, d), axis1=-2, axis2=-1)

    def np_la_matrix_power_t(d, a, n):
        """``a^n``: ``sum_k a^k da a^(n-1-k)``; a negative ``n`` through ``b = a^-1``, ``db = -b da b``."""
        if n == 0:
            return np.zeros(np.shape(a))
        if n < 0:
            b = np.linalg.inv(a)
            return np_la_matrix_power_t(-(b @ d @ b), b, -n)
        t = 0.0
        for k in range(n):
            t = t + np.linalg.matrix_power(a, k) @ d @ np.linalg.matrix_power(a, n - 1 - k)
        return t

    def np_la_tensorinv_t(d, a, y, ind):
        n = int(np.prod(np.shape(a)[:ind]))
        y2 = np.reshape(y, (-1, n))
        return np.reshape(-(y2 @ np.reshape(d, (n, -1)) @ y2), np.shape(y))

    def np_la_tensorsolve_t(d, a, b, y, axes, which):
        """``tensordot(a', x) = b`` (``a'``: ``a`` with ``axes`` last): ``dx = solve(a', db - tensordot(da', x))``."""
        if which == 1:
            return np.linalg.tensorsolve(a, d, axes)
        order = np_la_tensorsolve_order(a, b, axes)
        return -np.linalg.tensorsolve(np.transpose(a, order), np.tensordot(np.transpose(d, order), y, np.ndim(y)))

    def np_la_polyfit_t(d, x, ys, deg, w, full, cov, c, which):
        """``c`` solves ``min |w (V c - ys)|`` (full rank): ``dc = pinv(A) (db - dA c) + (A^T A)^-1 dA^T r``
        with ``A = w V``, ``b = w ys``, ``r = b - A c``, ``dA``, ``db`` the tangents of ``A`` and ``b``."""
        if full or cov:
            np_la_polyfit_back(None, x, ys, deg, w, full, cov, c, which)   # (its error)
        v = np.vander(x, deg + 1)
        wt = np.ones(np.shape(x)) if w is None else np.asarray(w)
        vec = np.ndim(ys) == 1
        y2, c2 = (ys[:, None], c[:, None]) if vec else (ys, c)
        av, bv = wt[:, None] * v, wt[:, None] * y2
        dav, dbv = np.zeros(np.shape(av)), np.zeros(np.shape(bv))
        if which == 0:
            k = np.arange(deg, -1, -1)
            dav = wt[:, None] * (k * x[:, None] ** np.maximum(k - 1, 0)) * np.asarray(d)[:, None]
        elif which == 1:
            dbv = wt[:, None] * (d[:, None] if vec else d)
        else:
            dav, dbv = np.asarray(d)[:, None] * v, np.asarray(d)[:, None] * y2
        np_la_check_rank(np.linalg.svdvals(av), "np.polyfit")
        r = bv - av @ c2
        dc = np.linalg.pinv(av) @ (dbv - dav @ c2) + np.linalg.solve(_swap(av) @ av, _swap(dav) @ r)
        return dc[:, 0] if vec else dc

    def np_la_vander_t(d, x, N, increasing):
        n = len(x) if N is None else N
        k = np.arange(n) if increasing else np.arange(n - 1, -1, -1)
        return np.asarray(d)[:, None] * k * x[:, None] ** np.maximum(k - 1, 0)

    def np_la_vnorm_t(d, x, ord, axis, keepdims, y, back):
        """A norm's tangent from its pullback of ones (each norm reads its own slice: np_t_weighted)."""
        g = back(np.ones(np.shape(y)), x, ord, axis, keepdims, y)
        return None if g is None else np_t_weighted(g, d, axis, keepdims, y)   # (ord=0 counts entries: none)

    def np_la_expm_t(d, a):
        """``expm``'s Frechet derivative: the top-right block of ``expm([[a, da], [0, a]])``."""
        n = np.shape(a)[-1]
        top = np.concatenate([a, d], axis=-1)
        bottom = np.concatenate([np.zeros(np.shape(a)), a], axis=-1)
        return _sl.expm(np.concatenate([top, bottom], axis=-2))[..., :n, n:]

    NS.update({f.__name__: f for f in (
        np_la_t_multi, np_la_eigh_t, np_la_eigvalsh_t, np_la_svd_t, np_la_cholesky_t, np_la_qr_t, np_la_pinv_t,
        np_la_lstsq_t, np_la_slogdet_t, np_la_matrix_power_t, np_la_tensorinv_t, np_la_tensorsolve_t,
        np_la_polyfit_t, np_la_vander_t, np_la_vnorm_t, np_la_expm_t)}, np_la_vnorm_back=np_la_vnorm_back,
        np_la_mnorm_back=np_la_mnorm_back, np_la_norm_back=np_la_norm_back)

    A0 = _nr.A0
    # two values (arrays or numbers, not two constants), then constants of any kind (axes as lists or tuples)
    _two = [("A|R", "A|R|N", ...), ("N", "A|R", ...)]
    # results that are arrays or NumPy scalars depending on values: decided at run time
    # (products: bilinear, each argument's tangent term is the product with it replaced by its tangent)
    _r([np.einsum], "subscripts, *operands",
       operands="np_la_ein_grads(dy, subscripts, operands)",
       kinds=some("A|R", among=("N", many("A|R|N"))), out=OBJECT,
       jvp=dict(operands="np_la_t_multi(np.einsum, (subscripts,), operands, doperands)"))
    for _f, _sig, _n in ((np.tensordot, "a, b, axes=2", "np.tensordot"),
                         (np.linalg.tensordot, "a, b, *, axes=2", "np.linalg.tensordot")):
        _r([_f], _sig, kinds=_two, a="np_la_ein_back(dy, np_la_tensordot_spec(a, b, axes), (a, b), 0)",
           b="np_la_ein_back(dy, np_la_tensordot_spec(a, b, axes), (a, b), 1)", out=OBJECT,
           jvp=dict(a=f"{_n}(da, b, axes=axes)", b=f"{_n}(a, db, axes=axes)"))
    _r([np.inner], "a, b", a="np_la_ein_back(dy, np_la_inner_spec(a, b), (a, b), 0)",
       b="np_la_ein_back(dy, np_la_inner_spec(a, b), (a, b), 1)", out=OBJECT,
       jvp=dict(a="np.inner(da, b)", b="np.inner(a, db)"))
    _r([np.kron], "a, b", a="np_la_kron_back(dy, a, b, 0)", b="np_la_kron_back(dy, a, b, 1)", out=_nr._out,
       jvp=dict(a="np.kron(da, b)", b="np.kron(a, db)"))
    # vdot: the flattened arrays, the first conjugated
    _r([np.vdot], "a, b", out=REAL,
       a="np_la_real_like(np.reshape(np.conj(dy) * np.reshape(b, np.shape(a)), np.shape(a)), a)",
       b="np_la_real_like(np.reshape(dy * np.reshape(a, np.shape(b)), np.shape(b)), b)",
       jvp=dict(a="np.vdot(da, b)", b="np.vdot(a, db)"))
    for _f, _n in ((np.vecdot, "np.vecdot"), (np.linalg.vecdot, "np.linalg.vecdot")):
        _r([_f], "x1, x2, *, axis=-1", x1="np_la_vecdot_back(dy, x1, x2, axis, 0)",
           x2="np_la_vecdot_back(dy, x1, x2, axis, 1)", out=OBJECT,
           jvp=dict(x1=f"{_n}(dx1, x2, axis=axis)", x2=f"{_n}(x1, dx2, axis=axis)"))
    _r([np.linalg.outer], "x1, x2", x1="dy @ _cj(x2)", x2="dy.T @ _cj(x1)",
       jvp=dict(x1="np.linalg.outer(dx1, x2)", x2="np.linalg.outer(x1, dx2)"))
    _r([np.linalg.matmul], "x1, x2", x1="np_matmul_back(dy, x1, x2, 0)", x2="np_matmul_back(dy, x1, x2, 1)",
       out=OBJECT, jvp=dict(x1="np.linalg.matmul(dx1, x2)", x2="np.linalg.matmul(x1, dx2)"))
    _r([np.linalg.matrix_transpose], "x", x="_swap(dy)", kinds=A0, linear=True)
    _r([np.linalg.diagonal], "x, *, offset=0", kinds=A0,
       x="np_la_ein_back(dy, '...ij,tij->...t', (x, np_la_diag_sel(x, offset)), 0)", linear=True)
    _r([np.linalg.trace], "x, *, offset=0, dtype=None", kinds=A0, out=OBJECT,
       x="np_la_ein_back(dy, '...ij,tij->...', (x, np_la_diag_sel(x, offset)), 0)", linear=True)

    # ------------------------------------------------------------------ matrix functions (stacks: last two axes)

    nondiff(np_la_tri_masks, np_la_check_rank, np_la_check_distinct, np_la_real_only)

    nondiff(np_la_tensorsolve_order)
    NS.update(np_la_slogdet_back=np_la_slogdet_back, np_la_pinv_back=np_la_pinv_back,
              np_la_eigh_back=np_la_eigh_back, np_la_eigvalsh_back=np_la_eigvalsh_back,
              np_la_svd_back=np_la_svd_back, np_la_svdvals_back=np_la_svdvals_back,
              np_la_cholesky_back=np_la_cholesky_back, np_la_qr_back=np_la_qr_back,
              np_la_lstsq_back=np_la_lstsq_back, np_la_matrix_power_back=np_la_matrix_power_back,
              np_la_multi_dot_back=np_la_multi_dot_back, np_la_tensorinv_back=np_la_tensorinv_back,
              np_la_tensorsolve_back=np_la_tensorsolve_back, np_la_cross_back=np_la_cross_back)
    _r([np.linalg.slogdet], "a", a="np_la_slogdet_back(dy, a)", kinds=A0, out=OBJECT, maybe_none=True,
       jvp=dict(a="np_la_slogdet_t(da, a)"))
    _r([np.linalg.pinv], "a, rcond=None, hermitian=False, *, rtol=None", kinds=A0,
       a="np_la_pinv_back(dy, a, y, hermitian)", jvp=dict(a="np_la_pinv_t(da, a, y, hermitian)"),
       fwd="np.linalg.pinv(a, rcond, hermitian) if rtol is None else np.linalg.pinv(a, rcond, hermitian, rtol=rtol)")
    _r([np.linalg.eigh], "a, UPLO='L'", a="np_la_eigh_back(dy, a, UPLO, y)", kinds=A0, out=OBJECT,
       maybe_none=True, jvp=dict(a="np_la_eigh_t(da, a, UPLO, y)"))
    _r([np.linalg.eigvalsh], "a, UPLO='L'", a="np_la_eigvalsh_back(dy, a, UPLO)", kinds=A0,
       jvp=dict(a="np_la_eigvalsh_t(da, a, UPLO)"))
    _r([np.linalg.svd], "a, full_matrices=True, compute_uv=True, hermitian=False", kinds=A0, out=OBJECT,
       a="np_la_svd_back(dy, a, full_matrices, compute_uv, hermitian, y)", maybe_none=True,
       jvp=dict(a="np_la_svd_t(da, a, full_matrices, compute_uv, hermitian, y)"))
    _r([np.linalg.svdvals], "x", x="np_la_svdvals_back(dy, x)", kinds=A0,
       jvp=dict(x="np_la_svd_t(dx, x, False, False, False, None)"))
    _r([np.linalg.cholesky], "a, *, upper=False", a="np_la_cholesky_back(dy, a, upper, y)", kinds=A0,
       jvp=dict(a="np_la_cholesky_t(da, a, upper, y)"))
    _r([np.linalg.qr], "a, mode='reduced'", a="np_la_qr_back(dy, a, mode, y)", kinds=A0, out=OBJECT,
       maybe_none=True, jvp=dict(a="np_la_qr_t(da, a, mode, y)"))
    _r([np.linalg.lstsq], "a, b, rcond=None", kinds=_two, out=OBJECT, maybe_none=True,
       a="np_la_lstsq_back(dy, a, b, y, 0)", b="np_la_lstsq_back(dy, a, b, y, 1)",
       jvp=dict(a="np_la_lstsq_t(da, a, b, y, 0)", b="np_la_lstsq_t(db, a, b, y, 1)"))
    _r([np.linalg.matrix_power], "a, n", a="np_la_matrix_power_back(dy, a, n)", kinds=A0, maybe_none=True,
       jvp=dict(a="np_la_matrix_power_t(da, a, n)"))
    _r([np.linalg.multi_dot], "arrays, *, out=None", kinds=_nr.SEQ, maybe_none=True, reads_sequence=True,
       arrays="_nr_seq_back(ctx, np_la_multi_dot_back(dy, arrays), arrays)",
       jvp=dict(arrays="np_la_t_multi(lambda *xs: np.linalg.multi_dot(xs), (), arrays, darrays)"))
    NS.update(_nr_seq_back=_nr.np_seq_back)
    _r([np.linalg.tensorinv], "a, ind=2", a="np_la_tensorinv_back(dy, a, y, ind)", kinds=A0,
       jvp=dict(a="np_la_tensorinv_t(da, a, y, ind)"))
    _r([np.linalg.tensorsolve], "a, b, axes=None", kinds=_two,
       a="np_like(np_la_tensorsolve_back(dy, a, b, y, axes, 0), a)",
       b="np_like(np_la_tensorsolve_back(dy, a, b, y, axes, 1), b)",
       jvp=dict(a="np_la_tensorsolve_t(da, a, b, y, axes, 0)", b="np_la_tensorsolve_t(db, a, b, y, axes, 1)"))
    _r([np.cross], "a, b, axisa=-1, axisb=-1, axisc=-1, axis=None", kinds=_two,
       a="np_la_cross_back(dy, a, b, axisa, axisb, axisc, axis, 0)",
       b="np_la_cross_back(dy, a, b, axisa, axisb, axisc, axis, 1)",
       jvp=dict(a="np.cross(da, b, axisa, axisb, axisc, axis)", b="np.cross(a, db, axisa, axisb, axisc, axis)"))
    _r([np.linalg.cross], "x1, x2, *, axis=-1", kinds=_two,
       x1="np_la_cross_back(dy, x1, x2, axis, axis, axis, None, 0)",
       x2="np_la_cross_back(dy, x1, x2, axis, axis, axis, None, 1)",
       jvp=dict(x1="np.linalg.cross(dx1, x2, axis=axis)", x2="np.linalg.cross(x1, dx2, axis=axis)"))

    # ------------------------------------------------------------------ norms

    NS.update(np_la_norm_back=np_la_norm_back, np_la_vnorm_back=np_la_vnorm_back,
              np_la_mnorm_back=np_la_mnorm_back)
    # (a norm reads its own slice: its tangent weighs the tangent by its pullback of ones, np_la_vnorm_t)
    _r([np.linalg.norm], "x, ord=None, axis=None, keepdims=False", kinds=A0, out=OBJECT, maybe_none=True,
       x="np_la_norm_back(dy, x, ord, axis, keepdims, y)",
       jvp=dict(x="np_la_vnorm_t(dx, x, ord, axis, keepdims, y, np_la_norm_back)"))
    _r([np.linalg.vector_norm], "x, *, axis=None, keepdims=False, ord=2", kinds=A0, out=OBJECT, maybe_none=True,
       x="np_la_vnorm_back(dy, x, ord, axis, keepdims, y)",
       jvp=dict(x="np_la_vnorm_t(dx, x, ord, axis, keepdims, y, np_la_vnorm_back)"))
    _r([np.linalg.matrix_norm], "x, *, keepdims=False, ord='fro'", kinds=A0, out=OBJECT,
       x="np_la_mnorm_back(dy, x, ord, (-2, -1), keepdims, y)",
       jvp=dict(x="np_la_vnorm_t(dx, x, ord, (-2, -1), keepdims, y, np_la_mnorm_back)"))

    # ------------------------------------------------------------------ FFT

    nondiff(np_fft_plan, np_fft_weights)
    NS.update(np_fft_c2c_back=np_fft_c2c_back, np_fft_r2c_back=np_fft_r2c_back, np_fft_c2r_back=np_fft_c2r_back,
              _DUAL=_DUAL)
    _ONE = "a, n=None, axis=-1, norm=None, out=None"
    for _f, _inv in ((np.fft.fft, False), (np.fft.ifft, True)):
        _r([_f], _ONE, kinds=A0, a=f"np_fft_c2c_back(dy, a, n, axis, norm, {_inv}, True)", linear=True)
    for _f, _inv, _ax in ((np.fft.fftn, False, None), (np.fft.ifftn, True, None), (np.fft.fft2, False, (-2, -1)),
                          (np.fft.ifft2, True, (-2, -1))):
        _r([_f], f"a, s=None, axes={_ax}, norm=None, out=None", kinds=A0,
           a=f"np_fft_c2c_back(dy, a, s, axes, norm, {_inv}, False)", linear=True)
    # (all linear, the real-input and real-output ones over the reals)
    _r([np.fft.rfft], _ONE, kinds=A0, a="np_fft_r2c_back(dy, a, n, axis, norm, True)", linear=True)
    _r([np.fft.irfft], _ONE, kinds=A0, a="np_fft_c2r_back(dy, a, n, axis, norm, True)", linear=True)
    for _f, _ax in ((np.fft.rfftn, None), (np.fft.rfft2, (-2, -1))):
        _r([_f], f"a, s=None, axes={_ax}, norm=None, out=None", kinds=A0,
           a="np_fft_r2c_back(dy, a, s, axes, norm, False)", linear=True)
    for _f, _ax in ((np.fft.irfftn, None), (np.fft.irfft2, (-2, -1))):
        _r([_f], f"a, s=None, axes={_ax}, norm=None, out=None", kinds=A0,
           a="np_fft_c2r_back(dy, a, s, axes, norm, False)", linear=True)
    # hfft(a) = irfft(conj(a)) and ihfft(a) = conj(rfft(a)), each with the other normalisation
    _r([np.fft.hfft], _ONE, kinds=A0, a="np_la_real_like(_cj(np_fft_c2r_back(dy, a, n, axis, _DUAL[norm], True)), a)",
       linear=True)
    _r([np.fft.ihfft], _ONE, kinds=A0, a="np_fft_r2c_back(_cj(dy), a, n, axis, _DUAL[norm], True)", linear=True)
    _r([np.fft.fftshift], "x, axes=None", kinds=A0, x="np.fft.ifftshift(dy, axes)", linear=True)
    _r([np.fft.ifftshift], "x, axes=None", kinds=A0, x="np.fft.fftshift(dy, axes)", linear=True)

    # ------------------------------------------------------------------ convolution, polynomials

    nondiff(np_la_conv_offset)
    NS.update(np_la_conv_back=np_la_conv_back, np_la_polyval_p=np_la_polyval_p, np_la_polyval_x=np_la_polyval_x,
              np_la_vander_back=np_la_vander_back)
    _ARR2 = ("A", "A", ...)
    for _f, _corr, _mode in ((np.convolve, False, "full"), (np.correlate, True, "valid")):
        _r([_f], f"a, v, mode={_mode!r}", kinds=_ARR2, a=f"np_la_conv_back(dy, a, v, mode, {_corr}, 0)",
           v=f"np_la_conv_back(dy, a, v, mode, {_corr}, 1)",
           jvp=dict(a=f"np.{_f.__name__}(da, v, mode)", v=f"np.{_f.__name__}(a, dv, mode)"))
    _X = lambda ks: ARRAY if ks[1] == ARRAY else REAL  # noqa: E731
    _r([np.polyval], "p, x", kinds=("A", "A|R", ...), out=_X, maybe_none=True,
       p="np_la_polyval_p(dy, p, x)", x="np_la_polyval_x(dy, p, x)",
       jvp=dict(p="np.polyval(dp, x)", x="dx * np.polyval(np.polyder(p), x)"))
    _r([np.polyval], "p, x", kinds=("L|P|PT|PR", "A|R", ...), out=_X,
       maybe_none=True, p="_nr_seq_back(ctx, np_la_polyval_p(dy, np.asarray(p), x), p)",
       x="np_la_polyval_x(dy, p, x)",
       jvp=dict(p="np.polyval(np.asarray(_tz(dp, p)), x)", x="dx * np.polyval(np.polyder(np.asarray(p)), x)"))
    _r([np.vander], "x, N=None, increasing=False", kinds=A0, x="np_la_vander_back(dy, x, N, increasing)",
       jvp=dict(x="np_la_vander_t(dx, x, N, increasing)"))

    # ------------------------------------------------------------ polynomial fits, scipy.linalg

    NS.update(np_la_polyfit_back=np_la_polyfit_back)
    # NumPy's parameter ``y`` is ``ys`` here (``y`` names the result in a rule): pass it by position
    _r([np.polyfit], "x, ys, deg, rcond=None, full=False, w=None, cov=False", out=ARRAY, maybe_none=True,
       kinds=("A", "A", ...),
       **{p: f"np_la_polyfit_back(dy, x, ys, deg, w, full, cov, y, {i})" for i, p in enumerate(("x", "ys", "w"))},
       jvp={p: f"np_la_polyfit_t(d{p}, x, ys, deg, w, full, cov, y, {i})" for i, p in enumerate(("x", "ys", "w"))})

    try:
        import scipy.linalg as _sl
    except ImportError:  # pragma: no cover
        _sl = None

if np is not None and _sl is not None:
    def np_la_expm_back(dy, a):
        """``Y = expm(A)``: the adjoint is the top-right block of ``expm([[A^H, dY], [0, A^H]])`` (the
        Frechet derivative's adjoint; torch's convention for complex ``A``), itself an expm, so
        differentiable again. Stacks of matrices are stacks of blocks."""
        at = _cj(_swap(a))
        n = np.shape(a)[-1]
        top = np.concatenate([at, dy], axis=-1)
        bottom = np.concatenate([np.zeros_like(at), at], axis=-1)
        return np_la_real_like(_sl.expm(np.concatenate([top, bottom], axis=-2))[..., :n, n:], a)

    def np_la_sl_solve_back(dy, a, b, y, assume_a, transposed, which):
        """``scipy.linalg.solve`` for a general matrix (the structured solvers read one triangle)."""
        if assume_a not in (None, "gen", "general") or transposed:
            raise GradientError("torchzygote differentiates scipy.linalg.solve with assume_a='gen' and "
                                "transposed=False only (the structured solvers read one triangle); pass the "
                                "full matrix with the default assume_a, or use np.linalg.solve")
        if not np.ndim(a):   # numbers: y = b / a
            return np_like(dy / a if which == 1 else -dy * y / a, b if which == 1 else a)
        return _nr.np_solve_back(dy, a, b, y, which)

    def np_la_sl_solve_t(d, a, b, y, assume_a, transposed, which):
        """``scipy.linalg.solve``'s tangent, for the general matrices its pullback takes."""
        if assume_a not in (None, "gen", "general") or transposed:
            np_la_sl_solve_back(None, a, b, y, assume_a, transposed, which)   # (its error)
        if not np.ndim(a):   # numbers: y = b / a
            return d / a if which == 1 else -d * y / a
        return _sl.solve(a, d) if which == 1 else np_t_solve_a(d, a, b, y)

    NS.update(np_la_expm_back=np_la_expm_back, np_la_sl_solve_back=np_la_sl_solve_back,
              np_la_sl_solve_t=np_la_sl_solve_t)
    _r([_sl.expm], "A", A="np_la_expm_back(dy, A)", kinds=A0, jvp=dict(A="np_la_expm_t(dA, A)"))
    _r([_sl.inv], "a, overwrite_a=False, check_finite=True", a="np_inv_back(dy, y)", kinds=A0,
       jvp=dict(a="-(y @ da @ y)"))
    _r([_sl.det], "a, overwrite_a=False, check_finite=True", a="np_det_back(dy, a, y)", kinds=A0, out=_nr._out,
       jvp=dict(a="np_t_det(da, a, y)"))
    _r([_sl.solve], "a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None, "
       "transposed=False", kinds=_two, **{p: f"np_la_sl_solve_back(dy, a, b, y, assume_a, transposed, {i})"
                                          for i, p in enumerate("ab")},
       jvp={p: f"np_la_sl_solve_t(d{p}, a, b, y, assume_a, transposed, {i})" for i, p in enumerate("ab")})
    _r([_sl.cholesky], "a, lower=False, overwrite_a=False, check_finite=True",
       a="np_la_cholesky_back(dy, a, not lower, y)", kinds=A0, jvp=dict(a="np_la_cholesky_t(da, a, not lower, y)"))
