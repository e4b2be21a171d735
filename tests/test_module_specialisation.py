"""Transforms specialised on module arguments (``ad/analysis_modules.py``, ``ad/module_facts.py``):
a module's parameters, buffers, submodules and number attributes are read with their kinds
known, so the code around them is inlined, and every assumption is a guard of the entry or a
check where the value appears. torch autograd is the reference throughout."""
import re

import pytest
import torch
from torch import nn

import torchzygote as tz
from conftest import generated_sources
from torchzygote.ad import cache

D = torch.float64


class Scaled(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 5, bias=bias), nn.Tanh(), nn.Linear(5, 2, bias=bias))
        self.register_buffer("scale", torch.tensor([1.0, 2.0, 0.5]))
        self.eps = 0.25

    def forward(self, x):
        h = self.net(x / self.scale)
        return torch.sin(h).sum(-1) * self.eps + (self.scale ** 2).sum()


class Cell(nn.Module):
    """A hand-written recurrent cell: parameters read in a Python loop."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.rec = nn.Linear(4, 4, bias=False)

    def forward(self, xs):
        h = torch.zeros(xs.shape[1], 4, dtype=xs.dtype)
        for x in xs:
            h = torch.tanh(self.inp(x) + self.rec(h))
        return h


def loss(model, x):
    return (model(x) ** 2).mean()


def _reference(model, x):
    ps = list(model.parameters())
    xr = x.detach().requires_grad_(True)
    return torch.autograd.grad(loss(model, xr), ps + [xr])


def _check(model, x):
    ref = _reference(model, x)
    ps = list(model.parameters())
    g = tz.gradient(lambda: loss(model, x), tz.Params(ps + [x]))
    for p, r in zip(ps + [x], ref):
        torch.testing.assert_close(g[p], r, rtol=1e-10, atol=1e-12)
    gm, gx = tz.gradient(loss, model, x)   # the explicit form: the module's record
    torch.testing.assert_close(gx, ref[-1], rtol=1e-10, atol=1e-12)
    return gm


@pytest.mark.parametrize("bias", [True, False])
def test_gradients_match_torch(bias):
    torch.manual_seed(0)
    model = Scaled(bias).double()
    _check(model, torch.randn(7, 3, dtype=D))


def test_recurrent_cell_matches_torch():
    torch.manual_seed(1)
    model = Cell().double()
    gm = _check(model, torch.randn(6, 2, 3, dtype=D))
    assert gm.inp.weight is not None


def test_fields_are_read_with_their_kinds_known():
    """The buffer's and the number's reads are plain reads with a check, and the arithmetic on
    them is inlined (no run-time dispatch of ``getattr`` or ``/``)."""
    model = Scaled().double()
    src = tz.code_adjoint(Scaled.forward, model, torch.randn(7, 3, dtype=D)).source
    fwd = src.split("def back")[0]
    assert re.search(r"_read_field_\d+\(v2, \('scale'\)\)", fwd) and "_J(_ctx, _getattr" not in fwd
    assert "'T', 1, True" in fwd and "'R', None, None" in fwd   # the checks of what was assumed
    assert "_J(_ctx, _truediv" not in fwd


def test_instances_of_one_class_with_other_structures_get_their_own_entries():
    torch.manual_seed(2)
    a, b = Scaled(True).double(), Scaled(False).double()
    x = torch.randn(4, 3, dtype=D)
    for model in (a, b, a, b):
        _check(model, x)
    entries = [e for k, es in cache._cache.items() if k[0] is nn.Linear.forward.__code__ for e in es]
    biases = {f for e in entries for i, path, f in e.arg_guards if path == ("bias",)}
    assert {("T", 1, True), ("N", None, None)} <= biases   # Linear.forward, with and without bias


def test_field_changed_between_calls_is_respecialised():
    torch.manual_seed(3)
    model = Scaled().double()
    x = torch.randn(4, 3, dtype=D)
    _check(model, x)
    model.scale = torch.tensor(2.0, dtype=D)   # a buffer of another rank
    model.eps = 3   # an int
    _check(model, x)
    model.net[0].bias = None
    _check(model, x)


class Grows(nn.Module):
    """A method the forward calls rebinds a buffer to another rank: what the transform assumed
    of the later read no longer holds."""

    def __init__(self):
        super().__init__()
        self.register_buffer("s", torch.ones(3, dtype=D))

    def grow(self):
        self.s = torch.ones(2, 3, dtype=D)

    def forward(self, x):
        a = (x * self.s).sum()
        self.grow()
        return a + (x * self.s).sum()


def test_field_rebound_during_the_call_is_a_clear_error():
    model = Grows()
    with pytest.raises(tz.GradientError, match="specialised the function on its module arguments"):
        tz.gradient(lambda m, x: m(x), model, torch.randn(3, dtype=D))


class Rewrites(nn.Module):
    """The forward itself rebinds a field: not specialised on, so nothing to check."""

    def __init__(self):
        super().__init__()
        self.register_buffer("s", torch.ones(3, dtype=D))

    def forward(self, x):
        a = (x * self.s).sum()
        self.s = torch.ones(2, 3, dtype=D) * a
        return a + (x * self.s).sum()


def test_field_rebound_by_the_function_itself_is_followed():
    model = Rewrites()
    x = torch.randn(3, dtype=D)
    (g,) = tz.gradient(lambda x: model(x), x)
    model.s = torch.ones(3, dtype=D)
    xr = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(model(xr), xr)
    torch.testing.assert_close(g, ref)


def test_hook_added_after_the_first_gradient_is_followed():
    torch.manual_seed(4)
    model = Scaled().double()
    x = torch.randn(4, 3, dtype=D)
    _check(model, x)
    handle = model.net.register_forward_hook(lambda mod, inp, out: out * 2.0)
    try:
        _check(model, x)
    finally:
        handle.remove()
    _check(model, x)


def test_the_cache_keeps_no_user_module_alive():
    import gc
    import weakref
    refs = []
    for _ in range(3):
        m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
        tz.gradient(lambda m, x: m(x).sum(), m, torch.randn(5, 3, dtype=D))
        refs.append(weakref.ref(m))
        del m
    gc.collect()
    assert all(r() is None for r in refs)


class Mixed(nn.Module):
    """Submodules called by field (``self.body(x)``) and as a Sequential's items, two of them of
    one class with different structures (a Linear with and one without a bias)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4, bias=False), nn.Sigmoid())
        self.head = Scaled()

    def forward(self, x):
        return self.head(self.body(x)[:, :3])


def test_submodule_calls_run_the_transform_their_caller_chose():
    """A call of a submodule the caller is specialised on runs the entry its analysis chose
    (``dispatch.call_pinned``), without the cache's lookup; a class with two entries (the two
    Linears) is looked up at run time. Gradients match torch's."""
    torch.manual_seed(5)
    model = Mixed().double()
    src = "\n".join(generated_sources(lambda: _check(model, torch.randn(5, 3, dtype=D)))[1])
    assert re.search(r"_Jp_\d+\(_ctx, _pin_\d+, v\d+, 'body', v\d+\)", src)   # self.body(x)
    assert re.search(r"_Jp_\d+\(_ctx, _pin_\d+, v\d+, v\d+\)", src)          # the Sequential's items
    pins = [p for es in cache._cache.values() for e in es if e.fwd is not None
            for k, p in e.fwd.__globals__.items() if k.startswith("_pin_")]
    body = [p for p in pins if nn.Sigmoid in p]   # the items of Mixed.body
    assert body and all(nn.Linear not in p and nn.Tanh in p for p in body)


class Swaps(nn.Module):
    """A method the forward calls replaces a submodule by one of another class, or rebinds a
    submodule's parameter to None, before the submodule is called."""

    def __init__(self, how):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
        self.how = how

    def change(self):
        if self.how == "class":
            self.net[1] = nn.Sigmoid()
        else:
            self.net[0].bias = None

    def forward(self, x):
        a = self.net(x).sum()
        self.change()
        return a + self.net(x).sum()


@pytest.mark.parametrize("how", ["class", "field"])
def test_submodule_changed_during_the_call_is_followed(how):
    """A method replaces a Sequential's item by another class (Tanh by Sigmoid: no transform is
    pinned for it) or rebinds a submodule's bias to None (the second call no longer fits the entry
    pinned for it) between two calls of the Sequential: the call goes through ``J``, and the
    gradient is torch's."""
    torch.manual_seed(6)
    x = torch.randn(4, 3, dtype=D)
    model, ref = Swaps(how).double(), Swaps(how).double()
    ref.load_state_dict(model.state_dict())
    g = tz.gradient(lambda m: m(x), model)[0]
    want = torch.autograd.grad(ref(x), ref.net[0].weight)[0]
    torch.testing.assert_close(g.net[0].weight, want)


class _Act(nn.Module):
    def forward(self, x):
        return torch.tanh(x)


def test_a_class_forward_replaced_after_the_first_gradient_is_followed():
    from unittest import mock
    torch.manual_seed(9)
    x = torch.randn(4, 3, dtype=D)
    m = nn.Sequential(nn.Linear(3, 3), _Act(), nn.Linear(3, 1)).double()
    tz.gradient(lambda mm, xx: mm(xx).sum(), m, x)
    with mock.patch.object(_Act, "forward", lambda self, x: torch.sin(x)):
        g = tz.gradient(lambda mm, xx: mm(xx).sum(), m, x)[1]
        xr = x.clone().requires_grad_(True)
        torch.testing.assert_close(g, torch.autograd.grad(m(xr).sum(), xr)[0])


class _Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.register_buffer("mask", None)

    def forward(self, x):
        y = self.lin(x)
        if self.mask is not None:
            y = y + self.mask
        return torch.softmax(y, -1)


class _SetsMask(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = _Masked()

    def forward(self, x, mask):
        self.attn.mask = mask   # (None when the call began)
        return self.attn(x).pow(2).sum()


def test_a_caller_setting_a_submodule_buffer_before_calling_it_is_followed():
    torch.manual_seed(10)
    x, mask = torch.randn(4, 3, dtype=D), torch.randn(4, 3, dtype=D)
    m = _SetsMask().double()
    for _ in range(2):
        m.attn.mask = None
        g = tz.gradient(lambda mm, xx: mm(xx, mask), m, x)[1]
        m.attn.mask = None
        xr = x.clone().requires_grad_(True)
        torch.testing.assert_close(g, torch.autograd.grad(m(xr, mask), xr)[0])


class _Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 3, dtype=D))


class _Derived(nn.Module):
    def __init__(self, raw):
        super().__init__()
        self.raw = raw

    @property
    def weight(self):
        return self.raw * 2.0


class _SwapsSub(nn.Module):
    """A method replaces ``self.sub`` by a module whose ``weight`` is a property, then the forward
    reads ``self.sub.weight``: read as the first class's plain field, its gradient would be lost."""

    def __init__(self):
        super().__init__()
        self.sub = _Plain()
        self.p = nn.Parameter(torch.randn(3, 3, dtype=D))
        self.flip = False

    def change(self):
        if self.flip:
            self.sub = _Derived(self.p)

    def forward(self, x):
        self.change()
        return (self.sub.weight * x).sum()


def test_a_submodule_replaced_by_another_class_during_the_call_is_a_clear_error():
    m, x = _SwapsSub(), torch.randn(3, 3, dtype=D)
    tz.gradient(lambda mm: mm(x), m)
    m.flip = True
    with pytest.raises(tz.GradientError, match="a module of class _Plain"):
        tz.gradient(lambda: m(x), tz.Params([m.p]))


class _PropertySub(nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = _Plain()

    def forward(self, x):
        return (self.sub.weight * x).sum()


class _SwapsInCaller(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _PropertySub()
        self.alt = _Derived(nn.Parameter(torch.randn(3, 3, dtype=D)))
        self.swap = False

    def forward(self, x):
        if self.swap:
            self.inner.sub = self.alt
        return self.inner(x)


def test_a_caller_replacing_a_submodule_child_by_another_class_is_followed():
    import copy
    torch.manual_seed(11)
    x, m = torch.randn(3, 3, dtype=D), _SwapsInCaller()
    tz.gradient(lambda mm, xx: mm(xx), m, x)
    m.swap = True
    ref = copy.deepcopy(m)
    g = tz.gradient(lambda: m(x), tz.Params([m.alt.raw]))
    torch.testing.assert_close(g[m.alt.raw], torch.autograd.grad(ref(x), ref.alt.raw)[0])


class _Shadowing(nn.Module):
    """Fields found in each place Python's lookup goes: a property of the class, the instance
    dict, a parameter, a buffer, a submodule."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2, dtype=D))
        self.register_buffer("b", torch.zeros(3, dtype=D))
        self.sub = nn.Linear(2, 2)
        self.eps = 0.5

    @property
    def doubled(self):
        return self.w * 2


class _OwnGetattr(nn.Module):
    def __getattr__(self, name):
        if name == "alias":
            return super().__getattr__("w")
        return super().__getattr__(name)


@pytest.mark.parametrize("name", ["w", "b", "sub", "eps", "doubled", "training", "missing"])
def test_read_field_reads_what_getattr_reads(name):
    """``values.fields.read_field`` (the fast read of a module's field that guards and specialised
    code use) gives what ``getattr`` gives, or raises what it raises."""
    from torchzygote.values.fields import read_field
    m = _Shadowing()
    try:
        want = getattr(m, name)
    except AttributeError:
        with pytest.raises(AttributeError):
            read_field(m, name)
        return
    got = read_field(m, name)
    if name == "doubled":   # (a property: a new tensor each read)
        assert torch.equal(got, want)
    else:
        assert got is want


def test_read_field_defers_to_a_class_own_getattr():
    from torchzygote.values.fields import read_field
    m = _OwnGetattr()
    m.w = nn.Parameter(torch.ones(2, dtype=D))
    assert read_field(m, "alias") is m.w and read_field(m, "w") is m.w


def test_compiled_guards_refuse_each_kind_of_change():
    """An entry's compiled guards (``module_facts.compile_guards``) accept the module they were made
    for and refuse each change a transform depends on: a tensor's rank or floating-point-ness, a
    submodule's class, a Sequential's items, a number turned tensor, a field gone."""
    from torchzygote.ad.module_facts import compile_guards, fact, ITEMS

    def make():
        return Scaled().double()

    def guards_of(m):
        paths = [(), ("scale",), ("eps",), ("net",), ("net", ITEMS), ("net", "0"), ("net", "0", "weight"),
                 ("net", "0", "bias")]
        out = []
        for p in paths:
            v = m
            for step in p:
                if step == ITEMS:
                    v = tuple(type(x) for x in v)
                    break
                v = getattr(v, step)
            out.append((0, p, v if p and p[-1] == ITEMS else fact(v)))
        return tuple(out)

    base = make()
    fits = compile_guards(guards_of(base))
    assert fits((base,)) and fits((make(),))
    changes = [
        lambda m: setattr(m, "scale", torch.ones(2, 2, dtype=D)),                 # rank
        lambda m: setattr(m, "scale", torch.ones(3, dtype=torch.int64)),          # not floating
        lambda m: setattr(m, "eps", torch.tensor(1.0)),                           # number -> tensor
        lambda m: m.net.__setitem__(0, nn.Tanh()),                                # class of an item
        lambda m: m.net.append(nn.Tanh()),                                        # items
        lambda m: setattr(m.net[0], "bias", None),                                # tensor -> None
        lambda m: delattr(m, "scale"),                                            # gone
    ]
    for change in changes:
        m = make()
        change(m)
        assert not fits((m,)), change
    assert not fits((nn.Linear(2, 2),)) and not fits(())


# ---------------------------------------------------------------- closed callers (dispatch.Pins)

class _TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x))).sum()


def _fwd_of(f, *args):
    return cache.entry(f, args).fwd


def test_module_forwards_without_writes_are_closed():
    """A forward made of rules and calls of closed submodules is closed (its pinned calls skip the
    checks its own entry made); one that writes an attribute, or calls a function at run time, is not."""
    torch.manual_seed(11)
    x = torch.randn(4, 3, dtype=D)
    model = Scaled().double()
    _check(model, x)
    assert _fwd_of(Scaled.forward, model, x).closed
    assert _fwd_of(nn.Sequential.forward, model.net, x).closed
    assert _fwd_of(nn.Linear.forward, model.net[0], x).closed
    sets = _SetsMask().double()
    tz.gradient(lambda mm, xx: mm(xx, None), sets, x)
    assert not _fwd_of(_SetsMask.forward, sets, x, None).closed
    swaps = Swaps("field").double()
    tz.gradient(lambda m: m(x), swaps)
    assert not _fwd_of(Swaps.forward, swaps, x).closed


def test_a_hook_run_inside_a_closed_caller_is_followed():
    """A closed caller's pinned calls trust the guards its entry checked when it began; a call that
    leaves for ``J`` (here a forward hook added after the first gradient) may run any code, and the
    hook rebinds the next layer's bias to None: that call checks, and the gradient is torch's."""
    torch.manual_seed(12)
    x = torch.randn(4, 3, dtype=D)
    model, ref = _TwoLayers().double(), _TwoLayers().double()
    ref.load_state_dict(model.state_dict())
    tz.gradient(lambda m, xx: m(xx), model, x)
    assert _fwd_of(_TwoLayers.forward, model, x).closed
    for m in (model, ref):
        m.a.register_forward_hook(lambda mod, inp, out, m=m: setattr(m.b, "bias", None))
    g = tz.gradient(lambda m, xx: m(xx), model, x)[1]
    xr = x.clone().requires_grad_(True)
    torch.testing.assert_close(g, torch.autograd.grad(ref(xr), xr)[0])
    assert model.b.bias is None


def test_every_rule_with_an_effect_is_classified():
    """``closed_forward`` trusts the rules with an effect listed as writing nothing; every other one
    is taken to write. A new rule with an effect is listed here or there, deliberately."""
    import operator
    from torch.nn import Module
    from torchzygote.ad.analysis_modules import EFFECT_READS
    from torchzygote.frontend import ops
    from torchzygote.rules.registry import TABLE
    writes = {setattr, delattr, object.__setattr__, operator.setitem, operator.delitem, ops.setitem_v,
              ops.set_global, *ops.REWRITES, operator.iadd, operator.imul, operator.ior, list.append,
              list.extend, list.insert, list.pop, Module.add_module, Module.register_buffer,
              Module.register_module, Module.register_parameter}
    effect = {r.fn for rules in TABLE.rules.values() for r in (rules if isinstance(rules, (list, tuple)) else [rules])
              if r.effect}
    assert not (EFFECT_READS & writes)
    unclassified = {getattr(f, "__qualname__", repr(f)) for f in effect if f not in EFFECT_READS and f not in writes}
    assert not unclassified


class _OutWriter(nn.Module):
    def forward(self, y):
        torch.ones(y.shape, out=y)   # (a builtin without a rule, writing its argument through out=)
        return 1.0


class _CallsOutWriter(nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = _OutWriter()

    def forward(self, w):
        y = w * 2.0
        z = y[:2] * w[:2]
        return z.sum() + self.sub(y)


def test_a_builtin_writing_through_out_is_not_closed():
    m, w = _CallsOutWriter(), torch.tensor([1.0, 2.0, 3.0], dtype=D)
    with pytest.raises(tz.GradientError, match="writes into a tensor argument in place"):
        tz.gradient(lambda mm, ww: mm(ww), m, w)


ACT_NOW = torch.tanh


class _ActFromGlobal(nn.Module):
    def forward(self, x):
        return ACT_NOW(x)


class _LenRebinds(nn.Module):
    """A submodule whose ``__len__`` (run by ``len`` in the caller's forward) rebinds a global the
    next submodule's transform resolved, or that submodule's bias."""
    how = None

    def __init__(self, owner=None):
        super().__init__()
        self._owner = [owner]

    def __len__(self):
        global ACT_NOW
        if self.how == "global":
            ACT_NOW = torch.sin
        elif self.how == "bias":
            self._owner[0].act_lin.bias = None
        return 1


class _UserCodeInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.cfg = _LenRebinds(self)
        self.act = _ActFromGlobal()
        self.act_lin = nn.Linear(3, 1)

    def forward(self, x):
        h = self.lin(x)
        n = len(self.cfg)
        return (self.act_lin(self.act(h)) * n).sum()


@pytest.mark.parametrize("how", ["global", "bias"])
def test_user_code_run_by_a_builtin_in_a_forward_is_followed(how):
    """``len(self.cfg)`` runs the submodule's ``__len__``: user code, in the middle of the forward,
    which rebinds a global a later submodule's transform resolved, or a later submodule's field. The
    forward is not closed (an operand that is an object), so the later calls check: torch's gradient."""
    global ACT_NOW
    torch.manual_seed(13)
    x = torch.randn(2, 3, dtype=D)
    model = _UserCodeInForward().double()
    tz.gradient(lambda m, xx: m(xx), model, x)
    assert not _fwd_of(_UserCodeInForward.forward, model, x).closed
    ref = _UserCodeInForward().double()
    ref.load_state_dict(model.state_dict())
    try:
        _LenRebinds.how = how
        ACT_NOW = torch.tanh
        g = tz.gradient(lambda m, xx: m(xx), model, x)[1]
        ACT_NOW = torch.tanh
        xr = x.clone().requires_grad_(True)
        want = torch.autograd.grad(ref(xr), xr)[0]
    finally:
        _LenRebinds.how = None
        ACT_NOW = torch.tanh
    torch.testing.assert_close(g, want)


class _LeakyInPlace(nn.Module):
    def forward(self, x):
        torch.nn.functional.leaky_relu(x, 0.1, True)   # (a rule's inplace flag: it writes into x)
        return 1.0


class _KeepsThroughTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.act = _LeakyInPlace()

    def forward(self, x):
        h = self.lin(x)
        keep = (h, None)
        c = self.act(h)
        return ((keep[0] * keep[0]).sum() + keep[0].sum()) * c


def test_a_rule_called_with_inplace_true_is_not_closed():
    """``F.leaky_relu(x, 0.1, True)`` writes into its argument: the callee is not closed, and the
    write it hides from its caller (who reads ``h`` again through a tuple) is refused, not missed."""
    torch.manual_seed(14)
    x = torch.randn(2, 3, dtype=D)
    m = _KeepsThroughTuple().double()
    with pytest.raises(tz.GradientError, match="writes into a tensor argument in place"):
        tz.gradient(lambda mm, xx: mm(xx), m, x)
    assert not _fwd_of(_LeakyInPlace.forward, m.act, x).closed


ACT_MODE = torch.tanh


class _ActFromModeGlobal(nn.Module):
    def forward(self, x):
        return ACT_MODE(x)


class _LinThenAct(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.act = _ActFromModeGlobal()

    def forward(self, x):
        return self.act(self.a(x)).sum()


def test_a_torch_function_mode_runs_user_code_in_a_closed_forward():
    """Under a ``TorchFunctionMode``, every torch call runs user code: here it rebinds the global
    the next submodule's transform resolved. Pinned calls check again, and the gradient is torch's."""
    from torch.overrides import TorchFunctionMode
    global ACT_MODE

    class Rebind(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            global ACT_MODE
            if func is torch.nn.functional.linear:
                ACT_MODE = torch.sin
            return func(*args, **(kwargs or {}))

    torch.manual_seed(15)
    m, x = _LinThenAct().double(), torch.randn(2, 3, dtype=D)
    tz.gradient(lambda mm, xx: mm(xx), m, x)
    assert _fwd_of(_LinThenAct.forward, m, x).closed
    try:
        with Rebind():
            ACT_MODE = torch.tanh
            g = tz.gradient(lambda mm, xx: mm(xx), m, x)[1]
            ACT_MODE = torch.tanh
            xr = x.clone().requires_grad_(True)
            want = torch.autograd.grad(m(xr), xr)[0]
    finally:
        ACT_MODE = torch.tanh
    torch.testing.assert_close(g, want)
