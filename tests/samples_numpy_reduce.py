"""Generic-test samples for the rules in torchzygote/rules/numpy_reduce.py (see test_rules_generic).

Samples pass every argument by position (the generic test's calls); the keyword-only forms
(cumulative_sum's axis, var's where=, average's keepdims=, quantile's weights=, sort's stable=) are
exercised by the small programs below."""
import numpy as np

from torchzygote.rules.numpy_reduce import np_red_permute

NAN = float("nan")


# ---------------------------------------------------------------- keyword forms, as programs of numbers

def p_cumulative(x, y):
    m = np.array([[x, y, x * y], [y * y, x, 0.5]])
    return np.sum(np.cumulative_sum(m, axis=1, include_initial=True) * np.arange(1.0, 9.0).reshape(2, 4)) + \
        np.sum(np.cumulative_prod(m, axis=0, include_initial=True) * np.arange(1.0, 10.0).reshape(3, 3))


def p_diff_ends(x, y):
    v = np.array([x, y, x * y, 0.3])
    return np.sum(np.diff(v, prepend=y, append=np.array([x, 2.0])) * np.arange(1.0, 7.0)) + \
        np.sum(np.diff(np.array([[x, y], [y, 0.5]]), n=1, axis=0, append=x) ** 2)


def p_where(x, y):
    v = np.array([x, y, x * y, 0.3, y * y])
    keep = np.array([True, False, True, True, True])
    return np.var(v, where=keep, ddof=1) + np.std(v, where=keep) + np.nanmean(v, where=keep) + \
        np.nanvar(v, where=keep) + np.nansum(v * v, where=keep) + np.nanmax(v, where=keep, initial=-5.0)


def p_keywords(x, y):
    v = np.array([[x, y, x * y], [0.3, y * y, 1.7]])
    w = np.array([0.5, 1.0, 2.0])
    return np.sum(np.average(v, axis=1, weights=w, keepdims=True) * np.array([[1.0], [3.0]])) + \
        np.quantile(v, 0.5, method="inverted_cdf", weights=np.ones((2, 3))) + \
        np.sum(np.sort(v, axis=1, stable=True) * np.arange(6.0).reshape(2, 3)) + \
        np.percentile(v, q=40.0, axis=None, keepdims=False)


def register(put, b):
    """``put(fns, make, **opts)`` as in test_rules_generic; ``b`` is that module (builders a, t, spd, ...)."""
    a, dist = b.a, (lambda *s: b.tdistinct(*s).numpy())

    def with_nan(x, *at):
        x = x.copy()
        x[at] = NAN
        return x

    scalars = [(0.7,), (np.float64(-1.3),)]
    # cumulative
    for f in (np.cumsum, np.ndarray.cumsum, np.cumprod, np.ndarray.cumprod):
        put(f, lambda: [(a(3, 2),), (a(3, 2), 0), (a(2, 3), 1), (a(2, 3, 2), -1)])
    for f in (np.cumsum, np.cumprod, np.nancumsum, np.nancumprod):
        put(f, lambda: scalars)
    for f in (np.cumprod, np.ndarray.cumprod, np.nancumprod):  # zero factors: the products of the others
        put(f, lambda: [(np.array([0.7, 0.0, -1.3, 0.5]),), (np.array([[0.7, 0.0], [0.0, 0.5], [1.2, -0.8]]), 0),
                        (np.array([[0.7, 0.0, 0.0], [0.4, 0.5, 1.1]]), 1)])
    for f in (np.nancumsum, np.nancumprod):
        put(f, lambda: [(with_nan(a(3, 2), 1, 0),), (with_nan(a(3, 2), 1, 0), 0), (a(2, 3), 1)])
    for f in (np.cumulative_sum, np.cumulative_prod):
        put(f, lambda: [(a(4),)])
        put(f, b.Program(p_cumulative))
    put(np.diff, lambda: [(a(3, 4),), (a(3, 4), 2, 0), (a(3, 4), 1, 1, a(3, 1), 0.5), (a(4), 1, -1, 0.3),
                          (a(2, 3), 3, -1, np.float64(0.2), a(2, 2))])
    put(np.diff, b.Program(p_diff_ends))
    put(np.ediff1d, lambda: [(a(3, 2),), (a(4), a(2), 0.5), (a(4), None, np.float64(-0.4))])
    # variance and standard deviation
    for f in (np.var, np.std, np.nanvar, np.nanstd, np.ndarray.var, np.ndarray.std):
        put(f, lambda: [(a(3, 2),), (a(3, 2), 0), (a(2, 3, 2), (0, 2), None, None, 1, True),
                        (a(4, 3), -1, None, None, 2)])
    for f in (np.var, np.std, np.nanvar, np.nanstd):
        put(f, lambda: scalars + [(a(3, 2), 1, None, None, 0, True)])
        put(f, b.Program(p_where))
    for f in (np.nanvar, np.nanstd):
        put(f, lambda: [(with_nan(a(3, 2), 1, 0), 0), (with_nan(a(3, 3), 0, 2), None, None, None, 1)])
    put(np.ptp, lambda: [(dist(3, 2),), (dist(3, 2), 0), (dist(3, 4), 1, None, True), (0.7,)])
    put(np.average, lambda: [(a(3, 2),), (a(3, 2), 0), (a(3, 2), 1, a(2, lo=0.3, hi=2.0)),
                             (a(3, 2), None, a(3, 2, lo=0.3, hi=2.0)), (a(3, 2), 0, a(3, 2, lo=0.3, hi=2.0)), (0.7,)])
    put(np.average, b.Program(p_keywords))
    # NaN-ignoring reductions
    for f in (np.nansum, np.nanmean):
        put(f, lambda: [(with_nan(a(3, 2), 1, 0),), (with_nan(a(3, 2), 1, 0), 0),
                        (a(3, 2), 1, None, None, True)] + scalars)
        put(f, b.Program(p_where))
    for f in (np.nanmax, np.nanmin):
        put(f, lambda: [(with_nan(dist(3, 2), 1, 0),), (with_nan(dist(3, 2), 1, 0), 0), (dist(3, 4), 1, None, True),
                        (dist(3, 2), None, None, False, -5.0), (0.7,)])
    put(np.nanmax, b.Program(p_where))
    put(np.nanprod, lambda: [(a(3, 2),), (with_nan(a(3, 2), 1, 0), 0), (np.array([0.7, 0.0, NAN, -1.3]),)] + scalars)
    # medians and quantiles, away from ties and from the knots of q
    for f, qs in (((np.quantile, np.nanquantile), (0.3, 0.1, 0.9)),
                  ((np.percentile, np.nanpercentile), (30.0, 10.0, 90.0))):
        q, lo, hi = qs
        put(f, lambda q=q, lo=lo, hi=hi: [
            (dist(3, 4), q), (dist(3, 4), a(2, lo=lo, hi=hi), 1), (dist(5), np.float64(q)),
            (dist(2, 3, 4), q, (0, 2), None, False, "linear", True),
            (dist(3, 4), a(2, lo=lo, hi=hi), 0, None, False, "lower"),
            (dist(3, 4), q, None, None, False, "nearest"), (0.7, q), (dist(4, 3), [lo, q, np.float64(hi)], 0)])
    put(np.nanquantile, lambda: [(with_nan(dist(3, 4), 1, 2), 0.4, 1),
                                 (with_nan(dist(3, 4), 1, 2), a(2, lo=0.1, hi=0.9))])
    put(np.nanpercentile, lambda: [(with_nan(dist(3, 4), 1, 2), 40.0, 1)])
    put(np.nanmedian, lambda: [(with_nan(dist(3, 4), 1, 2), 1), (with_nan(dist(3, 4), 0, 0),)])
    put(np.percentile, b.Program(p_keywords))
    for f in (np.median, np.nanmedian):
        put(f, lambda: [(dist(3, 4),), (dist(3, 4), 0), (dist(3, 5), 1), (dist(2, 3, 2), (0, 2), None, False, True),
                        (0.7,)])
    # covariance, correlation, integration, interpolation, counting
    put(np.cov, lambda: [(a(3, 5),), (a(5), a(5)), (a(5, 3), None, False), (a(2, 5), a(5), True, True),
                         (a(3, 5), None, True, False, 2), (a(4, 2), a(4), False)])
    put(np.corrcoef, lambda: [(a(3, 5),), (a(5), a(5)), (a(5, 3), None, False), (a(2, 5), a(5))])
    put(np.trapezoid, lambda: [(a(5),), (a(3, 4), a(4)), (a(3, 4), None, 0.5), (a(3, 4), None, np.float64(0.7), 0),
                               (a(3, 4), a(3, 4), 1.0, 1), (a(4, 3), a(4), 1.0, 0)])
    xp = np.array([-0.8, -0.2, 0.3, 0.9])
    xs = np.array([[-0.95, -0.5, 0.05], [0.45, 0.7, 0.97]])
    put(np.interp, lambda: [(xs, xp, a(4)), (xs, xp, a(4), 0.3, np.float64(-0.4)), (0.25, xp, a(4)),
                            (np.float64(-0.6), xp, a(4), -1.5, 2.0), (a(5), xp, a(4))])
    put(np.bincount, lambda: [(np.array([0, 2, 1, 2]), a(4)), (np.array([0, 2, 1, 2]), a(4), 5), ([1, 0, 1], a(3))])
    # sorting and selection
    put(np.sort, lambda: [(dist(3, 4),), (dist(3, 4), 0), (dist(3, 4), None), (dist(2, 3, 2), 1)])
    put(np.sort, b.Program(p_keywords))
    put(np.partition, lambda: [(dist(6), 2), (dist(3, 4), 1, 0), (dist(3, 4), [1, 2], 1), (dist(3, 4), 5, None)])
    put(np_red_permute, lambda: [(a(3, 4), np.argsort(dist(3, 4), axis=1), 1), (a(5), np.argsort(dist(5)), 0)])
    # a NumPy scalar's own reductions
    for f in (np.generic.sum, np.generic.mean, np.generic.prod, np.generic.max, np.generic.min, np.generic.cumsum,
              np.generic.cumprod, np.generic.var, np.generic.std):
        put(f, lambda: [(np.float64(0.7),), (np.float64(-1.3),)])
    # random draws: ``pre`` builds the generator from a seed (or reseeds NumPy's global one) inside each call,
    # so every call draws the same values
    gens = [(np.random.Generator, "np.random.default_rng({0})"), (np.random.RandomState, "np.random.RandomState({0})")]
    ls = dict(normal=lambda: [(0.3, 1.2, 4), (a(3), 0.7), (np.float64(0.2), a(2, 1, lo=0.5, hi=2.0), (2, 3)),
                              (-0.4, 0.8)],
              uniform=lambda: [(0.3, 1.5, 4), (a(3), 1.7), (np.float64(-0.2), np.float64(0.9))],
              exponential=lambda: [(1.3, 4), (a(3, lo=0.5, hi=2.0),), (np.float64(0.8),)],
              rayleigh=lambda: [(0.8, 3), (np.float64(1.4),)],
              lognormal=lambda: [(0.2, 0.5, 4), (a(2), np.float64(0.3))],
              laplace=lambda: [(0.3, 1.2, 4), (np.float64(0.2), 0.7)],
              logistic=lambda: [(0.3, 1.2, 4), (a(3), 0.7)],
              gumbel=lambda: [(0.3, 1.2, 4), (np.float64(0.2), a(2, lo=0.5, hi=2.0))])
    for name, make in ls.items():
        for owner, pre in gens:
            put(getattr(owner, name), lambda make=make: [(5,) + args for args in make()], pre=pre)
        put(getattr(np.random, name), make, pre="(np.random.seed(5), {0})[1]")
    for owner, pre in gens:   # draws of indices: no gradient
        put(owner.permutation, lambda: [(5, 6)], pre=pre, nograd=True)
        put(owner.choice, lambda: [(5, 6, 3, False)], pre=pre, nograd=True)
    put(np.random.permutation, lambda: [(6,)], pre="(np.random.seed(5), {0})[1]", nograd=True)
    put(np.random.choice, lambda: [(6, 3, True)], pre="(np.random.seed(5), {0})[1]", nograd=True)
