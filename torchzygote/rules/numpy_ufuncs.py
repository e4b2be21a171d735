"""NumPy rules: elementwise ufuncs beyond the core table, ufunc keywords, ufunc methods (outer,
reduce, accumulate) and scipy.special.

Written with the table helpers of ``numpy_rules`` (``_r``): each rule applies to arrays, Python
numbers and NumPy scalars where NumPy does, and its backward uses only functions with rules (or
helpers with rules of their own), so it is differentiable again.

Conventions (a function not differentiable at a point):
  fmax/fmin      as maximum/minimum (a tie splits the gradient in halves), but a NaN loses: the
                 number that is returned gets all of the gradient; where both are NaN, neither does.
  sinc           sinc'(0) = 0; near 0 the derivative is its Taylor polynomial (smooth to every order).
  i0e            kink at 0 (exp(-|x|)): the derivative there is 0, as for abs (sign(0) = 0).
  heaviside      no gradient in x1 (piecewise constant); x2, the value at x1 == 0, gets dy there.
  nan_to_num     the entries replaced (NaN, +-inf) get no gradient.
  xlogy/xlog1py  at x == 0, y == 0 (the value is 0 for every y >= 0) no gradient in y.
  orders/shapes  iv(v, x), gammainc(a, x), zeta(x, q)...: no closed form in v, a, x: an integer
                 argument gets no gradient (it is a constant), a float one that is differentiated is a
                 GradientError saying what to do.
  angle/imag     a real argument: no gradient (constant). A complex array z: the gradient has
                 torch's convention (d/dre + i d/dim), as the rest of the numpy rules.
  maximum.reduce spreads the gradient evenly over tied entries (np.max's rule); maximum.accumulate
                 splits ties pairwise in halves, as np.maximum.
"""
from __future__ import annotations

import linecache

from ..errors import GradientError
from . import numpy_rules as _core
from .numpy_tangent import np_t_kept, np_t_max, np_t_prod
from .registry import ARRAY, many, nondiff, reads_metadata, some

np = _core.np

if np is not None:
    from .numpy_rules import UFKW, _num, _out, np_like, np_uf_plain  # noqa: F401  (its rule is there)

    NS = dict(_core.ns)

    def _r(fns, sig, **kw):
        _core._r(fns, sig, ns=NS, **kw)

    def _sig(f, params):
        return f"{params}, {UFKW}" if isinstance(f, np.ufunc) else params

    def _wrap(f, e, p):
        e = f"np_like({e}, {p})"
        return f"np_uf_plain({e}, out, where)" if isinstance(f, np.ufunc) else e

    def _tangents(f, grads, own=None):
        """Tangent terms from a table's formulas (``dy`` read as the argument's tangent: right for the
        holomorphic functions, the real ones, and the ones linear in their argument), ``own``
        replacing some; a ufunc keeps its keyword checks."""
        ts = {p: _core._dy_is(e, "d" + p) for p, e in grads.items() if e is not None}
        ts.update(own or {})
        return {p: f"np_uf_plain({e}, out, where)" if isinstance(f, np.ufunc) else e for p, e in ts.items()}

    def np_uf_fixed(v, name):
        """No gradient for an integer argument (an order, a count); a float one that is differentiated
        has no closed-form derivative here."""
        if np.issubdtype(np.asarray(v).dtype, np.integer):
            return None
        raise GradientError(f"torchzygote has no derivative of {name} in this argument (no closed form): "
                            f"pass it as a constant (an int, or a value that does not depend on what you "
                            f"differentiate)")

    def np_uf_share(a, b, wins):
        """fmax's/fmin's share of the gradient for ``a`` (``wins``: its share by value, as maximum/
        minimum give it): all of it where only ``b`` is NaN, none where ``a`` is."""
        na, nb = np.isnan(a), np.isnan(b)
        return np.where(nb & ~na, 1.0, np.where(na, 0.0, wins))

    def np_uf_dsinc(x):
        """sinc'(x) = (cos(pi x) - sinc(x)) / x; for |x| < 1e-3 its Taylor polynomial (0 at 0)."""
        small = np.abs(x) < 1e-3
        xs = np.where(small, 1.0, x)
        return np.where(small, x * (x * x * 3.2469697011334144 - 3.289868133696453),
                        (np.cos(np.pi * xs) - np.sinc(xs)) / xs)

    def np_uf_imag_back(dy, x):
        """imag(x): i dy for a complex array (torch's convention), 0 for a real x (a constant)."""
        return 1j * dy if np.iscomplexobj(x) else 0.0 * dy

    def np_uf_angle_back(dy, z, deg):
        """angle(z) = atan2(imag, real): i z / |z|^2 per unit of dy for complex z; 0 for real z."""
        if not np.iscomplexobj(z):
            return 0.0 * dy
        g = dy * 1j * z / np.real(z * np.conj(z))
        return g * 57.29577951308232 if deg else g

    def np_uf_angle_t(dz, z, deg):
        """angle(z): ``Im(dz / z)`` (0 at 0, and for real ``z`` and ``dz``), in degrees if ``deg``."""
        t = np.imag(dz / np.where(z == 0, 1.0, z)) * (z != 0)
        return t * 57.29577951308232 if deg else t

    def np_uf_real_only(v, name):
        """True for a real argument; a complex one is a GradientError (the function is not holomorphic
        there, or its derivative has no complex form in scipy) rather than a wrong number."""
        if np.iscomplexobj(v):
            raise GradientError(f"torchzygote differentiates {name} of real arguments only; split a complex "
                                f"problem into real and imaginary parts")
        return True

    def np_uf_finite_back(dy, x):
        """nan_to_num(x): ``dy`` where ``x`` is finite; a complex ``x``'s real and imaginary parts are
        replaced apart, so each part of ``dy`` passes where that part is finite."""
        if np.iscomplexobj(x):
            return np.real(dy) * np.isfinite(np.real(x)) + 1j * np.imag(dy) * np.isfinite(np.imag(x))
        return dy * np.isfinite(x)

    def np_uf_xdivy(a, b):
        """``a / b``, and 0 where both are 0 (xlogy(0, 0) is 0 for every nearby y >= 0)."""
        z = (a == 0) & (b == 0)
        return np.where(z, 0.0, a / np.where(z, 1.0, b))

    nondiff(np_uf_fixed, np_uf_share, np_uf_real_only, np.iscomplexobj, np.isinf, np.isposinf, np.isneginf)
    NS.update(np_uf_fixed=np_uf_fixed, np_uf_share=np_uf_share,
              np_uf_dsinc=np_uf_dsinc, np_uf_imag_back=np_uf_imag_back, np_uf_angle_back=np_uf_angle_back,
              np_uf_xdivy=np_uf_xdivy, np_uf_angle_t=np_uf_angle_t, np_uf_finite_back=np_uf_finite_back,
              np_uf_real_only=np_uf_real_only)

    # ---------------------------------------------------------------- tables: one line per function
    # (fn, params, {param: expression of dy, y and the params}); a ufunc also takes the ufunc keywords
    TABLES = [
        (np.sinc, "x", dict(x="dy * np_uf_dsinc(x)")),
        (np.real, "val", dict(val="dy")),
        (np.imag, "val", dict(val="np_uf_imag_back(dy, val)")),
        (np.angle, "z, deg=False", dict(z="np_uf_angle_back(dy, z, deg)")),
        (np.nan_to_num, "x, copy=True, nan=0.0, posinf=None, neginf=None", dict(x="np_uf_finite_back(dy, x)")),
        (np.fmax, "a, b", dict(a="dy * np_uf_share(a, b, np_wins(a, b))", b="dy * np_uf_share(b, a, np_wins(b, a))")),
        (np.fmin, "a, b", dict(a="dy * np_uf_share(a, b, np_wins(b, a))", b="dy * np_uf_share(b, a, np_wins(a, b))")),
        (np.ldexp, "a, b", dict(a="dy * np.exp2(b)")),
        (np.heaviside, "a, b", dict(b="dy * (a == 0)")),
        (np.nextafter, "a, b", dict(a="dy")),
    ]
    OWN_TANGENTS = {np.real: dict(val="np.real(dval)"), np.imag: dict(val="np.imag(dval)"),
                    np.angle: dict(z="np_uf_angle_t(dz, z, deg)")}   # (not holomorphic)
    for _f, _p, _g in TABLES:   # (sinc is holomorphic: complex arguments conjugate, as the core table's)
        _r([_f], _sig(_f, _p), out=_out, elementwise=True, jvp=_tangents(_f, _g, OWN_TANGENTS.get(_f)),
           **{p: _wrap(_f, _core._holomorphic(e) if _f is np.sinc else e, p) for p, e in _g.items()})
    NP_UNARY_NEW = [np.sinc, np.real, np.imag, np.angle, np.nan_to_num]
    NP_BINARY_NEW = {np.fmax: TABLES[5][2], np.fmin: TABLES[6][2], np.ldexp: TABLES[7][2],
                     np.heaviside: TABLES[8][2], np.nextafter: TABLES[9][2]}
    # piecewise constant: zero gradient almost everywhere
    nondiff(np.rint, np.fix, np.around, np.floor_divide, np.signbit, np.spacing, np.equal, np.not_equal,
            np.less, np.less_equal, np.greater, np.greater_equal, np.logical_and, np.logical_or, np.logical_xor,
            np.logical_not, np.isclose, np.allclose, np.array_equal, np.iscomplex, np.isreal, np.isrealobj,
            np.gcd, np.lcm, np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift,
            np.right_shift)

    # ---------------------------------------------------------------- scipy.special (when scipy imports)
    try:
        import scipy.special as sc
    except ImportError:  # pragma: no cover
        sc = None
    SCIPY = []
    if sc is not None:
        def np_sp_mvdigamma(a, d):
            """d/da multigammaln(a, d) = sum over j < d of digamma(a - j / 2)."""
            s = 0.0
            for j in range(d):
                s = s + sc.digamma(a - 0.5 * j)
            return s

        def np_sp_bshape(a, b):
            """An array of the shape ``a`` and ``b`` broadcast to (only its shape is read)."""
            return np.zeros(np.broadcast_shapes(np.shape(a), np.shape(b)))

        def np_sp_lse_back(dy, a, axis, b, keepdims, return_sign, y, which):
            """logsumexp's gradient: for ``a`` the weights ``b exp(a - y)`` (softmax), for ``b``
            ``exp(a - y)``, each times ``dy`` spread back over the axes reduced."""
            if return_sign:
                raise GradientError("torchzygote cannot differentiate scipy.special.logsumexp with "
                                    "return_sign=True; use weights that keep the sum positive")
            a, b, y = _core.np_cj(a), _core.np_cj(b), _core.np_cj(y)   # (complex: torch's convention)
            full = a if b is None else np_sp_bshape(a, b)
            w = np.exp(a - _core._expand(y, full, axis, keepdims)) * _core._expand(dy, full, axis, keepdims)
            return w * b if which == 0 and b is not None else w

        def np_sp_lse_t(d, a, axis, b, keepdims, return_sign, y, which):
            """logsumexp's tangent: the sum over ``axis`` of the weights ``b exp(a - y)`` times ``da``
            (``which`` 0), or of ``exp(a - y)`` times ``db`` (1)."""
            if return_sign:
                np_sp_lse_back(None, a, axis, b, keepdims, return_sign, y, which)   # (its error)
            full = a if b is None else np_sp_bshape(a, b)
            w = np.exp(a - np_t_kept(y, full, axis, keepdims)) * d
            w = w * b if which == 0 and b is not None else w
            return np.sum(w, axis=axis, keepdims=keepdims)

        def np_sp_softmax_back(dy, y, axis):
            y = _core.np_cj(y)   # (complex: torch's convention)
            return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))

        def np_sp_log_softmax_back(dy, y, axis):
            return dy - np.exp(_core.np_cj(y)) * np.sum(dy, axis=axis, keepdims=True)

        nondiff(np_sp_bshape, sc.gammasgn, sc.round)
        reads_metadata(np_sp_bshape, 0, 1)
        NS.update(sc=sc, np_sp_mvdigamma=np_sp_mvdigamma, np_sp_lse_back=np_sp_lse_back, np_sp_lse_t=np_sp_lse_t,
                  np_sp_softmax_back=np_sp_softmax_back, np_sp_log_softmax_back=np_sp_log_softmax_back)
        SQPI2, HSQPI, SQ2PI, DG = 1.1283791670955126, 0.886226925452758, 2.5066282746310002, 0.017453292519943295
        LN2, LN10 = _core.LN2, _core.LN10
        SC_UNARY = [
            (sc.gammaln, "dy * sc.digamma(x)"), (sc.loggamma, "dy * sc.digamma(x)"),
            (sc.gamma, "dy * y * sc.digamma(x)"), (sc.rgamma, "-dy * y * sc.digamma(x)"),
            (sc.digamma, "dy * sc.polygamma(1, x)"),
            (sc.erf, f"dy * {SQPI2} * np.exp(-x * x)"), (sc.erfc, f"-dy * {SQPI2} * np.exp(-x * x)"),
            (sc.erfinv, f"dy * {HSQPI} * np.exp(y * y)"), (sc.erfcinv, f"-dy * {HSQPI} * np.exp(y * y)"),
            (sc.erfcx, f"dy * (2 * x * y - {SQPI2})"), (sc.erfi, f"dy * {SQPI2} * np.exp(x * x)"),
            (sc.dawsn, "dy * (1 - 2 * x * y)"),
            (sc.expit, "dy * y * (1 - y)"), (sc.logit, "dy / (x * (1 - x))"), (sc.log_expit, "dy * sc.expit(-x)"),
            (sc.ndtr, f"dy * np.exp(-0.5 * x * x) / {SQ2PI}"), (sc.ndtri, f"dy * {SQ2PI} * np.exp(0.5 * y * y)"),
            (sc.log_ndtr, f"dy * np.exp(-0.5 * x * x - y) / {SQ2PI}"),
            (sc.ndtri_exp, f"dy * {SQ2PI} * np.exp(0.5 * y * y + x)"),
            (sc.i0, "dy * sc.i1(x)"), (sc.i1, "dy * (sc.i0(x) + sc.iv(2, x)) / 2"),
            (sc.i0e, "dy * (sc.i1e(x) - np.sign(x) * y)"),
            (sc.i1e, "dy * ((sc.i0e(x) + sc.ive(2, x)) / 2 - np.sign(x) * y)"),
            (sc.j0, "-dy * sc.j1(x)"), (sc.j1, "dy * (sc.j0(x) - sc.jv(2, x)) / 2"),
            (sc.y0, "-dy * sc.y1(x)"), (sc.y1, "dy * (sc.y0(x) - sc.yv(2, x)) / 2"),
            (sc.k0, "-dy * sc.k1(x)"), (sc.k1, "-dy * (sc.k0(x) + sc.kv(2, x)) / 2"),
            (sc.k0e, "dy * (y - sc.k1e(x))"), (sc.k1e, "dy * (y - (sc.k0e(x) + sc.kve(2, x)) / 2)"),
            (sc.exp1, "-dy * np.exp(-x) / x"), (sc.expi, "dy * np.exp(x) / x"),
            (sc.entr, "-dy * (np.log(x) + 1)"),
            (sc.expm1, "dy * (y + 1)"), (sc.log1p, "dy / (1 + x)"), (sc.exp2, f"dy * y * {LN2}"),
            (sc.exp10, f"dy * y * {LN10}"), (sc.cbrt, "dy / (3 * y * y)"), (sc.cosm1, "-dy * np.sin(x)"),
            (sc.sindg, f"dy * {DG} * sc.cosdg(x)"), (sc.cosdg, f"-dy * {DG} * sc.sindg(x)"),
            (sc.tandg, f"dy * {DG} * (1 + y * y)"), (sc.cotdg, f"-dy * {DG} * (1 + y * y)"),
            (sc.wrightomega, "dy * y / (1 + y)"), (sc.softplus, "dy * sc.expit(x)"),
        ]
        # order or shape first (a: no closed-form derivative in it), then x
        FIX = "np_uf_fixed(a, {!r})"
        SC_BINARY = [
            (sc.xlogy, "dy * np.log(b)", "dy * np_uf_xdivy(a, b)"),
            (sc.xlog1py, "dy * np.log1p(b)", "dy * np_uf_xdivy(a, 1 + b)"),
            (sc.beta, "dy * y * (sc.digamma(a) - sc.digamma(a + b))", "dy * y * (sc.digamma(b) - sc.digamma(a + b))"),
            (sc.betaln, "dy * (sc.digamma(a) - sc.digamma(a + b))", "dy * (sc.digamma(b) - sc.digamma(a + b))"),
            (sc.poch, "dy * y * (sc.digamma(a + b) - sc.digamma(a))", "dy * y * sc.digamma(a + b)"),
            (sc.rel_entr, "dy * (np.log(a / b) + 1)", "-dy * a / b"),
            (sc.kl_div, "dy * np.log(a / b)", "dy * (1 - a / b)"),
            (sc.huber, "dy * np.maximum(np.abs(b) - a, 0.0)", "dy * np.minimum(np.maximum(b, -a), a)"),
            (sc.pseudo_huber, "dy * (2 * y / a - b * b / (a * np.sqrt(1 + (b / a) * (b / a))))",
             "dy * b / np.sqrt(1 + (b / a) * (b / a))"),
            (sc.powm1, "dy * b * np.power(a, b - 1)", "dy * (y + 1) * np.log(a)"),
            (sc.gammainc, FIX, "dy * np.exp((a - 1) * np.log(b) - b - sc.gammaln(a))"),
            (sc.gammaincc, FIX, "-dy * np.exp((a - 1) * np.log(b) - b - sc.gammaln(a))"),
            (sc.gammaincinv, FIX, "dy * np.exp(y - (a - 1) * np.log(y) + sc.gammaln(a))"),
            (sc.gammainccinv, FIX, "-dy * np.exp(y - (a - 1) * np.log(y) + sc.gammaln(a))"),
            (sc.iv, FIX, "dy * (sc.iv(a - 1, b) + sc.iv(a + 1, b)) / 2"),
            (sc.ive, FIX, "dy * ((sc.ive(a - 1, b) + sc.ive(a + 1, b)) / 2 - np.sign(b) * y)"),
            (sc.jv, FIX, "dy * (sc.jv(a - 1, b) - sc.jv(a + 1, b)) / 2"),
            (sc.jve, FIX, "dy * (sc.jve(a - 1, b) - sc.jve(a + 1, b)) / 2"),
            (sc.yv, FIX, "dy * (sc.yv(a - 1, b) - sc.yv(a + 1, b)) / 2"),
            (sc.yve, FIX, "dy * (sc.yve(a - 1, b) - sc.yve(a + 1, b)) / 2"),
            (sc.kv, FIX, "-dy * (sc.kv(a - 1, b) + sc.kv(a + 1, b)) / 2"),
            (sc.kve, FIX, "dy * (y - (sc.kve(a - 1, b) + sc.kve(a + 1, b)) / 2)"),
            (sc.yn, FIX, "dy * (sc.yn(a - 1, b) - sc.yn(a + 1, b)) / 2"),
            (sc.kn, FIX, "-dy * (sc.kn(a - 1, b) + sc.kn(a + 1, b)) / 2"),
            # E_n' = -E_{n-1} for n >= 1; E_0(x) = exp(-x) / x
            (sc.expn, FIX, "-dy * np.where(a == 0, y * (1 + 1 / b), sc.expn(a - 1 + (a == 0), b))"),
        ]
        # (an order or a shape, FIX, has no tangent: np_uf_fixed is None for an integer, else raises)
        # (pullbacks: holomorphic where scipy takes complex arguments, as the core table's; the scaled
        # Bessel functions jve, yve, ive are not holomorphic in a complex x (|Re x|, |Im x|), and scipy has
        # no complex trigamma for digamma's: for those a complex argument is a GradientError)
        REAL_ONLY = {sc.digamma: "x", sc.ive: "b", sc.jve: "b", sc.yve: "b"}

        def _holo(e, f, p):
            e = _core._holomorphic(e)
            return f"({e}) if np_uf_real_only({p}, {f.__name__!r}) else None" if REAL_ONLY.get(f) == p else e
        for _f, _e in SC_UNARY:
            _r([_f], _sig(_f, "x"), x=_wrap(_f, _holo(_e, _f, "x"), "x"), out=_out, elementwise=True,
               jvp=_tangents(_f, dict(x=_e)))
        for _f, _ea, _eb in SC_BINARY:
            _r([_f], _sig(_f, "a, b"), a=_wrap(_f, _holo(_ea.format(_f.__name__), _f, "a"), "a"),
               b=_wrap(_f, _holo(_eb, _f, "b"), "b"),
               out=_out, maybe_none=_ea.startswith("np_uf_fixed"), elementwise=True,
               jvp=_tangents(_f, dict(a=_ea.format(_f.__name__), b=_eb)))
        _BETAINC = "np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - sc.betaln(a, b))"
        for _f, _s in ((sc.betainc, ""), (sc.betaincc, "-")):
            _fix = dict(a=f"np_uf_fixed(a, {_f.__name__!r})", b=f"np_uf_fixed(b, {_f.__name__!r})")
            _r([_f], _sig(_f, "a, b, x"), maybe_none=True, out=_out, elementwise=True,
               jvp=_tangents(_f, dict(_fix, x=f"{_s}dy * {_BETAINC}")), x=_wrap(_f, f"{_s}dy * {_BETAINC}", "x"),
               **_fix)
        # Python functions of scipy.special (their own signatures; polygamma returns an array)
        _r([sc.polygamma], "n, x", x="np_like(dy * sc.polygamma(n + 1, x), x)", out=ARRAY, elementwise=True,
           jvp=dict(x="dx * sc.polygamma(n + 1, x)"))
        _r([sc.zeta], "x, q=None, out=None", maybe_none=True, out=_out, elementwise=True,
           x="np_uf_fixed(x, 'zeta')", q="np_like(-dy * x * sc.zeta(x + 1, q), q)",
           jvp=dict(x="np_uf_fixed(x, 'zeta')", q="-dq * x * sc.zeta(x + 1, q)"))
        _r([sc.multigammaln], "a, d", a="np_like(dy * np_sp_mvdigamma(a, d), a)", out=_out,
           jvp=dict(a="da * np_sp_mvdigamma(a, d)"))
        _r([sc.logsumexp], "a, axis=None, b=None, keepdims=False, return_sign=False", out=_out,
           a="np_like(np_sp_lse_back(dy, a, axis, b, keepdims, return_sign, y, 0), a)",
           b="np_like(np_sp_lse_back(dy, a, axis, b, keepdims, return_sign, y, 1), b)",
           jvp=dict(a="np_sp_lse_t(da, a, axis, b, keepdims, return_sign, y, 0)",
                    b="np_sp_lse_t(db, a, axis, b, keepdims, return_sign, y, 1)"))
        _r([sc.softmax], "x, axis=None", x="np_like(np_sp_softmax_back(dy, y, axis), x)", out=_out,
           jvp=dict(x="y * (dx - np.sum(dx * y, axis=axis, keepdims=True))"))
        _r([sc.log_softmax], "x, axis=None", x="np_like(np_sp_log_softmax_back(dy, y, axis), x)", out=_out,
           jvp=dict(x="dx - np.sum(np.exp(y) * dx, axis=axis, keepdims=True)"))
        _r([np.i0], "x", x="np_like(dy * sc.i1(x), x)", out=ARRAY, elementwise=True,
           jvp=dict(x="dx * sc.i1(x)"))  # numpy's i0: a 0-d array for a number
        SCIPY = [f for f, _ in SC_UNARY] + [f for f, _, _ in SC_BINARY] + [
            sc.betainc, sc.betaincc, sc.polygamma, sc.zeta, sc.multigammaln, sc.logsumexp, sc.softmax,
            sc.log_softmax]
        SC_BINARY_NEW = {f: dict(a=ea if not ea.startswith("np_uf_fixed") else None, b=eb)
                         for f, ea, eb in SC_BINARY}

    # ---------------------------------------------------------------- ufunc methods
    # ``np.add.outer(a, b)`` reaches the table as ``np.ufunc.outer(np.add, a, b)`` (call_method finds
    # the method on the ufunc's class and passes the ufunc first): one rule each for outer, reduce and
    # accumulate covers every binary ufunc with a rule. ``f = np.add.outer; f(a, b)`` calls the bound
    # method, a key of its own (bound methods of one ufunc compare equal): those of numpy's binary
    # ufuncs get rules too. Each backward uses the ufunc's own derivative (PARTIAL).
    PARTIAL = {f: (ea, eb) for f, ea, eb in _core.BINARY}
    PARTIAL.update({f: (g.get("a"), g.get("b")) for f, g in NP_BINARY_NEW.items()})
    if sc is not None:
        PARTIAL.update({f: (ea.format(f.__name__), eb) for f, ea, eb in SC_BINARY})
    # tangents: the table's formulas as written (not conjugated: f'(x) times the tangent)
    TPARTIAL = {**PARTIAL, **{f: (ea, eb) for f, ea, eb in _core.RAW_BINARY}}
    _PARTIAL_FN = {}

    def np_uf_partial(ufunc, which, tangent=False):
        """``(dy, a, b, y) ->`` the gradient of ``ufunc(a, b)`` for argument ``which`` (0 or 1), made
        from the ufunc's rule: a function with source, so that later orders lift it. ``tangent``:
        ``(d, a, b, y) ->`` the result's tangent for the tangent ``d`` of that argument."""
        fn = _PARTIAL_FN.get((ufunc, which, tangent))
        if fn is None:
            if ufunc not in PARTIAL:
                raise GradientError(f"torchzygote has no rule for the binary ufunc {ufunc.__name__}, so none for "
                                    f"its methods (outer, reduce, accumulate)")
            p, e = "ab"[which], (TPARTIAL if tangent else PARTIAL)[ufunc][which] or "0.0 * dy"  # none: constant
            name = f"np_uf_{'t' if tangent else 'd'}_{ufunc.__name__}_{p}"
            src = f"def {name}(dy, a, b, y):\n    return {e if tangent else f'np_like({e}, {p})'}\n"
            fname = f"<torchzygote ufunc derivative {name}>"
            linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
            env = dict(NS)
            exec(compile(src, fname, "exec"), env)
            fn = _PARTIAL_FN[(ufunc, which, tangent)] = env[name]
        return fn

    def np_uf_outer_t(ufunc, d, A, B, y, which):
        """``outer(A, B)``'s tangent: that of ``ufunc(A[..., None, ...], B)``."""
        a = np.reshape(A, np.shape(A) + (1,) * np.ndim(B))
        d = np.reshape(d, np.shape(a)) if which == 0 else d
        return np.broadcast_to(np_uf_partial(ufunc, which, True)(d, a, B, y), np.shape(y))

    def np_uf_fold_t(ufunc, d, x, axis, accumulate):
        """The tangent of ``ufunc.reduce(x, axis)`` (``accumulate``: of ``ufunc.accumulate``) for any
        binary ufunc, step by step forward through the running values ``acc[i] = ufunc(acc[i - 1], x[i])``."""
        xs, ds = np.moveaxis(x, axis, 0), np.moveaxis(np.broadcast_to(d, np.shape(x)), axis, 0)
        acc = np.moveaxis(np.ufunc.accumulate(ufunc, x, axis), axis, 0)
        ta, tb = np_uf_partial(ufunc, 0, True), np_uf_partial(ufunc, 1, True)
        out = [ds[0]]
        for i in range(1, xs.shape[0]):
            out.append(ta(out[-1], acc[i - 1], xs[i], acc[i]) + tb(ds[i], acc[i - 1], xs[i], acc[i]))
        return np.moveaxis(np.stack(out), 0, axis) if accumulate else out[-1]

    def np_uf_reduce_t(ufunc, d, x, axis, keepdims, initial, y):
        """``ufunc.reduce``'s tangent, by np.sum's, np.prod's, np.max's rules or the ufunc's fold."""
        if ufunc is np.add:
            return np.sum(d, axis=axis, keepdims=keepdims)
        axis = _fold_axis(ufunc, axis, initial)
        if ufunc is np.multiply:
            return np_t_prod(d, x, axis, keepdims)
        if ufunc is np.maximum or ufunc is np.minimum:
            return np_t_max(d, x, axis, keepdims, y)
        t = np_uf_fold_t(ufunc, d, x, axis, False)
        return np.expand_dims(t, axis) if keepdims else t

    def np_uf_initial_t(ufunc, d, y):
        np_uf_initial_back(ufunc, None, d)   # (its error for a ufunc other than add)
        return np.broadcast_to(d, np.shape(y))

    def np_uf_accumulate_t(ufunc, d, x, axis):
        if ufunc is np.add:
            return np.ufunc.accumulate(np.add, d, axis)
        return np_uf_fold_t(ufunc, d, x, axis, True)

    def _fold_axis(ufunc, axis, initial):
        """The one axis a fold of ``ufunc`` other than add runs along (errors: initial=, several axes)."""
        if initial is not None:
            raise GradientError(f"torchzygote cannot differentiate np.{ufunc.__name__}.reduce with initial=: "
                                f"write np.{ufunc.__name__}(initial, np.{ufunc.__name__}.reduce(x))")
        if isinstance(axis, tuple) and len(axis) == 1:
            axis = axis[0]
        if not isinstance(axis, int) and ufunc not in (np.multiply, np.maximum, np.minimum):
            raise GradientError(f"torchzygote differentiates np.{ufunc.__name__}.reduce over one axis: reduce "
                                f"one axis at a time")
        return axis

    def np_uf_outer_back(ufunc, dy, A, B, y, which):
        """``outer(A, B)`` is ``ufunc(A[..., None, ...], B)``: that call's gradient."""
        a = np.reshape(A, np.shape(A) + (1,) * np.ndim(B))
        g = np_uf_partial(ufunc, which)(dy, a, B, y)
        if g is None:
            return None
        if which == 1:
            return g
        return np.reshape(g, np.shape(A)) if isinstance(A, np.ndarray) else np_like(g, A)

    def np_uf_fold_back(ufunc, dy, x, axis, accumulate):
        """The gradient of ``ufunc.reduce(x, axis)`` (``accumulate``: of ``ufunc.accumulate``, ``dy`` of
        ``x``'s shape) for any binary ufunc, step by step back through the running values
        ``acc[i] = ufunc(acc[i - 1], x[i])``."""
        xs = np.moveaxis(x, axis, 0)
        acc = np.moveaxis(np.ufunc.accumulate(ufunc, x, axis), axis, 0)
        gs = np.moveaxis(dy, axis, 0) if accumulate else None
        da, db = np_uf_partial(ufunc, 0), np_uf_partial(ufunc, 1)
        n = xs.shape[0]
        g = gs[n - 1] if accumulate else np.reshape(dy, np.shape(xs[0]))
        out = []
        for i in range(n - 1, 0, -1):
            gb = db(g, acc[i - 1], xs[i], acc[i])
            out.append(0.0 * xs[i] if gb is None else gb)
            g = da(g, acc[i - 1], xs[i], acc[i])
            if accumulate:
                g = g + gs[i - 1]
        out.append(g)
        return np.moveaxis(np.stack(out[::-1]), 0, axis)

    def np_uf_reduce_back(ufunc, dy, x, axis, keepdims, initial, y):
        """add, multiply, maximum, minimum: np.sum's, np.prod's, np.max's rules (ties share evenly);
        any other binary ufunc: its fold, one axis."""
        if ufunc is np.add:
            return _core.np_sum_back(dy, x, axis, keepdims)
        if ufunc is np.multiply or ufunc is np.maximum or ufunc is np.minimum:
            _fold_axis(ufunc, axis, initial)
            return (_core.np_prod_back if ufunc is np.multiply else _core.np_max_back)(dy, x, axis, keepdims, y)
        axis = _fold_axis(ufunc, axis, initial)
        if keepdims:
            dy = np.squeeze(dy, axis)
        return np_uf_fold_back(ufunc, dy, x, axis, False)

    def np_uf_initial_back(ufunc, dy, initial):
        if initial is None:
            return None
        if ufunc is not np.add:
            raise GradientError(f"torchzygote cannot differentiate np.{ufunc.__name__}.reduce in initial=: "
                                f"write np.{ufunc.__name__}(initial, np.{ufunc.__name__}.reduce(x))")
        return np.sum(dy)

    def np_uf_accumulate_back(ufunc, dy, x, axis):
        if ufunc is np.add:  # running sums of dy from the end
            r = np.moveaxis(dy, axis, 0)[::-1]
            return np.moveaxis(np.ufunc.accumulate(np.add, r, 0)[::-1], 0, axis)
        return np_uf_fold_back(ufunc, dy, x, axis, True)

    nondiff(np_uf_partial)
    NS.update(np_uf_outer_back=np_uf_outer_back, np_uf_reduce_back=np_uf_reduce_back,
              np_uf_initial_back=np_uf_initial_back, np_uf_accumulate_back=np_uf_accumulate_back,
              np_uf_outer_t=np_uf_outer_t, np_uf_reduce_t=np_uf_reduce_t, np_uf_initial_t=np_uf_initial_t,
              np_uf_accumulate_t=np_uf_accumulate_t)
    KW = "*, out=None, where=True, casting='same_kind', order='K', dtype=None, subok=True"
    METHODS = [  # (method, params after the ufunc, keywords, {param: pullback}, {param: tangent}; U the ufunc)
        ("outer", "A, B", KW, dict(A="np_uf_outer_back(U, dy, A, B, y, 0)", B="np_uf_outer_back(U, dy, A, B, y, 1)"),
         dict(A="np_uf_outer_t(U, dA, A, B, y, 0)", B="np_uf_outer_t(U, dB, A, B, y, 1)")),
        ("reduce", "array, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=True", "",
         dict(array="np_uf_reduce_back(U, dy, array, axis, keepdims, initial, y)",
              initial="np_like(np_uf_initial_back(U, dy, initial), initial)"),
         dict(array="np_uf_reduce_t(U, darray, array, axis, keepdims, initial, y)",
              initial="np_uf_initial_t(U, dinitial, y)")),
        ("accumulate", "array, axis=0, dtype=None, out=None", "",
         dict(array="np_uf_accumulate_back(U, dy, array, axis)"), dict(array="np_uf_accumulate_t(U, darray, array, axis)")),
    ]
    A1 = ("O", "A", ...)   # the ufunc, then an array
    OUTER = some("A|R", among=("O", "A|R|N|PR", "A|R|N|PR", many("A|R|N|PR")))   # the ufunc, then values
    # bound methods of numpy's binary ufuncs (reduce and accumulate: of those usually folded)
    BOUND_OUTER = [f for f in PARTIAL if f in _core.ELEMENTWISE or f in NP_BINARY_NEW]
    BOUND_FOLD = [np.add, np.subtract, np.multiply, np.divide, np.maximum, np.minimum, np.fmax, np.fmin,
                  np.logaddexp, np.logaddexp2, np.hypot]
    for _m, _p, _kw, _g, _t in METHODS:
        _s = ", ".join(x for x in (_p, _kw) if x)
        _w = "where" if "where" in _s else "True"
        _g = {p: (e if p == "initial" else f"np_uf_plain({e}, out, {_w})") for p, e in _g.items()}
        _t = {p: (e if p == "initial" else f"np_uf_plain({e}, out, {_w})") for p, e in _t.items()}
        _r([getattr(np.ufunc, _m)], f"ufunc, {_s}", kinds=OUTER if _m == "outer" else A1, out=_out,
           maybe_none=True, jvp={p: e.replace("U,", "ufunc,") for p, e in _t.items()},
           **{p: e.replace("U,", "ufunc,") for p, e in _g.items()})
        for _u in BOUND_OUTER if _m == "outer" else BOUND_FOLD:
            NS[f"np_uf_{_u.__name__}"] = _u
            _r([getattr(_u, _m)], _s, kinds=_num if _m == "outer" else _core.A0, out=_out, maybe_none=True,
               jvp={p: e.replace("U,", f"np_uf_{_u.__name__},") for p, e in _t.items()},
               **{p: e.replace("U,", f"np_uf_{_u.__name__},") for p, e in _g.items()})
