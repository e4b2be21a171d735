"""Generic-test samples for the rules in torchzygote/rules/numpy_ufuncs.py (see test_rules_generic)."""
import numpy as np

from torchzygote.rules import numpy_ufuncs as U

WIDE, UNIT, POS, PROB = (-1.0, 1.0), (-0.8, 0.8), (0.3, 2.0), (0.1, 0.9)


def register(put, b):
    """``put(fns, make, **opts)`` as in test_rules_generic; ``b`` is that module (builders a, t, spd, ...)."""
    def elementwise(*doms, ints=()):
        """Arrays, broadcast arrays, floats, np.float64 and mixes, each argument inside its domain;
        the positions in ``ints`` are integer orders (an int, or an int array)."""
        def make():
            def arr(i, *shape):
                lo, hi = doms[i]
                if i in ints:
                    return np.arange(np.prod(shape), dtype=np.int64).reshape(shape) % int(hi - lo + 1) + int(lo)
                return b.a(*shape, lo=lo, hi=hi)

            def num(i):
                lo, hi = doms[i]
                return int(lo) + 1 if i in ints else lo + (0.37 + 0.34 * i) * (hi - lo)
            out = [tuple(arr(i, 3, 2) for i in range(len(doms))), tuple(num(i) for i in range(len(doms))),
                   tuple(v if i in ints else np.float64(v) for i, v in enumerate(num(i) for i in range(len(doms))))]
            if len(doms) == 2:
                out += [(arr(0, 3, 2), arr(1, 2)), (arr(0, 3), num(1)), (num(0), arr(1, 3))]
                if not ints:
                    out.append((num(0), np.float64(num(1))))
            return out
        return make

    # numpy
    put(np.sinc, elementwise(WIDE))
    put(np.sinc, lambda: [(np.array([0.0, 2e-4, -5e-4, 0.3]),), (0.0,), (np.float64(1e-5),)])  # at and near 0
    put((np.real, np.imag, np.angle), elementwise(WIDE))
    put(np.angle, lambda: [(b.a(3, 2), True)])
    put(np.nan_to_num, elementwise(WIDE))
    put(np.nan_to_num, lambda: [(np.array([0.3, np.nan, np.inf, -np.inf, -0.7]), True, 0.0, 5.0, -5.0)])
    put((np.fmax, np.fmin), elementwise(WIDE, WIDE))
    put((np.fmax, np.fmin), lambda: [(np.array([0.3, np.nan, 0.5, np.nan]), np.array([np.nan, -0.2, 0.5, 0.1]))])
    put(np.ldexp, elementwise(WIDE, (-2, 3), ints=(1,)))
    # x1 == 0 (where x2 is the value) as integers: central differences in x1 would cross the jump
    put(np.heaviside, lambda: [(np.array([0, -1, 2, 0]), b.a(4)), (0, 0.3), (0.4, np.float64(0.3)), (b.a(3, 2), 0.3)])
    put(np.nextafter, elementwise(WIDE, WIDE))
    put(U.np_uf_plain, lambda: [(b.a(3, 2), None, True), (0.7, None, True)])
    register_methods(put, b)
    if U.sc is None:
        return
    sc = U.sc
    put(np.i0, elementwise(WIDE))
    # scipy.special, one domain per argument
    doms = {
        WIDE: (sc.erf, sc.erfc, sc.erfcx, sc.erfi, sc.dawsn, sc.expit, sc.log_expit, sc.ndtr, sc.log_ndtr, sc.i0,
               sc.i1, sc.i1e, sc.expm1, sc.exp2, sc.exp10, sc.cosm1, sc.sindg, sc.cosdg, sc.tandg,
               sc.wrightomega, sc.softplus),
        UNIT: (sc.erfinv,),
        POS: (sc.gammaln, sc.loggamma, sc.gamma, sc.rgamma, sc.digamma, sc.j0, sc.j1, sc.y0, sc.y1, sc.k0, sc.k1,
              sc.k0e, sc.k1e, sc.exp1, sc.expi, sc.entr, sc.log1p, sc.cbrt, sc.cotdg),
        PROB: (sc.logit, sc.ndtri, sc.erfcinv),
        (-3.0, -0.2): (sc.ndtri_exp,),
    }
    for dom, fns in doms.items():
        put(fns, elementwise(dom))
    put(sc.i0e, elementwise((0.2, 1.0)))
    put(sc.i0e, lambda: [(np.array([-0.8, -0.3]),), (-0.6,)])  # both sides of the kink at 0
    for fns, doms2 in (((sc.xlogy, sc.xlog1py, sc.beta, sc.betaln, sc.poch, sc.rel_entr, sc.kl_div), (POS, POS)),
                       ((sc.huber, sc.pseudo_huber), ((0.4, 0.9), WIDE)), ((sc.powm1,), (POS, WIDE))):
        put(fns, elementwise(*doms2))
    put((sc.xlogy, sc.xlog1py), lambda: [(np.array([0.0, 0.5]), np.array([0.4, 0.7])), (0.0, 0.3)])  # x = 0
    put(sc.huber, lambda: [(0.5, np.array([-1.2, -0.3, 0.2, 0.9]))])  # both pieces
    for fns, doms2 in (((sc.gammainc, sc.gammaincc), ((1, 3), POS)), ((sc.gammaincinv, sc.gammainccinv), ((1, 3), PROB)),
                       ((sc.iv, sc.ive, sc.jv, sc.jve, sc.yv, sc.yve, sc.kv, sc.kve, sc.yn, sc.kn), ((0, 3), POS)),
                       ((sc.expn,), ((0, 3), POS))):
        put(fns, elementwise(*doms2, ints=(0,)))
    put((sc.betainc, sc.betaincc), lambda: [(2, 3, b.a(3, 2, lo=0.1, hi=0.9)), (2, 1, 0.4), (3, 2, np.float64(0.6))])
    put(sc.polygamma, lambda: [(1, b.a(3, 2, lo=0.3, hi=2.0)), (2, 0.7), (np.arange(3), b.a(3, lo=0.3, hi=2.0))])
    put(sc.zeta, lambda: [(2, b.a(3, 2, lo=0.3, hi=2.0)), (3, 0.7), (4, np.float64(1.3))])
    put(sc.multigammaln, lambda: [(b.a(3, 2, lo=1.5, hi=3.0), 3), (2.2, 2), (np.float64(1.7), 1)])
    put(sc.logsumexp, lambda: [(b.a(3, 2),), (b.a(3, 2), 0), (b.a(3, 2), 1, b.a(2, lo=0.3, hi=2.0)),
                               (b.a(3, 2), None, b.a(3, 2, lo=0.3, hi=2.0), True), (0.7,), (b.a(4), 0, None, True)])
    put((sc.softmax, sc.log_softmax), lambda: [(b.a(3, 2),), (b.a(3, 2), 0), (b.a(3, 2), 1), (0.7,)])


def register_methods(put, b):
    """ufunc.outer / reduce / accumulate: the unbound methods (how ``np.add.outer(a, b)`` is called)
    over several ufuncs, and each bound method with a rule."""
    distinct = lambda *s: b.tdistinct(*s).numpy() * 0.3  # noqa: E731  (max/min: no ties)
    dom = dict(b.NP_ELEMENTWISE)
    dom.update({f: [WIDE, WIDE] for f in (np.fmax, np.fmin, np.nextafter)})
    dom[np.ldexp] = [WIDE, None]
    dom[np.heaviside] = [WIDE, WIDE]

    def arg(f, i, *shape):
        lohi = dom[f][i]
        if lohi is None:  # an integer argument
            return np.arange(int(np.prod(shape))).reshape(shape) - 1
        return b.a(*shape, lo=lohi[0], hi=lohi[1])

    def fold(f, *shape):
        if f in (np.maximum, np.minimum, np.fmax, np.fmin):
            return distinct(*shape)
        lo, hi = dom[f][1] if f is np.divide else dom[f][0]
        return b.a(*shape, lo=lo, hi=hi)

    put(np.ufunc.outer, lambda: [(f, arg(f, 0, 3), arg(f, 1, 2)) for f in (np.add, np.multiply, np.logaddexp,
                                                                          np.divide, np.fmax)]
        + [(np.subtract, arg(np.subtract, 0, 3, 2), 0.7), (np.power, 1.3, arg(np.power, 1, 2))])
    put(np.ufunc.reduce, lambda: [(np.add, b.a(3, 2)), (np.multiply, b.a(3, 2), 1), (np.maximum, distinct(3, 2)),
                                  (np.subtract, b.a(3, 2), 1), (np.logaddexp, b.a(4, 2), 0),
                                  (np.hypot, b.a(3, 2), 1, None, None, True), (np.add, b.a(3, 2), None),
                                  (np.add, b.a(3, 2), 0, None, None, False, 0.7)])
    put(np.ufunc.accumulate, lambda: [(np.add, b.a(3, 2), 1), (np.multiply, b.a(3, 2)), (np.logaddexp, b.a(3, 2), 1),
                                      (np.maximum, distinct(3, 2), 0)])
    for f in U.BOUND_OUTER:
        put(f.outer, lambda f=f: [(arg(f, 0, 3), arg(f, 1, 2)), (arg(f, 0, 2, 2), arg(f, 1, 3))])
    for f in U.BOUND_FOLD:
        put(f.reduce, lambda f=f: [(fold(f, 3, 2),), (fold(f, 3, 2), 1), (fold(f, 4), 0, None, None, True)])
        put(f.accumulate, lambda f=f: [(fold(f, 3, 2),), (fold(f, 3, 2), 1)])
    # the ufunc keywords' defaults, out=None passed by position
    put((np.sin, np.exp), lambda: [(b.a(3, 2), None)])
    put(np.add, lambda: [(b.a(3, 2), b.a(2), None)])
