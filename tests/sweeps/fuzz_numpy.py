"""NumPy programs for the fuzzer (``python -m tests.sweeps.fuzz --kind numpy``).

Programs take float64 arrays of shapes (3,) and (2, 3), sometimes a Python float
and an ``np.float64``, and use NumPy as scientific code does: ufuncs on arrays and
on numbers, broadcasting, reductions with ``axis``/``keepdims``, ``cumsum``/
``cumprod``/``diff``, ``sort``, ``flip``/``roll``, ``concatenate``/``stack``,
integer-array and boolean-mask indexing, ``einsum``/``@`` with fixed matrices,
``linalg`` (solve, det, slogdet, inv, cholesky, eigvalsh) on a fixed well-conditioned
matrix plus the data, FFT, quantiles, ``pad``/``take``/``roll``/``interp``, ``scipy.special``,
in-place writes into copies (``y[0] = ...``, ``y[1:] = ...``, ``y += ...``,
``np.add.at``), lists of arrays, ``if``/``for``/``while`` on values. There is no
torch reference for NumPy code: each derivative is checked against central
differences at two step sizes (a point where they disagree is non-smooth and
skipped), and a gradient must have its argument's type and shape.
"""
import math

import numpy as np

try:
    from .shaped import ShapedGen
except ImportError:   # imported as sweeps.fuzz_numpy or from tests/sweeps
    from shaped import ShapedGen

SHAPES = ((), (3,), (2, 3))
UNARY = ("np.sin({})", "np.cos({})", "np.tanh({})", "np.exp(np.tanh({}))", "np.log(1.0 + {0} * {0})",
         "np.sqrt(1.5 + {0} * {0})", "np.arctan({})", "np.square({})", "np.log1p({0} * {0})",
         "np.expm1(np.tanh({}))", "np.sinh(np.tanh({}))", "np.cbrt(2.0 + np.tanh({}))", "np.abs({})",
         "special.expit({})", "special.erf({})", "special.gammaln(1.5 + {0} * {0})", "np.negative({})",
         "np.power(1.5 + {0} * {0}, 0.7)", "np.arcsinh({})", "np.hypot({}, 0.8)")
BINARY = ("({} + {})", "({} - {})", "({} * {})", "({} * {})", "np.add({}, {})", "np.multiply({}, {})",
          "np.maximum({}, {})", "np.minimum({}, {})", "np.divide({}, 1.5 + {} ** 2)",
          "np.arctan2({}, 1.5 + {} ** 2)", "np.logaddexp({}, {})", "np.where(C3 > 0, {}, {})")


class NumpyGen(ShapedGen):
    """Expressions of a known shape; statements that assign, write in place and branch."""

    def __init__(self, rng):
        super().__init__(rng)
        self.numbers = []

    def of_shape(self, sc, shape, d):
        r = self.rng
        if d <= 0 or r.random() < 0.2:
            return self.leaf(sc, shape)
        u = r.random()
        e = lambda s=shape: self.of_shape(sc, s, d - 1)  # noqa: E731
        if u < 0.3:
            t = r.choice(UNARY)
            self.features.add(t.split("(")[0])
            return t.format(e())
        if u < 0.55:
            smaller = [s for s in SHAPES if len(s) <= len(shape) and (s == () or s == shape[-len(s):])]
            s2 = r.choice(smaller)
            if s2 != shape:
                self.features.add("broadcast")
            t = r.choice(BINARY)
            if "C3" in t and shape != (3,) and shape != (2, 3):
                t = "np.maximum({}, {})"
            a, b = e(), self.of_shape(sc, s2, d - 1)
            self.features.add(t.split("(")[0] or "op")
            return t.format(a, b) if r.random() < 0.5 or "1.5" in t else t.format(b, a)
        if u < 0.62:
            if self.numbers and r.random() < 0.6:
                self.features.add("number-arg")
                return f"{r.choice(self.numbers)} * {e()}"
            return f"{r.choice(['0.5', '2.0', '-1.5', '0.3'])} * {e()}"
        return self.reshape(sc, shape, d)

    def reshape(self, sc, shape, d):
        """Shape-changing NumPy functions that produce ``shape``."""
        r = self.rng
        k = r.random()
        if shape == ():
            src = r.choice([(3,), (2, 3)])
            a = self.of_shape(sc, src, d - 1)
            forms = ["np.sum({})", "np.mean({})", "np.max({})", "np.min({})", "np.prod(np.tanh({}))",
                     "np.var({})", "np.std({})", "np.linalg.norm({})", "special.logsumexp({})", "np.ptp({})",
                     "np.median({})", "({}).sum()", "np.sum({0} * {0})", "np.average({}, weights=WS{})"]
            t = r.choice(forms)
            self.features.add(t.split("(")[0].lstrip("(") or "sum")
            if "WS" in t:
                return f"np.average({a}, weights={'W3' if src == (3,) else 'W23'})"
            if k < 0.2:
                self.features.add("index")
                return f"{self.var_or(sc, src, d)}[{'1' if src == (3,) else '1, 2'}]"
            if k < 0.3 and src == (3,):
                self.features.add("dot")
                return f"np.dot({a}, {self.of_shape(sc, (3,), d - 1)})"
            if k < 0.45 and src == (3,):
                t = r.choice(["np.quantile({0}, 0.3)", "np.percentile({0}, 70.0)", "np.trapezoid({0})",
                              "np.polyval({0}, 0.7)", "np.linalg.det(SPD + 0.1 * np.outer({0}, {0}))",
                              "np.linalg.slogdet(SPD + 0.1 * np.outer({0}, {0}))[1]", "np.vdot({0}, W @ {0})",
                              "np.linalg.norm(np.fft.rfft({0}))"])
                self.features.add(t.split("(")[0])
                return t.format(a)
            return t.format(a)
        if shape == (3,):
            a = lambda: self.of_shape(sc, (3,), d - 1)  # noqa: E731
            m = lambda: self.of_shape(sc, (2, 3), d - 1)  # noqa: E731
            forms = [
                ("array", lambda: f"np.array([{', '.join(self.of_shape(sc, (), d - 1) for _ in range(3))}])"),
                ("matmul", lambda: f"W @ {a()}"), ("einsum", lambda: f"np.einsum('ij,j->i', W, {a()})"),
                ("sum-axis", lambda: f"np.sum({m()}, axis=0)"), ("mean-axis", lambda: f"({m()}).mean(axis=0)"),
                ("max-axis", lambda: f"np.max({m()}, axis=0)"), ("index", lambda: f"{self.var_or(sc, (2, 3), d)}[1]"),
                ("cumsum", lambda: f"np.cumsum({a()})"), ("cumprod", lambda: f"np.cumprod(np.tanh({a()}))"),
                ("sort", lambda: f"np.sort({a()})"), ("flip", lambda: f"np.flip({a()})"),
                ("reverse", lambda: f"({a()})[::-1]"), ("roll", lambda: f"np.roll({a()}, 1)"),
                ("int-index", lambda: f"({a()})[[2, 0, 0]]"),
                ("concatenate", lambda: f"np.concatenate([({a()})[:1], ({a()})[1:]])"),
                ("clip", lambda: f"np.clip({a()}, -0.5, 0.5)"),
                ("diff", lambda: f"np.diff({a()}, prepend=0.0)"),
                ("solve", lambda: f"np.linalg.solve(SPD + np.diag(np.tanh({a()})) * 0.2, {a()})"),
                ("convolve", lambda: f"np.convolve({a()}, K3, mode='same')"),
                ("mask", lambda: f"np.where(M3, {a()}, 0.0)"),
                ("cumsum-axis", lambda: f"np.cumsum({m()}, axis=1)[0]"),
                ("fft", lambda: f"np.fft.irfft(np.fft.rfft({a()}) * FILT, n=3)"),
                ("eigvalsh", lambda: "np.linalg.eigvalsh(SPD + 0.1 * np.outer({0}, {0}))".format(a())),
                ("inv", lambda: "np.linalg.inv(SPD + 0.1 * np.outer({0}, {0})) @ {1}".format(a(), a())),
                ("cholesky", lambda: "np.linalg.cholesky(SPD + 0.1 * np.outer({0}, {0})) @ {1}".format(a(), a())),
                ("pad", lambda: f"np.pad(({a()})[:2], (1, 0), mode='edge')"), ("take", lambda: f"np.take({a()}, [2, 0, 1])"),
                ("interp", lambda: f"np.interp(XQ, XP, {a()})"), ("repeat", lambda: f"np.repeat(({a()})[:1], 3)"),
                ("logsumexp-axis", lambda: f"special.logsumexp({m()}, axis=0)"),
                ("tensordot", lambda: f"np.tensordot(W, {a()}, axes=1)"),
            ]
        else:
            a = lambda: self.of_shape(sc, (3,), d - 1)  # noqa: E731
            m = lambda: self.of_shape(sc, (2, 3), d - 1)  # noqa: E731
            forms = [
                ("stack", lambda: f"np.stack([{a()}, {a()}])"), ("outer", lambda: f"np.outer(({a()})[:2], {a()})"),
                ("matmul", lambda: f"({m()}) @ W"), ("einsum", lambda: f"np.einsum('ij,jk->ik', {m()}, W)"),
                ("vstack", lambda: f"np.vstack([{a()}, {a()}])"), ("cumsum-axis", lambda: f"np.cumsum({m()}, axis=0)"),
                ("sort-axis", lambda: f"np.sort({m()}, axis=1)"), ("flip", lambda: f"np.flip({m()}, 0)"),
                ("reshape", lambda: f"np.concatenate([{a()}, {a()}]).reshape(2, 3)"),
                ("newaxis", lambda: f"({a()})[None, :] * ({a()})[:2, None]"),
                ("keepdims", lambda: f"({m()}) - np.mean({m()}, axis=1, keepdims=True)"),
                ("mask-index", lambda: f"np.where(M23, {m()}, -({m()}))"),
                ("transpose", lambda: f"np.transpose(np.stack([{a()}, {a()}], axis=1))"),
                ("tile", lambda: f"np.tile({a()}, (2, 1))"),
                ("roll", lambda: f"np.roll({m()}, 1, axis=1)"), ("rot90", lambda: f"np.rot90({m()}, 2)"),
                ("triu", lambda: f"np.triu({m()})"), ("sort-axis0", lambda: f"np.sort({m()}, axis=0)"),
                ("softmax", lambda: f"special.softmax({m()}, axis=1)"),
                ("pad2", lambda: f"np.pad(({m()})[:, :2], ((0, 0), (0, 1)))"),
                ("tensordot", lambda: f"np.tensordot({m()}, W, axes=1)"),
            ]
        name, make = r.choice(forms)
        self.features.add(name)
        return make()

    def base(self, sc, shape):
        """A variable brought to ``shape`` (always terminates)."""
        r = self.rng
        v = r.choice(sorted(sc["vars"]))
        s = sc["vars"][v]
        if s == shape:
            return v
        if shape == ():
            return f"{v}" if s == () else f"{v}[{r.randrange(3)}]" if s == (3,) else f"{v}[{r.randrange(2)}, {r.randrange(3)}]"
        if shape == (3,):
            return f"({v} * C3)" if s == () else f"{v}[{r.randrange(2)}]"
        return f"({v} * C23)"

    def leaf(self, sc, shape):
        r = self.rng
        v = self.var(sc, shape)
        if v is not None and r.random() < 0.8:
            return v
        if shape == (3,) and sc["lists"] and r.random() < 0.4:
            self.features.add("array-list")
            return f"np.sum(np.stack({r.choice(sorted(sc['lists']))}), axis=0)"
        return self.base(sc, shape)

    def child(self, sc):
        return {"vars": dict(sc["vars"]), "copies": set(sc["copies"]), "lists": dict(sc["lists"])}

    def stmt(self, sc, ind, depth, in_loop):
        r = self.rng
        u = r.random()
        d = r.randint(1, 3)
        if u < 0.3:
            name, shape = self.fresh("y"), r.choice(SHAPES)
            e = self.of_shape(sc, shape, d)
            sc["vars"][name] = shape
            return [f"{ind}{name} = {e}"]
        if u < 0.38:
            arrays = sorted(v for v, s in sc["vars"].items() if s != ())
            v = r.choice(arrays)
            name = self.fresh("z")
            sc["vars"][name] = sc["vars"][v]
            sc["copies"].add(name)
            self.features.add("copy")
            return [f"{ind}{name} = {v}.copy()" if r.random() < 0.5 else f"{ind}{name} = np.array({v})"]
        if u < 0.55 and sc["copies"]:
            v = r.choice(sorted(sc["copies"]))
            shape = sc["vars"][v]
            k = r.random()
            self.features.add("inplace")
            if k < 0.25:
                self.features.add("setitem")
                rhs = self.of_shape(sc, () if shape == (3,) else (3,), d)
                return [f"{ind}{v}[{r.choice(['0', '1', '-1'])}] = {rhs}"]
            if k < 0.35:
                self.features.add("setitem-slice")
                rhs = self.of_shape(sc, (3,), d)
                return [f"{ind}{v}[..., 1:] = ({rhs})[:2]"]
            if k < 0.45:
                self.features.add("setitem-mask")
                mask = "M3" if shape == (3,) else "M23"
                return [f"{ind}{v}[{mask}] = {self.of_shape(sc, (), d)}"]
            if k < 0.55 and shape == (3,):
                self.features.add("add.at")
                return [f"{ind}np.add.at({v}, [0, 2, 0], {self.of_shape(sc, (3,), d)})"]
            op = r.choice(["+=", "-=", "*="])
            rhs = self.of_shape(sc, r.choice([shape, (), shape[-1:]]), d)
            if op == "*=":
                rhs = f"np.tanh({rhs})"
            self.features.add("iop")
            return [f"{ind}{v} {op} {rhs}"]
        if u < 0.65 and depth > 0:
            return self.if_stmt(sc, ind, depth, in_loop)
        if u < 0.73 and depth > 0:
            self.features.add("for")
            i = self.fresh("i")
            out = [f"{ind}for {i} in range({r.randint(1, 3)}):"]
            out += self.block(self.child(sc), ind + "    ", r.randint(1, 3), depth - 1, True)
            return out
        if u < 0.77 and depth > 0:
            return self.while_stmt(sc, ind, depth)
        if u < 0.87:
            if not sc["lists"] or r.random() < 0.5:
                self.features.add("array-list")
                L = self.fresh("L")
                sc["lists"][L] = 1
                return [f"{ind}{L} = [{self.of_shape(sc, (3,), d)}]"]
            self.features.add("append")
            return [f"{ind}{r.choice(sorted(sc['lists']))}.append({self.of_shape(sc, (3,), d)})"]
        if u < 0.94:
            self.features.add("scalar-ufunc")
            name, e = self.fresh("s"), r.choice(UNARY).format(self.of_shape(sc, (), d))
            sc["vars"][name] = ()
            return [f"{ind}{name} = {e}"]
        name = self.fresh("y")
        e = self.of_shape(sc, (3,), d)
        sc["vars"][name] = (3,)
        return [f"{ind}{name} = {e}"]

    def module(self, seed, shapes, nnum):
        r = self.rng
        args = [f"x{i}" for i in range(len(shapes))]
        self.numbers = [f"s{i}" for i in range(nnum)]
        sc = {"vars": {**{a: s for a, s in zip(args, shapes)}, **{s: () for s in self.numbers}},
              "copies": set(), "lists": {}}
        body = self.block(sc, "    ", r.randint(2, 6), 2, False)
        outs = [self.of_shape(sc, (3,), 1)] + [v for v, s in sorted(sc["vars"].items())
                                               if s in ((3,), (2, 3)) and r.random() < 0.4]
        red = r.choice(["np.sum(out * out)", "np.sum(np.tanh(out))", "np.sum(out)", "np.mean(out ** 3)",
                        "np.sum(np.sin(out))"])
        rs = np.random.RandomState(seed % (2 ** 31))
        lines = ["import numpy as np", "from scipy import special", "",
                 f"W = np.array({np.round(rs.randn(3, 3) * 0.5, 3).tolist()})",
                 f"SPD = np.array({(np.eye(3) * 3 + np.round(rs.randn(3, 3) * 0.3, 3) @ np.round(rs.randn(3, 3) * 0.3, 3).T).round(4).tolist()})",
                 "C3 = np.array([0.5, -1.0, 1.5])", "C23 = np.array([[1.0, -0.5, 0.25], [0.5, 2.0, -1.0]])",
                 "W3 = np.array([0.2, 0.5, 0.3])", "W23 = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])",
                 "K3 = np.array([0.25, 0.5, 0.25])", "M3 = np.array([True, False, True])",
                 "FILT = np.array([1.0, 0.5])", "XP = np.array([0.0, 0.5, 1.0])", "XQ = np.array([0.1, 0.45, 0.9])",
                 "M23 = np.array([[True, False, True], [False, True, True]])", "", "",
                 f"def f({', '.join(args + self.numbers)}):"] + body + [f"    out = {' + '.join(outs)}",
                                                                       f"    return {red}", ""]
        return "\n".join(lines)


def make(rng, seed, index):
    """(source, arguments, features) of one program."""
    shapes = [rng.choice([(3,), (3,), (2, 3)]) for _ in range(rng.choice([1, 1, 2]))]
    nnum = rng.choice([0, 0, 1, 2])
    g = NumpyGen(rng)
    src = g.module(seed * 7919 + index, shapes, nnum)
    args = [np.array([round(rng.uniform(-1.2, 1.2), 4) for _ in range(math.prod(s))]).reshape(s) for s in shapes]
    args += [rng.uniform(-1.0, 1.0) if k == 0 else np.float64(rng.uniform(-1.0, 1.0)) for k in range(nnum)]
    return src, args, sorted(g.features)


def _clone(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _value(f, args):
    try:
        with np.errstate(all="raise"):
            y = float(f(*_clone(args)))
    except Exception:  # noqa: BLE001
        return None
    return y if math.isfinite(y) and abs(y) < 1e8 else None


def _fd(f, args, i, k, h):
    def at(delta):
        xs = _clone(args)
        if isinstance(xs[i], np.ndarray):
            xs[i].reshape(-1)[k] += delta
        else:
            xs[i] = type(xs[i])(xs[i] + delta)
        return _value(f, xs)
    y1, y2, y0 = at(h), at(-h), _value(f, args)
    if y1 is None or y2 is None or y0 is None or abs(y1 + y2 - 2 * y0) > 1e-6 * max(1.0, abs(y0)):
        return None
    return (y1 - y2) / (2 * h)


def check(fz, prog, mod, order):
    """Verdicts by order: the gradient (type, shape, central differences) and, at order 2, the gradient
    of ``<gradient, v>`` for a fixed ``v`` (a Hessian-vector product) against central differences."""
    import torchzygote as tz
    f, args = mod.f, prog.args
    v = fz.Verdict()
    if _value(f, args) is None:
        v.skip("the plain program raises or is not finite")
        return {1: v}
    got, err = fz.guarded(lambda: tz.gradient(f, *_clone(args)))
    if err:
        v.bad(*err)
        return {1: v}
    _check_grads(fz, v, f, args, got, "d/d")
    res = {1: v}
    if order < 2 or v.cls != "ok":
        return res
    vs = [np.linspace(0.4, 1.2, np.size(a)).reshape(np.shape(a)) if isinstance(a, np.ndarray) else 0.7 for a in args]

    def hv(*xs):
        g = tz.gradient(f, *xs)
        s = 0.0
        for gi, vi in zip(g, vs):
            if gi is not None:
                s = s + np.sum(gi * vi)
        return s
    v2 = fz.Verdict()
    res[2] = v2
    if all(g is None for g in got):
        v2.skip("the first derivative is structurally zero (None)")
        return res
    got2, err = fz.guarded(lambda: tz.gradient(hv, *_clone(args)))
    if err:
        v2.bad(*err)
    else:
        _check_grads(fz, v2, hv, args, got2, "d2/d", rtol=1e-4, fd_h=(fz.H1 * 10, fz.H2 * 10))
    return res


def _check_grads(fz, v, f, args, got, label, rtol=1e-5, fd_h=None):
    h1, h2 = fd_h or (fz.H1, fz.H2)
    if not isinstance(got, tuple) or len(got) != len(args):
        v.bad("mismatch", f"gradient returned {got!r}")
        return
    for i, (a, g) in enumerate(zip(args, got)):
        if g is not None:
            if isinstance(a, np.ndarray) and (not isinstance(g, np.ndarray) or g.shape != a.shape):
                v.bad("mismatch", f"{label}x{i}: gradient {g!r} is not an array of shape {a.shape}")
                continue
            if not isinstance(a, np.ndarray) and type(g) is not type(a):
                v.bad("mismatch", f"{label}x{i}: gradient {g!r} of type {type(g).__name__}, argument {type(a).__name__}")
                continue
        for k in range(np.size(a)):
            gk = 0.0 if g is None else float(np.reshape(g, -1)[k])
            fz.compare(v, f"{label}x{i}[{k}]", gk, _fd(f, args, i, k, h1), _fd(f, args, i, k, h2), rtol=rtol)
