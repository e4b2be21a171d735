"""``torch.no_grad()`` blocks as torch autograd runs them: what they compute is a constant (also
when stored into a list, a dict, an attribute or a global, or computed by a function they call),
what they only move keeps its gradient (``y = x``, ``s.w``, a tuple), in-place writes pass the
gradient through, and ``enable_grad()`` inside turns recording back on. Each program is checked
against torch autograd, at first and second order, and forward mode against reverse mode."""
import pytest
import torch

import torchzygote as tz
from torchzygote.errors import GradientError


class _State:
    pass


S = _State()
LIN = torch.nn.Linear(3, 3).double()
_LOG = []


def _square(t):
    return t * t


def _weight(s):
    return s.w


def _reset(s):
    s.h = torch.zeros(3, dtype=torch.float64)


def _store(s, x):
    s.a = x * 2


class _Box:
    def __init__(self, t):
        self.t = t


def into_list(x):
    S.lst = []
    with torch.no_grad():
        S.lst.append(x * 2)
    return (S.lst[-1] * x).sum()


def into_field(x):
    with torch.no_grad():
        S.a = x * 2
    return (S.a * x).sum()


def into_field_by_callee(x):
    with torch.no_grad():
        _store(S, x)
    return (S.a * x).sum()


def into_dict(x):
    d = {}
    with torch.no_grad():
        d["k"] = x * 2
    return (d["k"] * x).sum()


def into_global_list(x):
    with torch.no_grad():
        _LOG.append(x.sum() * 3)
    return (_LOG[-1] * x).sum()


def inner_chain(x):
    with torch.no_grad():
        y = x * 2
        z = y * y
    return (z * x).sum()


def running_stats(x):
    S.t = torch.ones(3, dtype=torch.float64)
    m = x.mean()
    with torch.no_grad():
        S.t.mul_(0.9).add_(0.1 * m)
        rm = S.t
        rm.add_(m)
    return (x * S.t).sum()


def alias_keeps(x):
    with torch.no_grad():
        y = x
    return (y * x).sum()


def attribute_keeps(x):
    S.w = x * 3
    with torch.no_grad():
        y = S.w
    return (y * x).sum()


def callee_moves(x):
    S.w = x * 3
    with torch.no_grad():
        y = _weight(S)
        c = _square(x)
    return (y * x + c * x).sum()


def callee_resets(x):
    S.h = x * 3
    with torch.no_grad():
        _reset(S)
    return (S.h * x).sum() + (x * x).sum()


def enable_inside(x):
    with torch.no_grad():
        a = x * 2
        with torch.enable_grad():
            b = x * 3
    return (a * x + b * x).sum()


def set_grad_enabled_false(x):
    with torch.set_grad_enabled(False):
        a = x * 2
    return (a * x).sum()


def inference_mode(x):
    with torch.inference_mode():
        a = x.sum() * 2
    return a.item() * x.sum()


def inplace_passes_through(x):
    y = x * 1.0
    with torch.no_grad():
        y.mul_(2)
        y.clamp_(0, 5)
    return (y * y).sum()


def setitem_passes_through(x):
    y = x * 1.0
    with torch.no_grad():
        y[0] = 5.0
        y += 1
    return (y * x).sum()


def module_call(x):
    with torch.no_grad():
        h = LIN(x)
    return (h * x).sum() + LIN(x).sum()


def dispatched_at_run_time(x):
    o = _Box(x)
    with torch.no_grad():
        a = o.t * 3
        b = torch.sin(o.t)
        v = o.t[0:2]
    return (a * x * x + b * x).sum() + (v * v).sum()


def loop_inside(x, n=3):
    y = x
    with torch.no_grad():
        for _ in range(n):
            y = y * 2
    return (y * x).sum()


def loop_not_run(x):   # (y keeps x's gradient: no trip ran)
    return loop_inside(x, 0)


def tuple_moves(x):
    with torch.no_grad():
        p = (x, x * 2)
    return (p[0] * p[1] * x).sum()


def views_computed(x):
    with torch.no_grad():
        v = x[0:2]
        t = x.mT if x.dim() > 1 else x.exp()
    return (v * 2).sum() + (t * x).sum()


def stores_moved(x):
    d, lst = {}, [None]
    with torch.no_grad():
        d["b"] = x              # a move: d["b"] is x, with its gradient
        lst[0] = x * 1.0        # computed: a constant
        d.update({"c": x})
    return (d["b"] * x + lst[0] * x + d["c"]).sum()


def through_open_kind(x):
    S.buf = x * 1.0
    b = S.buf                   # its kind known at run time only
    with torch.no_grad():
        b.mul_(2.0)
    return (S.buf * x).sum()


def state_updates(x):
    S.buf = torch.ones(3, dtype=torch.float64)
    S.bufs = [torch.ones(3, dtype=torch.float64)]
    with torch.no_grad():
        b = S.buf
        b.mul_(0.9)
        b.add_(0.1 * x.mean())
        for c in S.bufs:
            c.mul_(0.9)
        g = _G
        g.mul_(1.0)
    return (S.buf * x + S.bufs[0] * x + _G * x).sum()


_G = torch.ones(3, dtype=torch.float64)
_HOOKED = torch.nn.Linear(3, 3).double()
_HOOKED.register_forward_hook(lambda m, i, o: o * 2)


def special_calls(x):
    with torch.no_grad():
        a = tz.checkpoint(_square, x)
        b = tz.call_torch(_square, x)
        h = _HOOKED(x)
    return (a * x + b * x).sum() + (h * x).sum()


def _raises(t):
    raise KeyError("k")


def caught_inside(x):
    with torch.no_grad():
        try:
            _raises(x)
        except KeyError:
            pass
    return _square(x).sum() + (x * x * x).sum()


@torch.no_grad()
def _decorated_square(t):
    return t * t


@torch.enable_grad()
def _decorated_enabled(t):
    return t * t


def decorated(x):
    with torch.no_grad():
        b = _decorated_enabled(x)
    return (_decorated_square(x) * x + b * x).sum()


def open_kind_view(x):
    o = [x]
    with torch.no_grad():
        t = o[0].T if x.dim() > 1 else o[0].exp()
        u = o[0] * 2
    return (t * x + u * x).sum()


PROGRAMS = [into_list, into_field, into_field_by_callee, into_dict, into_global_list, inner_chain, running_stats,
            alias_keeps, attribute_keeps, callee_moves, callee_resets, enable_inside, set_grad_enabled_false,
            inference_mode, inplace_passes_through, setitem_passes_through, module_call, dispatched_at_run_time,
            loop_inside, loop_not_run, tuple_moves, views_computed, stores_moved, through_open_kind, state_updates,
            special_calls, caught_inside, decorated, open_kind_view]
X = torch.tensor([0.6, -1.3, 2.1], dtype=torch.float64)


def _torch_grad(f, x):
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(f(xr), xr, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_gradient_as_torch_autograd(f):
    (g,) = tz.gradient(f, X.clone())
    assert torch.allclose(g, _torch_grad(f, X.clone()), atol=1e-12)


@pytest.mark.parametrize("f", [inner_chain, callee_moves, enable_inside, dispatched_at_run_time, module_call,
                               loop_inside, tuple_moves, into_list, callee_resets, stores_moved, caught_inside,
                               decorated, special_calls],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("method", ["forward", "reverse"])
def test_hessian_as_torch_autograd(f, method):
    """Second order: what the block computed stays a constant when the generated gradient code is
    differentiated again (``ops.detached``; a callee's no_grad transform under nested dispatch)."""
    expected = torch.autograd.functional.hessian(f, X.clone())
    assert torch.allclose(tz.hessian(f, X.clone(), method=method), expected, atol=1e-10)


@pytest.mark.parametrize("f", [inner_chain, enable_inside, into_list, inplace_passes_through, setitem_passes_through,
                               loop_inside, callee_moves, dispatched_at_run_time, stores_moved, decorated,
                               special_calls, open_kind_view],
                         ids=lambda f: f.__name__)
def test_forward_mode_agrees_with_reverse(f):
    """``jvp`` follows the blocks as reverse mode does (torch's own forward AD ignores no_grad;
    torchzygote keeps the two modes one derivative)."""
    v = torch.tensor([0.3, 1.1, -0.7], dtype=torch.float64)
    _, t = tz.jvp(f, (X.clone(),), (v,))
    (g,) = tz.gradient(f, X.clone())
    assert torch.allclose(t, (g * v).sum(), atol=1e-12)


def returns_inside(x):
    with torch.no_grad():
        return (x * x).sum()


def test_a_result_computed_under_no_grad_has_no_gradient():
    assert tz.gradient(returns_inside, X.clone()) == (None,)


def mode_from_a_variable(x, on):
    with torch.set_grad_enabled(on):
        y = x * x
    return (y * x).sum()


def inference_from_a_variable(x, on):
    with torch.inference_mode(mode=on):
        y = x.sum() * 2
    return y.item() * x.sum() if on else y * x.sum()


@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize("f", [mode_from_a_variable, inference_from_a_variable], ids=lambda f: f.__name__)
def test_a_grad_mode_chosen_at_run_time(f, on):
    """``set_grad_enabled(train)``: the block is lifted for both modes, and the flag chooses."""
    xr = X.clone().requires_grad_()
    (expected,) = torch.autograd.grad(f(xr, on), xr)
    assert torch.allclose(tz.gradient(f, X.clone(), on)[0], expected)


def test_a_function_called_both_ways_keeps_two_transforms():
    """The callee's no_grad transform and its usual one are separate cache entries: calling it
    outside a block afterwards still differentiates it."""
    def outside(x):
        return (_square(x) * x).sum()
    tz.gradient(callee_moves, X.clone())
    (g,) = tz.gradient(outside, X.clone())
    assert torch.allclose(g, 3 * X * X)


_SEQ = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)).double()


def container_module(x):
    with torch.no_grad():
        t = _SEQ(x)
    return (t * x).sum() + _SEQ(x).sum()


def test_a_module_of_modules_under_no_grad():
    """Its submodules' calls, pinned in the module's transform, run in its no_grad transform too."""
    xr = X.clone().requires_grad_()
    (expected,) = torch.autograd.grad(container_module(xr), xr)
    assert torch.allclose(tz.gradient(container_module, X.clone())[0], expected)
    params = list(_SEQ.parameters())
    got = tz.gradient(lambda: container_module(X), tz.Params(params))
    want = torch.autograd.grad(container_module(X), params)
    assert all(torch.allclose(got[p], w) for p, w in zip(params, want))


@torch.set_grad_enabled(False)
def _off(t):
    return t * t


def uses_off(x):
    return (_off(x) * x).sum()


def test_a_decorated_function_leaves_torch_grad_mode_alone():
    assert torch.is_grad_enabled()
    tz.gradient(uses_off, X.clone())
    tz.jvp(uses_off, (X.clone(),), (X.clone(),))
    assert torch.is_grad_enabled()


def inplace_in_a_loop(x):
    y = x * 1.0
    for _ in range(2):
        with torch.no_grad():
            y.mul_(2.0)
    return (y * x).sum()


def test_an_inplace_write_in_a_loop_at_second_order():
    """Generated code calls the write (not ``y.mul_(2)``), so differentiated again it is no write
    through the name ``ops.through`` passes the gradient back to (forward over reverse; reverse over
    reverse refuses the write, the loop's saved values being reached another way)."""
    expected = torch.autograd.functional.hessian(inplace_in_a_loop, X.clone())
    assert torch.allclose(tz.hessian(inplace_in_a_loop, X.clone(), method="forward"), expected)
    with pytest.raises(GradientError, match="in-place write"):
        tz.hessian(inplace_in_a_loop, X.clone(), method="reverse")


def _ruled(t):
    return t * t


@tz.adjoint(_ruled)
def _ruled_back(t):
    return _ruled(t), lambda dy: (2 * t * dy,)


@tz.jvp_rule(_ruled)
def _ruled_tangent(primals, tangents):
    (t,), (dt,) = primals, tangents
    return _ruled(t), None if dt is None else 2 * t * dt


def user_rules(x):
    with torch.no_grad():
        a = _ruled(x)
    return (a * x + _ruled(x)).sum()


def test_user_rules_run_as_they_are_there():
    """A function with its own rules (``tz.adjoint``, ``tz.jvp_rule``) called in the block gives no
    gradient and no tangent; outside it, its rules apply."""
    (g,) = tz.gradient(user_rules, X.clone())
    assert torch.allclose(g, X * X + 2 * X)
    v = torch.tensor([0.3, 1.1, -0.7], dtype=torch.float64)
    assert torch.allclose(tz.jvp(user_rules, (X.clone(),), (v,))[1], (g * v).sum())


def switch_made_elsewhere(x):
    ng = torch.no_grad()
    with ng:
        a = x * x
    return (a * x).sum()


def test_a_switch_made_elsewhere_is_refused():
    with pytest.raises(GradientError, match="where a 'with' statement calls it"):
        tz.gradient(switch_made_elsewhere, X.clone())


def _asks_grad_mode(x):
    on = torch.is_grad_enabled()
    with torch.no_grad():
        off = torch.is_grad_enabled()
    return (x * x).sum() * (2.0 if on and not off else 1.0)


def test_grad_mode_inside_differentiated_code_is_as_under_torch_autograd():
    """Torch's own grad mode is off while generated code runs (the gradient is that code); code
    asking it sees whether it is differentiated, as under torch autograd (before: False, so
    ``nn.Transformer``'s inference fast path, which has no derivative, crashed in eval mode)."""
    x = torch.randn(3, dtype=torch.float64)
    torch.testing.assert_close(tz.gradient(_asks_grad_mode, x)[0], 4 * x)
    torch.testing.assert_close(tz.jvp(_asks_grad_mode, (x,), (torch.ones_like(x),))[1], 4 * x.sum())


@pytest.mark.parametrize("need_weights", [True, False])
def test_transformer_layer_in_eval_mode_matches_torch(need_weights):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True).double().eval()
    mha = torch.nn.MultiheadAttention(4, 2, batch_first=True).double().eval()
    x = torch.randn(2, 5, 4, dtype=torch.float64)

    def loss(m, a):
        return m(x).pow(2).sum() + a(x, x, x, need_weights=need_weights)[0].pow(2).sum()
    ps = list(layer.parameters()) + list(mha.parameters())
    want = torch.autograd.grad(loss(layer, mha), ps)
    g = tz.gradient(lambda: loss(layer, mha), tz.Params(ps))
    for p, w in zip(ps, want):
        torch.testing.assert_close(g[p], w)


def _module_given_a_new_parameter(w, x):
    lin = torch.nn.Linear(3, 3, bias=False).double()
    lin.weight = torch.nn.Parameter(w)      # a new leaf, as in torch: no gradient reaches w
    return (lin(x) ** 2).sum() + (w * w).sum()


def test_a_parameter_made_inside_is_a_new_leaf_as_in_torch():
    """``nn.Parameter(w)`` runs as it is (a Parameter a module accepts; before, the fallback gave a
    plain tensor and torch refused the assignment) and, as in torch, passes no gradient to ``w``."""
    w, x = torch.randn(3, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    wr = w.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(_module_given_a_new_parameter(wr, x), wr)
    torch.testing.assert_close(tz.gradient(_module_given_a_new_parameter, w, x)[0], want)


def _times_dropped_square(x):
    return x * tz.dropgrad(x) ** 2


def _times_ignored_square(x):
    return x * tz.ignore(lambda: x * x)


@pytest.mark.parametrize("f", [_times_dropped_square, _times_ignored_square])
def test_dropgrad_and_ignore_cut_the_gradient_at_every_order(f):
    # the rule's forward passed x through: differentiated again, the gradient flowed (4.0, not 0)
    assert tz.derivative(f)(2.0) == 4.0
    assert tz.derivative(tz.derivative(f))(2.0) in (None, 0.0)
    x = torch.tensor([0.3, -0.5, 0.9], dtype=torch.float64)
    ref = torch.autograd.functional.hessian(lambda x: (x * x.detach() ** 2).sum(), x)
    for method in ("forward", "reverse"):
        assert torch.equal(tz.hessian(lambda x: f(x).sum(), x, method=method), ref)
