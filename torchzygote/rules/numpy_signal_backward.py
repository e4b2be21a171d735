"""Backward helpers of the NumPy FFT, convolution and polynomial rules (rules/numpy_linalg.py),
beside the linear algebra's (numpy_linalg_backward.py). Each uses only functions with rules (or
helpers marked nondiff there), so a gradient is differentiable again."""
from __future__ import annotations

from ..errors import GradientError
from . import numpy_rules as _nr
from .numpy_linalg_backward import _cj, _swap, np_la_check_rank, np_la_real_like, np_la_real_only

np = _nr.np
np_like = getattr(_nr, "np_like", None)   # (numpy_rules defines it where NumPy is installed)


# Each transform is linear: its gradient is the adjoint transform with the dual normalisation
# (an unscaled forward transform's adjoint is the unscaled inverse), with the input's zero padding
# or cropping (``n``, ``s``) undone; a real input gets the real part. Half-spectrum transforms: the
# adjoint of keeping n//2+1 outputs pads with zeros; that of irfft doubles the entries that stand
# for two (torch's convention).
_DUAL = {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}

def np_fft_plan(x, s, axes, one, c2r=False):
    """``(axes, sizes)`` of a transform: ``one`` for the 1-D functions (``s`` is n, ``axes`` the
    axis); ``c2r``: the last size defaults to ``2 (m - 1)``."""
    shape = np.shape(x)
    nd = len(shape)
    if one:
        axes, s = [axes], None if s is None else [s]
    elif axes is None:
        axes = list(range(nd)) if s is None else list(range(nd - len(s), nd))
    axes = [k % nd for k in axes]
    if s is None:
        s = [shape[k] for k in axes]
        if c2r:
            s[-1] = 2 * (shape[axes[-1]] - 1)
    return axes, list(s)

def np_fft_weights(x, axis, n):
    """irfft's adjoint weights along ``axis``: 2 for the entries that stand for two, else 1."""
    w = np.ones(n // 2 + 1)
    w[1:n - n // 2] = 2.0
    shape = [1] * len(np.shape(x))
    shape[axis] = n // 2 + 1
    return np.reshape(w, shape)

def np_fft_fit(z, n, axis):
    """``z`` cropped or padded with zeros to length ``n`` along ``axis`` (a product with a constant
    matrix: differentiable again)."""
    m = np.shape(z)[axis]
    if m == n:
        return z
    return np.moveaxis(np.moveaxis(z, axis, -1) @ np.eye(m, n), -1, axis)

def np_fft_c2c_back(dy, x, s, axes, norm, inverse, one):
    ax, _ = np_fft_plan(x, s, axes, one)
    g = (np.fft.fftn if inverse else np.fft.ifftn)(dy, axes=ax, norm=_DUAL[norm])
    for k in ax:
        g = np_fft_fit(g, np.shape(x)[k], k)
    return np_la_real_like(g, x)

def np_fft_r2c_back(dy, x, s, axes, norm, one):
    ax, ss = np_fft_plan(x, s, axes, one)
    g = np.fft.ifftn(np_fft_fit(dy, ss[-1], ax[-1]), axes=ax, norm=_DUAL[norm]).real
    for k in ax:
        g = np_fft_fit(g, np.shape(x)[k], k)
    return np_like(g, x)

def np_fft_c2r_back(dy, x, s, axes, norm, one):
    ax, ss = np_fft_plan(x, s, axes, one, c2r=True)
    if np.iscomplexobj(dy):   # the output is real: so is its gradient (a complex factor made it complex)
        dy = dy.real
    g = np.fft.rfftn(dy, axes=ax, norm=_DUAL[norm]) * np_fft_weights(dy, ax[-1], ss[-1])
    for k in ax:
        g = np_fft_fit(g, np.shape(x)[k], k)
    return np_la_real_like(g, x)

def np_la_conv_offset(n, m, mode, corr):
    """Where ``mode``'s output starts in the full convolution (correlation) of lengths n, m."""
    k = min(n, m)
    if mode in ("full", 2):
        return 0
    if mode in ("valid", 0):
        return k - 1
    return (k - 1) // 2 if not corr or n >= m else k // 2

def np_la_conv_back(dy, a, v, mode, corr, i):
    """``y = full(a, w)[s:s+K]`` with ``w = v`` (convolve) or ``conj(v)[::-1]`` (correlate): each
    gradient is a slice of the full convolution of ``dy`` with the other factor reversed."""
    n, m = np.shape(a)[0], np.shape(v)[0]
    s = np_la_conv_offset(n, m, mode, corr)
    if i == 0:
        w = _cj(v)[::-1] if corr else v
        return np_la_real_like(np.convolve(dy, _cj(w)[::-1], "full")[m - 1 - s:m - 1 - s + n], a)
    gw = np.convolve(dy, _cj(a)[::-1], "full")[n - 1 - s:n - 1 - s + m]
    return np_la_real_like(_cj(gw)[::-1] if corr else gw, v)

def np_la_polyval_p(dy, p, x):
    """The coefficients' gradient: ``dy`` times the powers of ``x`` (conjugated: torch's convention),
    summed over ``x``'s entries."""
    xa = _cj(np.asarray(x))
    pw = xa[..., None] ** np.arange(len(p) - 1, -1, -1)
    return np.sum(np.asarray(dy)[..., None] * pw, axis=tuple(range(len(np.shape(xa)))))

def np_la_polyval_x(dy, p, x):
    pa = _cj(np.asarray(p))
    if len(pa) < 2:
        return None
    return np_like(dy * np.polyval(pa[:-1] * np.arange(len(pa) - 1, 0, -1), _cj(x)), x)

def np_la_vander_back(dy, x, N, increasing):
    x = _cj(np.asarray(x))   # (complex: torch's convention)
    n = len(x) if N is None else N
    k = np.arange(n) if increasing else np.arange(n - 1, -1, -1)
    return np.sum(dy * k * x[:, None] ** np.maximum(k - 1, 0), axis=1)

def np_la_polyfit_back(dy, x, ys, deg, w, full, cov, c, which):
    """``c = np.polyfit(x, ys, deg, w=w)``, the least-squares solution of ``w (V c - ys)`` with
    ``V = vander(x, deg + 1)`` (full rank): the gradient of ``x`` (which 0), ``ys`` (1) or ``w`` (2),
    from the normal equations ``M c = V^T W^2 ys``: with ``u = M^-1 dc`` and the residual
    ``r = ys - V c``, ``gys = W^2 V u``, ``gV = W^2 (r u^T - V u c^T)``, ``gw = 2 w sum(V u * r)``.
    ``M`` is solved with its columns scaled to unit norm (as NumPy scales them)."""
    for v in (x, ys, w):   # (the normal equations below are written for real data)
        np_la_real_only(v, "np.polyfit")
    if full or cov:
        raise GradientError("torchzygote differentiates np.polyfit's coefficients only (full=False, "
                            "cov=False); for residuals or the covariance, fit with np.linalg.lstsq on "
                            "np.vander(x, deg + 1)")
    v = np.vander(x, deg + 1)
    wt = np.ones(np.shape(x)) if w is None else w
    ww = (wt * wt)[:, None]
    vec = np.ndim(ys) == 1
    y2, c2, g2 = (ys[:, None], c[:, None], dy[:, None]) if vec else (ys, c, dy)
    s = np.sqrt(np.sum(ww * v * v, axis=0))
    vs = v / s
    np_la_check_rank(np.linalg.svdvals(wt[:, None] * vs), "np.polyfit")
    u = np.linalg.solve(_swap(vs) @ (ww * vs), g2 / s[:, None]) / s[:, None]
    vu = v @ u
    if which == 1:
        return (ww * vu)[:, 0] if vec else ww * vu
    r = y2 - v @ c2
    if which == 2:
        return np_like(2.0 * wt * np.sum(vu * r, axis=1), w)
    return np_la_vander_back(ww * (r @ _swap(u) - vu @ _swap(c2)), x, deg + 1, False)
