"""Implicit parameters (``Params``) reached along every kind of path a program stores values in:
each is credited exactly once per use. Before ``Context.param`` absorbed a parameter's gradient,
a parameter stored in a list, dict, object or module and read back was credited twice (once at
the read, once more where the stored value came from), silently doubling its gradient.

Each program is plain torch code, so torch autograd is the reference."""
import collections
import functools

import pytest
import torch

import torchzygote as tz

D = torch.float64
torch.manual_seed(0)
P = torch.randn(3, dtype=D)
Q = torch.randn(3, dtype=D)
X = torch.randn(5, 3, dtype=D)
LIN = torch.nn.Linear(3, 2).double()
RNN = torch.nn.GRU(3, 4, batch_first=True).double()
G = None   # written by one program (``global G``)


class Box:
    pass


def through_list():
    xs = [P]
    return (xs[0] * 3).sum()


def through_dict():
    d = {"w": P}
    return (d["w"] * 3).sum()


def through_object():
    b = Box()
    b.w = P
    return (b.w * 3).sum()


HOLDER = torch.nn.Module()


def through_module_attribute():
    HOLDER.w = P
    return (HOLDER.w * 3).sum()


def used_twice_and_directly():
    xs = [P, P]
    return (xs[0] * xs[1]).sum() + (P * 2).sum()


def append_pop():
    xs = []
    xs.append(P)
    q = xs.pop()
    return (q ** 2).sum()


def through_tuple():
    t = (P, 2.0)
    return (t[0] * t[1]).sum()


def closure():
    def inner():
        return (P * Q).sum()
    return inner() * 2


def comprehension():
    return sum((w ** 2).sum() for w in [P, Q])


def global_write():
    global G
    G = P
    return (G * 3).sum() + (P * Q).sum()


def derived_value_stored():
    xs = [P * 2]
    return (xs[0] * P).sum()


def aliased_dict_entries():
    d = {"a": P}
    d["b"] = d["a"]
    return (d["a"] * d["b"] * Q).sum()


def nested_containers():
    cfg = {"layers": [{"w": P}, {"w": Q}]}
    return sum((layer["w"] * X).sum() for layer in cfg["layers"])


def module_in_list():
    layers = [LIN]
    return torch.tanh(layers[0](X)).sum()


def module_field_reads():
    return (X @ LIN.weight.T + LIN.bias).pow(2).sum() + LIN.weight.sum()


def torch_fallback_module():   # GRU: its weights reach torch autograd through lists
    y, h = RNN(X[None])
    return (y ** 2).sum() + h.sum()


def bridged():
    return (tz.call_torch(LIN, X) ** 2).sum()


# Params inside tuples read from state, whose gradient reaches the read as the whole tuple's
# (unpacking, star arguments, iteration): ``Context.credit`` credits the items. Before, each of these
# gave None or half the gradient, silently.
PAIR = (P, X[0])
NESTED = ((P, X[1]), Q)
TWICE = (P, P, X[2])
Pair = collections.namedtuple("Pair", "a b")
NAMED = Pair(P, Q)
BOX = Box()
BOX.pair = (P, Q)


def _use(a, b):
    return (a * torch.sin(b)).sum()


def tuple_unpacked():
    a, b = PAIR
    return _use(a, b)


def tuple_star_argument():
    return _use(*PAIR)


def tuple_in_closure():
    pair = (P, Q)
    return (lambda: _use(*pair))()


def nested_tuple_unpacked():
    (a, b), c = NESTED
    return _use(a, b) + (c * a).sum()


def tuple_holding_one_parameter_twice():
    a, b, c = TWICE
    return _use(a, c) + _use(b, a)


def named_tuple_star_and_fields():
    return _use(*NAMED) + _use(NAMED.a, NAMED.b)


def tuple_field_unpacked():
    a, b = BOX.pair
    return _use(a, b)


def tuple_iterated():
    return sum((t * t).sum() for t in NESTED[0])


def tuple_default(p=(P, Q)):
    return _use(*p)


def tuple_indexed_and_unpacked():
    a, b = NESTED[0]
    return _use(NESTED[0][0], b) + _use(a, NESTED[0][1])


# Params inside lists and dicts kept outside the differentiated code, read whole (unpacked,
# starred, ``**``), through a class attribute, or stored in a ``functools.partial``: credited where
# they are read (``seq_back``'s items, ``_acc_slots``'s keywords, ``_partial_back``). Before, each gave
# None, silently (found by an adversarial review).
PLIST = [P, Q]
LAYERS = [[P, Q], [Q * 0 + P, Q]]   # (the second layer's first entry is data)
PDICT = {"a": P, "b": Q}


class Holder:
    W = P

    @staticmethod
    def static():
        return (Holder.W ** 2).sum()


def _kw_forward(**kw):
    return _use(**kw)


PARTIAL = functools.partial(_use, P)
PARTIAL_KW = functools.partial(_use, b=Q)


def list_unpacked():
    a, b = PLIST
    return _use(a, b)


def list_of_lists_iterated_and_unpacked():
    s = 0
    for a, b in LAYERS:
        s = s + _use(a, b)
    return s


def list_starred_whole_and_sliced():
    return _use(*PLIST) + _use(*PLIST[0:2]) + _use(*list(PLIST))


def dict_double_starred():
    return _use(**PDICT) + _use(P, **{"b": PDICT["b"]})


def dict_double_starred_through_a_keyword_function():
    return _kw_forward(**PDICT)


def class_attribute_and_static_method():
    return (Holder.W * Q).sum() + Holder.static()


def partial_positional_and_keyword():
    return PARTIAL(Q) + PARTIAL_KW(P)


PROGRAMS = [through_list, through_dict, through_object, through_module_attribute, used_twice_and_directly,
            append_pop, through_tuple, closure, comprehension, global_write, derived_value_stored,
            aliased_dict_entries, nested_containers, module_in_list, module_field_reads, torch_fallback_module,
            bridged, tuple_unpacked, tuple_star_argument, tuple_in_closure, nested_tuple_unpacked,
            tuple_holding_one_parameter_twice, named_tuple_star_and_fields, tuple_field_unpacked, tuple_iterated,
            tuple_default, tuple_indexed_and_unpacked, list_unpacked, list_of_lists_iterated_and_unpacked,
            list_starred_whole_and_sliced, dict_double_starred, dict_double_starred_through_a_keyword_function,
            class_attribute_and_static_method, partial_positional_and_keyword]


def _params(prog):
    if prog in (module_in_list, module_field_reads, bridged):
        return list(LIN.parameters())
    if prog is torch_fallback_module:
        return list(RNN.parameters())
    return [P, Q]


@pytest.mark.parametrize("prog", PROGRAMS, ids=lambda f: f.__name__)
def test_params_gradient_matches_torch(prog):
    ps = _params(prog)
    flags = [p.requires_grad for p in ps]
    for p in ps:
        p.requires_grad_(True)
    try:
        y = prog()
        ref = torch.autograd.grad(y, ps, allow_unused=True)
    finally:
        for p, f in zip(ps, flags):
            p.requires_grad_(f)
    with torch.no_grad():
        g = tz.gradient(prog, tz.Params(ps))
    for p, r in zip(ps, ref):
        got = g[p]
        if r is None:
            assert got is None or torch.count_nonzero(got) == 0
        else:
            assert got is not None, prog.__name__
            torch.testing.assert_close(got, r, rtol=1e-10, atol=1e-12)


def test_explicit_gradient_of_a_module_still_has_its_fields():
    """Absorbing is for Params only: the explicit gradient of a module (its record) keeps
    every field's gradient."""
    def loss(m, x):
        return (m(x) ** 2).sum() + m.weight.sum()
    (gm, gx) = tz.gradient(loss, LIN, X)
    w, b = (t.detach().requires_grad_(True) for t in (LIN.weight, LIN.bias))
    ref = torch.autograd.grad(((X @ w.T + b) ** 2).sum() + w.sum(), (w, b))
    torch.testing.assert_close(gm.weight, ref[0])
    torch.testing.assert_close(gm.bias, ref[1])


W_A = torch.tensor([0.5, -1.0], dtype=torch.float64)
W_B = torch.tensor([2.0, 0.3], dtype=torch.float64)
HELD = [W_A, W_B]   # a list made outside the differentiated code


def held_items_read():
    return sum((w ** 2).sum() for w in HELD) + (HELD[0] * 3.0).sum()


def held_list_whole():
    return (torch.stack(HELD) ** 2).sum()


def test_params_in_a_list_read_item_by_item():
    g = tz.gradient(held_items_read, tz.Params(HELD))
    torch.testing.assert_close(g[W_A], 2 * W_A + 3.0)
    torch.testing.assert_close(g[W_B], 2 * W_B)


def test_params_in_a_list_used_whole():
    """``torch.stack(lst)`` reads the list's items at the call (``ops.items_of``), whose pullback
    credits the Params among them (``items_back``); before, their gradients stayed in the list's
    slot and the Params got None."""
    g = tz.gradient(held_list_whole, tz.Params(HELD))
    assert g[W_A] is not None and g[W_B] is not None
    torch.testing.assert_close(g[W_A], 2 * W_A)
    torch.testing.assert_close(g[W_B], 2 * W_B)


class _ListHolder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(W_A.clone())
        self.b = torch.nn.Parameter(W_B.clone())
        self.pl = [self.a, self.b]     # a plain list attribute, not a ParameterList

    def forward(self, x):
        return ((torch.stack(self.pl) * x) ** 2).sum() + (torch.cat(list(self.pl)) * 2.0).sum()


def test_params_in_a_module_list_attribute_used_whole():
    m, x = _ListHolder(), torch.tensor([1.5, -0.5], dtype=torch.float64)
    g = tz.gradient(lambda: m(x), tz.Params([m.a, m.b]))
    ref = torch.autograd.grad(m(x), [m.a, m.b])
    torch.testing.assert_close(g[m.a], ref[0])
    torch.testing.assert_close(g[m.b], ref[1])


def _loop_of_uses(w):
    h = torch.zeros(5, 2, dtype=D)
    for k in range(6):
        h = torch.tanh(X @ w + h * 0.5) + k * 0.01
    return (h ** 2).sum()


def test_a_parameter_used_at_every_step_sums_its_gradient_in_one_buffer():
    """From its third contribution on, a parameter's gradient is added into the sum the context
    made (``values.algebra.add_owned``): the same numbers as torch, and neither a contribution
    nor an earlier call's gradients are written into."""
    w = torch.randn(3, 2, dtype=D)
    ps = tz.Params([w])
    y, pb = tz.pullback(lambda: _loop_of_uses(w), ps)
    first = pb(1.0)[w]
    kept = first.clone()
    second = pb(2.0)[w]
    wr = w.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(_loop_of_uses(wr), wr)
    torch.testing.assert_close(first, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(second, 2 * want)
    assert torch.equal(first, kept) and second is not first


def test_add_owned_writes_only_into_a_sum_it_may_write():
    from torchzygote.values.algebra import add_owned
    a, b = torch.ones(3, dtype=D), torch.full((3,), 2.0, dtype=D)
    assert add_owned(a, b, True) is a and torch.equal(a, torch.full((3,), 3.0, dtype=D))
    for x, y, owned in [(torch.ones(3, dtype=D), b, False),                   # not the caller's own
                        (torch.ones(1, dtype=D), b, True),                    # the sum has another shape
                        (torch.ones(3, dtype=torch.float32), b, True),        # another dtype
                        (torch.ones(3, dtype=D, requires_grad=True), b, True)]:   # in torch autograd's graph
        before = x.clone()
        out = add_owned(x, y, owned)
        assert out is not x and torch.equal(x, before)
        torch.testing.assert_close(out, (before + y).detach())


_C = torch.randn(3, dtype=D)


def test_in_place_sums_leave_torch_func_transforms_alone():
    """Under ``torch.func.vmap`` a batched contribution has Tensor's type and one sample's shape:
    the sum is then made out of place (an in-place add would write a batch into one sample)."""
    w = torch.randn(3, dtype=D)

    def loss(x):
        return (w * x).sum() + (w * _C).sum() + (w * _C).sum()   # (pulled back last to first)

    def per_sample(x):
        _, pb = tz.pullback(lambda: loss(x), tz.Params([w]))
        return pb(torch.tensor(1.0, dtype=D))[w]
    torch.testing.assert_close(torch.func.vmap(per_sample)(X), 2 * _C + X)


def test_a_partials_keywords_as_the_call_had_them():
    """A partial's keywords changed between two calls (and before the pullback): each call's
    Params are credited as that call had them."""
    pk = functools.partial(_use, b=P)

    def f():
        y = pk(Q)
        pk.keywords["b"] = X[0]
        z = pk(Q)
        pk.keywords["b"] = P
        return y + 2 * z
    ps = [P, Q]
    for p in ps:
        p.requires_grad_(True)
    try:
        ref = torch.autograd.grad(f(), ps)
    finally:
        for p in ps:
            p.requires_grad_(False)
    g = tz.gradient(f, tz.Params(ps))
    torch.testing.assert_close(g[P], ref[0])
    torch.testing.assert_close(g[Q], ref[1])


def test_the_gradient_of_a_partial_is_a_record_of_its_stored_arguments():
    """``gradient(f, partial(g, w))``: a record like a closure's (before: None)."""
    g = tz.gradient(lambda p: p(Q), functools.partial(_use, P))[0]
    torch.testing.assert_close(g.args[0], torch.sin(Q))
    g = tz.gradient(lambda p: p(Q), functools.partial(_use, b=P))[0]
    torch.testing.assert_close(g.keywords["b"], Q * torch.cos(P))
