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
"""
from __future__ import annotations

import ast

from ..errors import GradientError
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
                                    np_la_cross_back, np_la_vnorm_back, np_la_mnorm_back, np_la_norm_back)
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

    A0 = _nr.A0
    # two values (arrays or numbers, not two constants), then constants of any kind (axes as lists or tuples)
    _two = [("A|R", "A|R|N", ...), ("N", "A|R", ...)]
    # results that are arrays or NumPy scalars depending on values: decided at run time
    _r([np.einsum], "subscripts, *operands",
       operands="np_la_ein_grads(dy, subscripts, operands)",
       kinds=some("A|R", among=("N", many("A|R|N"))), out=OBJECT)
    for _f, _sig in ((np.tensordot, "a, b, axes=2"), (np.linalg.tensordot, "a, b, *, axes=2")):
        _r([_f], _sig, kinds=_two, a="np_la_ein_back(dy, np_la_tensordot_spec(a, b, axes), (a, b), 0)",
           b="np_la_ein_back(dy, np_la_tensordot_spec(a, b, axes), (a, b), 1)", out=OBJECT)
    _r([np.inner], "a, b", a="np_la_ein_back(dy, np_la_inner_spec(a, b), (a, b), 0)",
       b="np_la_ein_back(dy, np_la_inner_spec(a, b), (a, b), 1)", out=OBJECT)
    _r([np.kron], "a, b", a="np_la_kron_back(dy, a, b, 0)", b="np_la_kron_back(dy, a, b, 1)", out=_nr._out)
    # vdot: the flattened arrays, the first conjugated
    _r([np.vdot], "a, b", out=REAL,
       a="np_la_real_like(np.reshape(np.conj(dy) * np.reshape(b, np.shape(a)), np.shape(a)), a)",
       b="np_la_real_like(np.reshape(dy * np.reshape(_cj(a), np.shape(b)), np.shape(b)), b)")
    for _f in (np.vecdot, np.linalg.vecdot):
        _r([_f], "x1, x2, *, axis=-1", x1="np_la_vecdot_back(dy, x1, x2, axis, 0)",
           x2="np_la_vecdot_back(dy, x1, x2, axis, 1)", out=OBJECT)
    _r([np.linalg.outer], "x1, x2", x1="dy @ x2", x2="dy.T @ x1")
    _r([np.linalg.matmul], "x1, x2", x1="np_matmul_back(dy, x1, x2, 0)", x2="np_matmul_back(dy, x1, x2, 1)",
       out=OBJECT)
    _r([np.linalg.matrix_transpose], "x", x="_swap(dy)", kinds=A0)
    _r([np.linalg.diagonal], "x, *, offset=0", kinds=A0,
       x="np_la_ein_back(dy, '...ij,tij->...t', (x, np_la_diag_sel(x, offset)), 0)")
    _r([np.linalg.trace], "x, *, offset=0, dtype=None", kinds=A0, out=OBJECT,
       x="np_la_ein_back(dy, '...ij,tij->...', (x, np_la_diag_sel(x, offset)), 0)")

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
    _r([np.linalg.slogdet], "a", a="np_la_slogdet_back(dy, a)", kinds=A0, out=OBJECT, maybe_none=True)
    _r([np.linalg.pinv], "a, rcond=None, hermitian=False, *, rtol=None", kinds=A0,
       a="np_la_pinv_back(dy, a, y, hermitian)",
       fwd="np.linalg.pinv(a, rcond, hermitian) if rtol is None else np.linalg.pinv(a, rcond, hermitian, rtol=rtol)")
    _r([np.linalg.eigh], "a, UPLO='L'", a="np_la_eigh_back(dy, a, UPLO, y)", kinds=A0, out=OBJECT,
       maybe_none=True)
    _r([np.linalg.eigvalsh], "a, UPLO='L'", a="np_la_eigvalsh_back(dy, a, UPLO)", kinds=A0)
    _r([np.linalg.svd], "a, full_matrices=True, compute_uv=True, hermitian=False", kinds=A0, out=OBJECT,
       a="np_la_svd_back(dy, a, full_matrices, compute_uv, hermitian, y)", maybe_none=True)
    _r([np.linalg.svdvals], "x", x="np_la_svdvals_back(dy, x)", kinds=A0)
    _r([np.linalg.cholesky], "a, *, upper=False", a="np_la_cholesky_back(dy, a, upper, y)", kinds=A0)
    _r([np.linalg.qr], "a, mode='reduced'", a="np_la_qr_back(dy, a, mode, y)", kinds=A0, out=OBJECT,
       maybe_none=True)
    _r([np.linalg.lstsq], "a, b, rcond=None", kinds=_two, out=OBJECT, maybe_none=True,
       a="np_la_lstsq_back(dy, a, b, y, 0)", b="np_la_lstsq_back(dy, a, b, y, 1)")
    _r([np.linalg.matrix_power], "a, n", a="np_la_matrix_power_back(dy, a, n)", kinds=A0, maybe_none=True)
    _r([np.linalg.multi_dot], "arrays, *, out=None", kinds=_nr.SEQ, maybe_none=True, reads_sequence=True,
       arrays="_nr_seq_back(ctx, np_la_multi_dot_back(dy, arrays), arrays)")
    NS.update(_nr_seq_back=_nr.np_seq_back)
    _r([np.linalg.tensorinv], "a, ind=2", a="np_la_tensorinv_back(dy, a, y, ind)", kinds=A0)
    _r([np.linalg.tensorsolve], "a, b, axes=None", kinds=_two,
       a="np_like(np_la_tensorsolve_back(dy, a, b, y, axes, 0), a)",
       b="np_like(np_la_tensorsolve_back(dy, a, b, y, axes, 1), b)")
    _r([np.cross], "a, b, axisa=-1, axisb=-1, axisc=-1, axis=None", kinds=_two,
       a="np_la_cross_back(dy, a, b, axisa, axisb, axisc, axis, 0)",
       b="np_la_cross_back(dy, a, b, axisa, axisb, axisc, axis, 1)")
    _r([np.linalg.cross], "x1, x2, *, axis=-1", kinds=_two,
       x1="np_la_cross_back(dy, x1, x2, axis, axis, axis, None, 0)",
       x2="np_la_cross_back(dy, x1, x2, axis, axis, axis, None, 1)")

    # ------------------------------------------------------------------ norms

    NS.update(np_la_norm_back=np_la_norm_back, np_la_vnorm_back=np_la_vnorm_back,
              np_la_mnorm_back=np_la_mnorm_back)
    _r([np.linalg.norm], "x, ord=None, axis=None, keepdims=False", kinds=A0, out=OBJECT, maybe_none=True,
       x="np_la_norm_back(dy, x, ord, axis, keepdims, y)")
    _r([np.linalg.vector_norm], "x, *, axis=None, keepdims=False, ord=2", kinds=A0, out=OBJECT, maybe_none=True,
       x="np_la_vnorm_back(dy, x, ord, axis, keepdims, y)")
    _r([np.linalg.matrix_norm], "x, *, keepdims=False, ord='fro'", kinds=A0, out=OBJECT,
       x="np_la_mnorm_back(dy, x, ord, (-2, -1), keepdims, y)")

    # ------------------------------------------------------------------ FFT

    nondiff(np_fft_plan, np_fft_weights)
    NS.update(np_fft_c2c_back=np_fft_c2c_back, np_fft_r2c_back=np_fft_r2c_back, np_fft_c2r_back=np_fft_c2r_back,
              _DUAL=_DUAL)
    _ONE = "a, n=None, axis=-1, norm=None, out=None"
    for _f, _inv in ((np.fft.fft, False), (np.fft.ifft, True)):
        _r([_f], _ONE, kinds=A0, a=f"np_fft_c2c_back(dy, a, n, axis, norm, {_inv}, True)")
    for _f, _inv, _ax in ((np.fft.fftn, False, None), (np.fft.ifftn, True, None), (np.fft.fft2, False, (-2, -1)),
                          (np.fft.ifft2, True, (-2, -1))):
        _r([_f], f"a, s=None, axes={_ax}, norm=None, out=None", kinds=A0,
           a=f"np_fft_c2c_back(dy, a, s, axes, norm, {_inv}, False)")
    _r([np.fft.rfft], _ONE, kinds=A0, a="np_fft_r2c_back(dy, a, n, axis, norm, True)")
    _r([np.fft.irfft], _ONE, kinds=A0, a="np_fft_c2r_back(dy, a, n, axis, norm, True)")
    for _f, _ax in ((np.fft.rfftn, None), (np.fft.rfft2, (-2, -1))):
        _r([_f], f"a, s=None, axes={_ax}, norm=None, out=None", kinds=A0,
           a="np_fft_r2c_back(dy, a, s, axes, norm, False)")
    for _f, _ax in ((np.fft.irfftn, None), (np.fft.irfft2, (-2, -1))):
        _r([_f], f"a, s=None, axes={_ax}, norm=None, out=None", kinds=A0,
           a="np_fft_c2r_back(dy, a, s, axes, norm, False)")
    # hfft(a) = irfft(conj(a)) and ihfft(a) = conj(rfft(a)), each with the other normalisation
    _r([np.fft.hfft], _ONE, kinds=A0, a="np_la_real_like(_cj(np_fft_c2r_back(dy, a, n, axis, _DUAL[norm], True)), a)")
    _r([np.fft.ihfft], _ONE, kinds=A0, a="np_fft_r2c_back(_cj(dy), a, n, axis, _DUAL[norm], True)")
    _r([np.fft.fftshift], "x, axes=None", kinds=A0, x="np.fft.ifftshift(dy, axes)")
    _r([np.fft.ifftshift], "x, axes=None", kinds=A0, x="np.fft.fftshift(dy, axes)")

    # ------------------------------------------------------------------ convolution, polynomials

    nondiff(np_la_conv_offset)
    NS.update(np_la_conv_back=np_la_conv_back, np_la_polyval_p=np_la_polyval_p, np_la_polyval_x=np_la_polyval_x,
              np_la_vander_back=np_la_vander_back)
    _ARR2 = ("A", "A", ...)
    for _f, _corr, _mode in ((np.convolve, False, "full"), (np.correlate, True, "valid")):
        _r([_f], f"a, v, mode={_mode!r}", kinds=_ARR2, a=f"np_la_conv_back(dy, a, v, mode, {_corr}, 0)",
           v=f"np_la_conv_back(dy, a, v, mode, {_corr}, 1)")
    _X = lambda ks: ARRAY if ks[1] == ARRAY else REAL  # noqa: E731
    _r([np.polyval], "p, x", kinds=("A", "A|R", ...), out=_X, maybe_none=True,
       p="np_la_polyval_p(dy, p, x)", x="np_la_polyval_x(dy, p, x)")
    _r([np.polyval], "p, x", kinds=("L|P|PT|PR", "A|R", ...), out=_X,
       maybe_none=True, p="_nr_seq_back(ctx, np_la_polyval_p(dy, np.asarray(p), x), p)",
       x="np_la_polyval_x(dy, p, x)")
    _r([np.vander], "x, N=None, increasing=False", kinds=A0, x="np_la_vander_back(dy, x, N, increasing)")

    # ------------------------------------------------------------ polynomial fits, scipy.linalg

    NS.update(np_la_polyfit_back=np_la_polyfit_back)
    # NumPy's parameter ``y`` is ``ys`` here (``y`` names the result in a rule): pass it by position
    _r([np.polyfit], "x, ys, deg, rcond=None, full=False, w=None, cov=False", out=ARRAY, maybe_none=True,
       kinds=("A", "A", ...),
       **{p: f"np_la_polyfit_back(dy, x, ys, deg, w, full, cov, y, {i})" for i, p in enumerate(("x", "ys", "w"))})

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

    NS.update(np_la_expm_back=np_la_expm_back, np_la_sl_solve_back=np_la_sl_solve_back)
    _r([_sl.expm], "A", A="np_la_expm_back(dy, A)", kinds=A0)
    _r([_sl.inv], "a, overwrite_a=False, check_finite=True", a="np_inv_back(dy, y)", kinds=A0)
    _r([_sl.det], "a, overwrite_a=False, check_finite=True", a="np_det_back(dy, a, y)", kinds=A0, out=_nr._out)
    _r([_sl.solve], "a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None, "
       "transposed=False", kinds=_two, **{p: f"np_la_sl_solve_back(dy, a, b, y, assume_a, transposed, {i})"
                                          for i, p in enumerate("ab")})
    _r([_sl.cholesky], "a, lower=False, overwrite_a=False, check_finite=True",
       a="np_la_cholesky_back(dy, a, not lower, y)", kinds=A0)
