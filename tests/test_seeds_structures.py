"""The seed documents' examples on data structures and mutation (numbers from the seeds)."""
import functools
import math
from collections import namedtuple

import pytest
import torch

import torchzygote as tz
from torchzygote import gradient


# ---------------------------------------------------------------- Point (docs: Structs and Types)

class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __add__(self, other):
        return Point(self.x + other.x, self.y + other.y)

    def __sub__(self, other):
        return Point(self.x - other.x, self.y - other.y)


def dist(p):
    return math.sqrt(p.x ** 2 + p.y ** 2)


def test_point_dist_value():
    a, b = Point(1.0, 2.0), Point(3.0, 4.0)
    assert dist(a + b) == pytest.approx(7.211102550927978, rel=1e-15)


def test_point_gradient():
    b = Point(3, 4)
    (g,) = gradient(lambda a: dist(a + b), Point(1, 2))
    assert isinstance(g, tz.Record)
    assert g.x == pytest.approx(0.5547001962252291, rel=1e-15)
    assert g.y == pytest.approx(0.8320502943378437, rel=1e-15)


def test_point_sub_gradient():
    b = Point(3.0, 4.0)
    ga, gb = gradient(lambda a, b: dist(a - b), Point(1.0, 2.0), b)
    # a - b = (-2, -2): d/da = (-2, -2)/sqrt(8), d/db = -(that)
    s = -2 / math.sqrt(8)
    assert ga.x == pytest.approx(s) and ga.y == pytest.approx(s)
    assert gb.x == pytest.approx(-s) and gb.y == pytest.approx(-s)


# ---------------------------------------------------------------- mutable dict (docs)

def test_dict_mutation_in_gradient():
    d = {}

    def f(x):
        d['x'] = x
        return d['x'] * d['x']

    assert gradient(f, 5) == (10,)
    assert d['x'] == 5


def test_dict_mutation_lambda_style():
    d = {}
    assert gradient(lambda x: (d.__setitem__('x', x), d['x'] * d['x'])[1], 5) == (10,)
    assert d['x'] == 5


# ---------------------------------------------------------------- global dict state (talk: pow with vars)

vars_ = {'r': 0, 'n': 0}


def pow_vars(x, n):
    vars_['r'] = 1
    vars_['n'] = n
    while vars_['n'] > 0:
        vars_['n'] -= 1
        vars_['r'] *= x


def test_pow_vars_plain():
    pow_vars(5, 3)
    assert vars_['r'] == 125


def test_pow_vars_gradient():
    vars_['r'], vars_['n'] = 0, 0
    assert gradient(lambda x: (pow_vars(x, 3), vars_['r'])[1], 5) == (75,)
    assert vars_['r'] == 125
    assert vars_['n'] == 0


def test_pow_vars_gradient_def():
    def f(x):
        pow_vars(x, 3)
        return vars_['r']

    vars_['r'], vars_['n'] = 0, 0
    assert gradient(f, 5) == (75,)
    assert vars_['r'] == 125


# ---------------------------------------------------------------- explicit parameters (docs)

def linear(θ, x):
    return θ['W'] @ x + θ['b']


def test_linear_dict_params():
    torch.manual_seed(0)
    x = torch.rand(5, dtype=torch.float64)
    θ = {'W': torch.rand(2, 5, dtype=torch.float64), 'b': torch.rand(2, dtype=torch.float64)}
    (g,) = gradient(lambda θ: linear(θ, x).sum(), θ)
    assert isinstance(g, dict) and set(g) == {'W', 'b'}
    assert torch.equal(g['b'], torch.ones(2, dtype=torch.float64))
    assert torch.allclose(g['W'], x.expand(2, 5))


def test_linear_named_tuple_params():
    torch.manual_seed(1)
    Theta = namedtuple("Theta", ["W", "b"])
    x = torch.rand(5, dtype=torch.float64)
    θ = Theta(torch.rand(2, 5, dtype=torch.float64), torch.rand(2, dtype=torch.float64))
    (g,) = gradient(lambda θ: (θ.W @ x + θ.b).sum(), θ)
    assert isinstance(g, tz.Record)
    assert torch.equal(g.b, torch.ones(2, dtype=torch.float64))
    assert torch.allclose(g.W, x.expand(2, 5))


class Linear:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def __call__(self, x):
        return self.W @ x + self.b


def test_callable_struct_linear():
    torch.manual_seed(2)
    model = Linear(torch.rand(2, 5, dtype=torch.float64), torch.rand(2, dtype=torch.float64))
    x = torch.rand(5, dtype=torch.float64)
    (g,) = gradient(lambda model: model(x).sum(), model)
    assert isinstance(g, tz.Record)
    assert set(g.keys()) == {'W', 'b'}
    assert torch.equal(g.b, torch.ones(2, dtype=torch.float64))
    assert torch.allclose(g.W, x.expand(2, 5))


def test_implicit_params_linear_and_update():
    torch.manual_seed(3)
    W = torch.rand(2, 5, dtype=torch.float64)
    b = torch.rand(2, dtype=torch.float64)
    x = torch.rand(5, dtype=torch.float64)
    ps = tz.Params([W, b])
    loss = lambda: ((W @ x + b) ** 2).sum()  # noqa: E731
    l0 = loss()
    grads = gradient(loss, ps)
    assert torch.allclose(grads[b], 2 * (W @ x + b))
    tz.update(ps, grads, 0.01)
    assert loss() < l0


# ---------------------------------------------------------------- dense / chain closures (talk)

def identity(x):
    return x


def dense(W, b, σ=identity):
    return lambda x: σ(W @ x + b)


def chain(*fs):
    return functools.reduce(lambda f, g: (lambda x: g(f(x))), fs)


def chain_loop(*fs):
    def run(x):
        for f in fs:
            x = f(x)
        return x
    return run


def _mlp(seed, make_chain=chain):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(5, 10, dtype=torch.float64, generator=g)
    b1 = torch.randn(5, dtype=torch.float64, generator=g)
    W2 = torch.randn(2, 5, dtype=torch.float64, generator=g)
    b2 = torch.randn(2, dtype=torch.float64, generator=g)
    x = torch.rand(10, dtype=torch.float64, generator=g)
    return make_chain(dense(W1, b1, torch.tanh), dense(W2, b2)), (W1, b1, W2, b2), x


def _autograd_ref(params, x):
    ps = [p.detach().clone().requires_grad_(True) for p in params]
    W1, b1, W2, b2 = ps
    (W2 @ torch.tanh(W1 @ x + b1) + b2).sum().backward()
    return [p.grad for p in ps]


def _find_tensors(g, path=()):
    """All tensors in a nested Record/tuple/dict gradient, with their paths."""
    out = []
    if isinstance(g, torch.Tensor):
        out.append((path, g))
    elif isinstance(g, tz.Record):
        for k, v in g.items():
            out += _find_tensors(v, path + (k,))
    elif isinstance(g, (tuple, list)):
        for i, v in enumerate(g):
            out += _find_tensors(v, path + (i,))
    elif isinstance(g, dict):
        for k, v in g.items():
            out += _find_tensors(v, path + (k,))
    return out


def test_mlp_value():
    mlp, (W1, b1, W2, b2), x = _mlp(0)
    assert torch.allclose(mlp(x), W2 @ torch.tanh(W1 @ x + b1) + b2)


@pytest.mark.parametrize("make_chain", [chain, chain_loop], ids=["reduce", "loop"])
def test_mlp_gradient_is_nested_record(make_chain):
    mlp, params, x = _mlp(0, make_chain)
    (m̄,) = gradient(lambda m: m(x).sum(), mlp)
    assert isinstance(m̄, tz.Record)
    found = _find_tensors(m̄)
    by_shape = {tuple(t.shape): t for _, t in found}
    assert len(found) == 4, [p for p, _ in found]
    ref = _autograd_ref(params, x)
    for p, r in zip(params, ref):
        assert torch.allclose(by_shape[tuple(p.shape)], r, rtol=1e-10, atol=1e-12)
    # the paths go through the closures' captured variables: W and b of each layer
    names = {p[-1] for p, _ in found}
    assert names == {'W', 'b'}


def test_mlp_gradient_descent():
    mlp, params, x = _mlp(4)

    def loss(m):
        return (m(x) ** 2).sum()

    l0 = loss(mlp)
    for _ in range(5):
        (m̄,) = gradient(loss, mlp)
        out = tz.update(mlp, m̄, 0.1)
        assert out is mlp
    assert loss(mlp) < l0
    # the closures' parameters changed in place (the cells were written)
    W1 = params[0]
    assert not torch.equal(W1, _mlp(4)[1][0])


def test_mlp_update_matches_manual_step():
    mlp, params, x = _mlp(5)
    before = [p.clone() for p in params]
    ref = _autograd_ref(params, x)
    (m̄,) = gradient(lambda m: m(x).sum(), mlp)
    tz.update(mlp, m̄, 0.1)
    W1, b1, W2, b2 = before
    gW1, gb1, gW2, gb2 = ref
    expect = (W2 - 0.1 * gW2) @ torch.tanh((W1 - 0.1 * gW1) @ x + (b1 - 0.1 * gb1)) + (b2 - 0.1 * gb2)
    assert torch.allclose(mlp(x), expect, rtol=1e-10)


# ---------------------------------------------------------------- colours (talk, docs)

class RGB:
    def __init__(self, r, g, b):
        self.r = r
        self.g = g
        self.b = b


def _srgb_to_linear(c):
    if c > 0.04045:
        return ((c + 0.055) / 1.055) ** 2.4
    return c / 12.92


def _lab_f(t):
    d = 6 / 29
    if t > d ** 3:
        return t ** (1 / 3)
    return t / (3 * d * d) + 4 / 29


def to_lab(c):
    r, g, b = _srgb_to_linear(c.r), _srgb_to_linear(c.g), _srgb_to_linear(c.b)
    X = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b
    Y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    Z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b
    fx, fy, fz = _lab_f(X / 0.95047), _lab_f(Y / 1.0), _lab_f(Z / 1.08883)
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def colordiff(a, b):
    """CIE76 colour difference (Euclidean distance in Lab)."""
    la, lb = to_lab(a), to_lab(b)
    return math.sqrt(sum((p - q) ** 2 for p, q in zip(la, lb)))


def _fd_rgb(f, cols, h=1e-6):
    out = []
    for i, c in enumerate(cols):
        g = {}
        for name in ("r", "g", "b"):
            def at(v):
                cs = [RGB(k.r, k.g, k.b) for k in cols]
                setattr(cs[i], name, v)
                return f(*cs)
            v = getattr(c, name)
            g[name] = (at(v + h) - at(v - h)) / (2 * h)
        out.append(g)
    return out


def test_colordiff_value():
    assert colordiff(RGB(1.0, 0.0, 0.0), RGB(0.0, 1.0, 0.0)) == pytest.approx(170.57, rel=1e-3)


@pytest.mark.parametrize("a,b", [((0.9, 0.2, 0.3), (0.1, 0.8, 0.4)),
                                 ((0.5, 0.45, 0.6), (0.3, 0.7, 0.2))])
def test_colordiff_gradient(a, b):
    A, B = RGB(*a), RGB(*b)
    ga, gb = gradient(colordiff, A, B)
    want = _fd_rgb(colordiff, [A, B])
    for got, w in zip((ga, gb), want):
        assert isinstance(got, tz.Record)
        for name in ("r", "g", "b"):
            assert getattr(got, name) == pytest.approx(w[name], rel=1e-5, abs=1e-6), name


def test_colordiff_gradient_one_arg():
    b = RGB(0.1, 0.8, 0.4)
    (ga,) = gradient(lambda a: colordiff(a, b), RGB(0.9, 0.2, 0.3))
    want = _fd_rgb(lambda a: colordiff(a, b), [RGB(0.9, 0.2, 0.3)])[0]
    assert ga.r == pytest.approx(want["r"], rel=1e-5)
    assert ga.g == pytest.approx(want["g"], rel=1e-5)
    assert ga.b == pytest.approx(want["b"], rel=1e-5)


def test_colour_field_square():
    (g,) = gradient(lambda c: c.r ** 2, RGB(1.0, 0.0, 0.0))
    assert g == tz.Record(r=2.0, g=None, b=None)
    assert g.r == 2.0 and g.g is None and g.b is None


# ---------------------------------------------------------------- update on its own

def test_update_structures():
    Pair = namedtuple("Pair", "a b")
    assert tz.update(3.0, 2.0, 0.5) == 2.0
    assert tz.update((1.0, 2.0), (1.0, None), 0.5) == (0.5, 2.0)
    p = tz.update(Pair(1.0, 2.0), tz.Record(a=2.0, b=None), 0.5)
    assert isinstance(p, Pair) and p == Pair(0.0, 2.0)
    lst = [1.0, {'k': 2.0}]
    assert tz.update(lst, [None, {'k': 4.0}], 0.5) is lst and lst == [1.0, {'k': 0.0}]
    o = RGB(1.0, 1.0, 1.0)
    assert tz.update(o, tz.Record(r=1.0, g=None, b=2.0), 0.5) is o
    assert (o.r, o.g, o.b) == (0.5, 1.0, 0.0)
    t = torch.ones(3, dtype=torch.float64)
    assert tz.update(t, torch.ones(3, dtype=torch.float64), 0.5) is t
    assert torch.equal(t, torch.full((3,), 0.5, dtype=torch.float64))
    assert tz.update(o, None, 0.5) is o


def test_update_closure_scalar_cells():
    a, b = 2.0, 1.0

    def f(x):
        return a * x + b

    (g,) = gradient(lambda m: m(3.0) ** 2, f)
    assert g.a == pytest.approx(2 * 7.0 * 3.0) and g.b == pytest.approx(2 * 7.0)
    tz.update(f, g, 0.01)
    assert a == pytest.approx(2.0 - 0.42) and b == pytest.approx(1.0 - 0.14)
