"""Values a transform resolved when it was made (global functions, module attributes, the types of
data globals) rebound later: between two gradient calls the next call follows the new value; during
a call, where a function still running was specialised on the old one, the result is either right or
a clear error, never the old value's gradient."""
import math
import sys
import types
from unittest import mock

import pytest
import torch

import torchzygote as tz
from conftest import generated_sources
from torchzygote.ad import pipeline

X = torch.tensor([1.0, 2.0], dtype=torch.float64)
ONES = torch.ones(2, dtype=torch.float64)


def _ident(x):
    return x


def _square(x):
    return x * x


cfg = types.ModuleType("tz_test_cfg")   # a module whose attributes the code reads (``import cfg; cfg.act(x)``)
cfg.act, cfg.scale = _ident, 2.0
cfg.W = torch.tensor([1.0, 2.0], dtype=torch.float64)
sys.modules["tz_test_cfg"] = cfg


def _uses_cfg(x):
    return (cfg.act(x) * cfg.scale).sum()


@pytest.fixture(autouse=True)
def _restore():
    global act, G, C
    keep = dict(cfg.__dict__)
    yield
    cfg.__dict__.update(keep)
    act, G, C = _ident, None, 1.0


def test_a_module_attribute_rebound_between_calls_is_followed():
    """``cfg.act`` and ``cfg.scale`` were folded into the transform with no guard: after
    ``cfg.act = _square`` the next gradient was still the identity's."""
    torch.testing.assert_close(tz.gradient(_uses_cfg, X)[0], 2 * ONES)
    cfg.act = _square
    torch.testing.assert_close(tz.gradient(_uses_cfg, X)[0], 4 * X)
    cfg.scale = 3.0
    torch.testing.assert_close(tz.gradient(_uses_cfg, X)[0], 6 * X)
    with mock.patch.object(cfg, "act", _ident):
        torch.testing.assert_close(tz.gradient(_uses_cfg, X)[0], 3 * ONES)
    torch.testing.assert_close(tz.gradient(_uses_cfg, X)[0], 6 * X)
    assert tz.jvp(_uses_cfg, (X,), (ONES,))[1].item() == pytest.approx(18.0)


lazy = types.ModuleType("lazy")   # an attribute its ``__getattr__`` makes (as lazy-loading packages do)
lazy.__getattr__ = lambda name: _square if name == "act" else (_ for _ in ()).throw(AttributeError(name))


def _uses_lazy(x):
    return lazy.act(x).sum()


def _compiled(run) -> list:
    """The qualified names of the functions transformed while ``run()`` ran."""
    names = []
    inner = pipeline.compile

    def spy(*a):
        names.append(a[-1])
        return inner(*a)
    with mock.patch.object(pipeline, "compile", spy):
        run()
    return names


def test_an_attribute_from_a_module_getattr_is_transformed_once():
    def run():
        for _ in range(3):
            torch.testing.assert_close(tz.gradient(_uses_lazy, X)[0], 2 * X)
    assert _compiled(run).count("_uses_lazy") <= 1
    lazy.act = _ident   # now in its dict: followed
    torch.testing.assert_close(tz.gradient(_uses_lazy, X)[0], ONES)
    del lazy.act


act = _ident


def _install():
    global act
    act = _square


def _installs_then_calls_act(x):
    _install()
    return act(x).sum()


def _calls_act(x):
    return act(x).sum()


def _installs_then_calls_a_reader(x):
    _install()
    return _calls_act(x)


def _installs_into(m):
    m.act = _square


def _rebinds_cfg_then_calls_it(x):
    cfg.act = _square
    return cfg.act(x).sum()


def _rebinds_cfg_through_a_callee(x):
    _installs_into(cfg)
    return cfg.act(x).sum()


@pytest.mark.parametrize("f", [_installs_then_calls_act, _rebinds_cfg_then_calls_it, _rebinds_cfg_through_a_callee])
def test_rebinding_a_function_a_running_transform_bound_is_an_error(f):
    """The function running was transformed for the old ``act``: it computed the identity's value
    and gradient (1, 1) instead of the square's, silently."""
    with pytest.raises(tz.GradientError, match="is rebound while a function that uses it"):
        tz.gradient(f, X)


def test_rebinding_in_forward_mode():
    """Forward mode runs a call that takes no tangent as written (README, known limits): only a
    rebinding in differentiated code is seen."""
    with pytest.raises(tz.GradientError, match="is rebound while a function that uses it"):
        tz.jvp(_rebinds_cfg_then_calls_it, (X,), (ONES,))


def test_a_function_rebound_before_its_reader_runs_is_followed():
    """``_calls_act`` starts after the rebinding: its guard sees the new function."""
    torch.testing.assert_close(tz.gradient(_installs_then_calls_a_reader, X)[0], 2 * X)
    torch.testing.assert_close(tz.gradient(_calls_act, X)[0], 2 * X)


G = None
C = 1.0


def _set_g(x):
    global G
    G = x * 3


def _reads_g_set_by_a_callee(x):
    _set_g(x)
    return (G * x).sum()


def _set_c(x):
    global C
    C = x * 1.0


def _reads_c_set_by_a_callee(x):
    _set_c(x)
    return x * C * C


def test_a_global_holding_none_then_bound_by_a_callee_gets_its_gradient():
    """The read was specialised as a constant ``None``'s: the gradient through ``G`` was lost (3x, not 6x)."""
    torch.testing.assert_close(tz.gradient(_reads_g_set_by_a_callee, X)[0], 6 * X)
    globals()["G"] = None
    assert tz.jvp(_reads_g_set_by_a_callee, (X,), (ONES,))[1].item() == pytest.approx(18.0)


def test_a_global_rebound_to_another_kind_by_a_callee_is_an_error():
    """A float global rebound to a tensor: the code made for a float failed deep inside (a tensor's
    truth value); in forward mode a number global holding a value with a tangent lost it, and
    the result was a Dual."""
    globals()["G"] = 1.0   # (the reader is transformed for a float)
    with pytest.raises(tz.GradientError, match="the global 'G' was rebound during this call.*'Tensor'.*'float'"):
        tz.gradient(_reads_g_set_by_a_callee, X)
    globals()["G"] = 1.0
    with pytest.raises(tz.GradientError, match="the global 'G' was rebound during this call"):
        tz.jvp(_reads_g_set_by_a_callee, (X,), (ONES,))
    with pytest.raises(tz.GradientError, match="the global 'C' was written during this gradient call"):
        tz.jvp(_reads_c_set_by_a_callee, (0.5,), (1.0,))
    globals()["C"] = 1.0
    with pytest.raises(tz.GradientError, match="the global 'C' was written during this gradient call"):
        tz.gradient(_reads_c_set_by_a_callee, 0.5)


MODE = "a"
BUF = torch.zeros(2, dtype=torch.float64)
FLAG = 0


def _clear_state():
    global MODE, BUF, FLAG
    MODE, BUF, FLAG = None, None, True


def _reads_state_cleared_by_a_callee(x):
    _clear_state()
    if MODE is None and BUF is None and FLAG:
        return (x * 2).sum()
    return x.sum()


def test_a_global_rebound_to_a_value_without_gradient_goes_on():
    """A string, a tensor or an int rebound by a callee to None or a bool: no gradient can be lost
    (the first version of the kind check refused these)."""
    global MODE, BUF, FLAG
    try:
        torch.testing.assert_close(tz.gradient(_reads_state_cleared_by_a_callee, X)[0], 2 * ONES)
    finally:
        MODE, BUF, FLAG = "a", torch.zeros(2, dtype=torch.float64), 0


def _reads_c_in_a_test_only(x):
    _set_c(x)
    return x * 2.0 if C > 0 else x


def test_a_number_global_with_a_tangent_read_only_in_a_test():
    assert tz.jvp(_reads_c_in_a_test_only, (0.5,), (1.0,)) == (1.0, 2.0)
    globals()["C"] = 1.0
    assert tz.gradient(_reads_c_in_a_test_only, 0.5) == (2.0,)


def _uses_cfg_dt(x):
    return (x * cfg.scale).sum()


def test_an_equal_number_in_a_new_object_does_not_re_transform():
    """``cfg.scale = float(conf["scale"])`` at each step: a new float of the same value."""
    def run():
        for k in range(4):
            cfg.scale = float("2.0") + 0 * k
            torch.testing.assert_close(tz.gradient(_uses_cfg_dt, X)[0], 2 * ONES)
    assert _compiled(run).count("_uses_cfg_dt") <= 1


def _setattr_builtin(x):
    setattr(cfg, "act", _square)
    return cfg.act(x).sum()


def _installs_then_calls_act_twice(x):
    _install()
    return (act(x) * act(x)).sum()


def test_rebinding_through_setattr_and_under_nested_ad():
    """``setattr(cfg, "act", f)`` was not watched; under nested AD the running frames are transforms
    of generated code, which bind what that code bound (both silently used the old function)."""
    with pytest.raises(tz.GradientError, match="module attribute 'act' is rebound while"):
        tz.gradient(_setattr_builtin, X)
    with pytest.raises(tz.GradientError, match="global 'act' is rebound while"):
        tz.hessian(_installs_then_calls_act, X)
    globals()["act"] = _ident
    with pytest.raises(tz.GradientError, match="global 'act' is rebound while"):
        tz.derivative(tz.derivative(lambda t: _installs_then_calls_act_twice(X * t)))(1.0)


_COUNT = 0


def _counts(t):
    global _COUNT
    _COUNT = _COUNT + 1
    return t * t


def _counts_through_a_callee(t):
    _counts(t)
    return t * t * t


def test_a_global_write_under_nested_derivatives():
    """It crashed while the runtime's ``set_global`` was transformed (its name is a variable there)."""
    assert tz.derivative(tz.derivative(_counts))(1.5) == pytest.approx(2.0)
    assert tz.derivative(tz.derivative(_counts_through_a_callee))(1.5) == pytest.approx(9.0)


def _install_sorted(x):
    sorted([2, 1], key=lambda k: _install() or k)
    return (x * 3.0).sum()


def test_a_global_written_through_a_higher_order_call_in_forward_mode():
    """``sorted``'s key ran the runtime's ``set_global`` with forward mode's context: it crashed."""
    assert tz.jvp(_install_sorted, (X,), (ONES,))[1].item() == pytest.approx(6.0)


K = 3.0
W = torch.tensor([1.0, 2.0], dtype=torch.float64)


def _reads_through_globals(x):
    return (globals()["K"] * x * globals()["W"]).sum()


def _writes_through_globals(x):
    globals()["G"] = x * 2
    return G.sum()


def test_globals_is_the_functions_own_module():
    """``globals()`` in differentiated code returned the generated code's namespace (KeyError)."""
    torch.testing.assert_close(tz.gradient(_reads_through_globals, X)[0], 3 * W)
    torch.testing.assert_close(tz.gradient(lambda: _reads_through_globals(X), tz.Params([W]))[W], 3 * X)
    torch.testing.assert_close(tz.gradient(_writes_through_globals, X)[0], 2 * ONES)


T = torch.full((2,), 2.0, dtype=torch.float64)


def _set_t(v):
    global T
    T = v


def _reads_t_rebound_to_a_bool(x):
    _set_t(True)
    return (x * T).sum()


def test_a_tensor_global_rebound_to_a_bool_is_an_error():
    """Read as a tensor, the bool reached the pullback (``'bool' object has no attribute 'conj'``)."""
    global T
    try:
        with pytest.raises(tz.GradientError, match="the global 'T' was rebound during this call.*'bool'"):
            tz.gradient(_reads_t_rebound_to_a_bool, X)
    finally:
        T = torch.full((2,), 2.0, dtype=torch.float64)


def _uses_cfg_sign(x):
    return (x * math.copysign(1.0, cfg.sign)).sum()


def _sets_cfg_scale_to_its_value(x):
    cfg.scale = float("2.0")
    setattr(cfg, "scale", 2.0)
    return (x * cfg.scale).sum()


def test_number_attributes_are_compared_exactly():
    """-0.0 == 0.0, but not as a sign: a by-value guard kept the old constant. An equal value written
    during the call is the value the running code bound: not refused."""
    cfg.sign = -0.0
    torch.testing.assert_close(tz.gradient(_uses_cfg_sign, X)[0], -ONES)
    cfg.sign = 0.0
    torch.testing.assert_close(tz.gradient(_uses_cfg_sign, X)[0], ONES)
    torch.testing.assert_close(tz.gradient(_sets_cfg_scale_to_its_value, X)[0], 2 * ONES)


def _reads_cfg_w(x):
    return (x * cfg.W).sum()


def _imports_cfg_w(x):
    from tz_test_cfg import W
    return (x * W).sum()


def _writes_then_reads_cfg_w(x):
    cfg.W = x * 2
    return (cfg.W * x).sum()


def test_a_tensor_in_a_module_is_read_when_the_code_runs():
    """``cfg.W`` and ``from cfg import W`` were constants: a Params tensor read there got no gradient
    (None), ``from cfg import W`` kept the first tensor after ``cfg.W`` was rebound, and a write into
    ``cfg.W`` read back lost its gradient (a module had no slot for its fields)."""
    w = cfg.W
    for f in (_reads_cfg_w, _imports_cfg_w):
        torch.testing.assert_close(tz.gradient(lambda: f(X), tz.Params([w]))[w], X)
        torch.testing.assert_close(tz.gradient(f, X)[0], w)
    cfg.W = torch.tensor([5.0, 7.0], dtype=torch.float64)
    torch.testing.assert_close(tz.gradient(_imports_cfg_w, X)[0], cfg.W)
    torch.testing.assert_close(tz.gradient(_writes_then_reads_cfg_w, X)[0], 4 * X)
    cfg.W = w
    assert tz.jvp(_reads_cfg_w, (X,), (ONES,))[1].item() == pytest.approx(3.0)
    torch.testing.assert_close(tz.hessian(lambda x: (x * x * cfg.W).sum(), X), torch.diag(2 * w))


def _holds_a_module(m, x):
    return (x * m.scale).sum()


def _writes_cfg_h_then_reads_it(t):
    cfg.H = t * 3.0
    return torch.sin(cfg.H) * t


def _spells_getattr(x):
    return (x * getattr(cfg, "W")).sum()


def test_module_data_in_arguments_nested_ad_and_placeholders():
    """A module argument (or one held by an argument) crashed the gradient's construction once a
    module's fields had slots; reverse over reverse read ``cfg.H`` as a constant in the generated
    code (1.0871 for -1.1812); a field that held a list when the function was transformed, then a
    tensor, was read as a constant; ``getattr(cfg, "W")`` spelled out was a constant."""
    assert tz.gradient(_holds_a_module, cfg, X)[0] is None
    t = torch.tensor(0.7, dtype=torch.float64)
    want = -9 * torch.sin(3 * t) * t + 6 * torch.cos(3 * t)
    torch.testing.assert_close(tz.derivative(tz.derivative(_writes_cfg_h_then_reads_it))(t), want)
    torch.testing.assert_close(tz.gradient(lambda t: tz.gradient(_writes_cfg_h_then_reads_it, t)[0], t)[0], want)
    cfg.W = [0.0]
    compiled_for_a_list = tz.gradient(_writes_then_reads_cfg_w, X)   # transformed while cfg.W held a list
    torch.testing.assert_close(compiled_for_a_list[0], 4 * X)
    torch.testing.assert_close(tz.gradient(_writes_then_reads_cfg_w, X)[0], 4 * X)
    cfg.W = w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(tz.gradient(lambda: _spells_getattr(X), tz.Params([w]))[w], X)


def _rebinds_cfg_w_to_a_float():
    cfg.W = 1.5


def _reads_cfg_w_after_a_callee(x):
    _rebinds_cfg_w_to_a_float()
    return (x * cfg.W).sum()


def test_module_data_is_specialised_on_its_kind_and_checked():
    """``cfg.W`` is read with its kind's inlined code, as a data global is: a callee that rebinds it
    to another kind is refused at the read, never handled as the old kind's."""
    w = cfg.W
    try:
        with pytest.raises(tz.GradientError, match="'tz_test_cfg.W' was rebound during this call"):
            tz.gradient(_reads_cfg_w_after_a_callee, X)
    finally:
        cfg.W = w
    _, (src,) = generated_sources(lambda: tz.gradient(_reads_cfg_w, X))
    assert "_globaltype" in src and "_J(" not in src   # the product inlined, after the kind's check
