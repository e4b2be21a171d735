"""The errors of docs/errors.rst that tests/test_errors.py does not already show: each is
raised, says what went wrong, names the user's file:line where it has one, and says what
to do."""
import linecache
import os

import numpy as np
import pytest
import torch

import torchzygote as tz

THIS = os.path.basename(__file__)


def _line(fn, needle):
    import inspect
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, l in enumerate(lines) if needle in l)


# ---------------------------------------------------------------- LiftError

def uses_match(x, k):
    match k:
        case 0:
            return x
        case _:
            return x * 2


def test_lift_error_match():
    with pytest.raises(tz.LiftError, match=r"'match' statements in 'uses_match'; rewrite it") as e:
        tz.gradient(uses_match, 1.0, 1)
    assert f"{THIS}:{_line(uses_match, 'match k')}" in str(e.value)


def defines_class(x):
    class Box:
        pass
    b = Box()
    b.v = x
    return b.v * 2


def test_lift_error_class_definition():
    with pytest.raises(tz.LiftError, match="a class definition inside a differentiated function") as e:
        tz.gradient(defines_class, 1.0)
    assert f"{THIS}:{_line(defines_class, 'class Box')}" in str(e.value)


def test_lift_error_no_source():
    ns = {}
    exec("def nosrc(x):\n    return x ** 3\n", ns)   # no file: inspect cannot find its source
    with pytest.raises(tz.LiftError, match=r"cannot find the source of 'nosrc'.*linecache.*adjoint") as e:
        tz.gradient(ns["nosrc"], 2.0)
    assert "<string>:1" in str(e.value)


def test_lift_error_no_source_fixed_with_linecache():
    src = "def f(x):\n    return x ** 3\n"
    name = "<generated-catalogue-f>"
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    ns = {}
    exec(compile(src, name, "exec"), ns)
    assert tz.gradient(ns["f"], 2.0) == (12.0,)


def writes_through_view(x):
    y = x * 1.0
    v = y.view(-1)
    z = y.sin()
    v.mul_(3)
    return (z * y).sum()


def test_lift_error_inplace_write_through_view():
    with pytest.raises(tz.LiftError, match=r"in-place write.*y = y.clone\(\)") as e:
        tz.gradient(writes_through_view, torch.ones(2))
    assert f"{THIS}:{_line(writes_through_view, 'v.mul_(3)')}" in str(e.value)


BUFFER = torch.zeros(3, dtype=torch.float64)


def writes_a_global(x):
    BUFFER[0] = x * 2
    return (BUFFER * BUFFER).sum()


def test_lift_error_write_into_a_global_tensor():
    with pytest.raises(tz.LiftError, match=r"not a local variable.*G = G.clone\(\)") as e:
        tz.gradient(writes_a_global, 1.5)
    assert f"{THIS}:{_line(writes_a_global, 'BUFFER[0] = x * 2')}" in str(e.value)
    assert not BUFFER.any()   # refused before anything ran


def gen_values(x):
    def g():
        yield x * 2
    return sum(g())


def test_lift_error_gradient_into_generator_values():
    with pytest.raises(tz.LiftError, match=r"'yield' \(generators\).*build a list instead") as e:
        tz.gradient(gen_values, 1.0)
    assert f"{THIS}:{_line(gen_values, 'yield x * 2')}" in str(e.value)


# ---------------------------------------------------------------- NoRuleError

def test_no_rule_error_numpy():
    np = pytest.importorskip("numpy")
    with pytest.raises(tz.NoRuleError, match=r"unwrap.*@torchzygote.adjoint\(unwrap\).*nograd"):
        tz.gradient(lambda a: np.unwrap(a).sum(), np.array([0.5, 1.5]))


# ---------------------------------------------------------------- GradientError

def test_gradient_error_non_scalar_tensor():
    with pytest.raises(tz.GradientError, match=r"scalar output, got a tensor of shape \(3,\); use "
                                               r"torchzygote.jacobian, or pullback"):
        tz.gradient(lambda x: x * 2, torch.ones(3))


def test_gradient_error_non_number_output():
    with pytest.raises(tz.GradientError, match=r"real number as output, got tuple; use torchzygote.jacobian"):
        tz.gradient(lambda x: (x, x), 1.0)


def test_gradient_error_complex_output():
    with pytest.raises(tz.GradientError, match=r"real output, got a complex number; take abs, real or imag"):
        tz.gradient(lambda z: z * z, 1 + 2j)


class Bag:
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def sum_bag(x):
    s = 0.0
    for v in Bag([x, 2 * x]):
        s = s + v
    return s


def test_gradient_error_user_iter():
    with pytest.raises(tz.GradientError, match=r"items of a Bag iterated with __iter__.*iterate over a list"):
        tz.gradient(sum_bag, 1.0)


def scale_in_place(t):
    t.mul_(2)


def calls_in_place(x):
    y = x * 1.0
    scale_in_place(y)
    return y.sum()


def test_gradient_error_callee_writes_argument():
    with pytest.raises(tz.GradientError, match=r"scale_in_place writes into a tensor argument in place.*"
                                               r"return the new tensor") as e:
        tz.gradient(calls_in_place, torch.ones(2))
    assert f"{THIS}:{_line(scale_in_place, 'def scale_in_place')}" in str(e.value)


def scale_and_return(t):
    t.mul_(2)
    return t


def ignores_result(x):
    y = x * 1.0
    scale_and_return(y)      # y is now 2x, but the result is not bound: `y = scale_and_return(y)` works
    return y.sum()


def test_gradient_error_callee_writes_argument_the_caller_reads_again():
    with pytest.raises(tz.GradientError, match=r"scale_and_return writes in place into a tensor passed to it that "
                                               r"this function reads again afterwards.*`y = scale_and_return\(y\)`") as e:
        tz.gradient(ignores_result, torch.ones(2))
    assert f"{THIS}:{_line(ignores_result, 'scale_and_return(y)')}" in str(e.value)


def keyword_call_ignores_result(x):
    y = x * 1.0
    scale_and_return(t=y)
    return y.sum()


def test_gradient_error_keyword_callee_writes_argument():
    with pytest.raises(tz.GradientError, match=r"reads again afterwards under the same name"):
        tz.gradient(keyword_call_ignores_result, torch.ones(2))


def squares_then_scales(x):
    y = x * 1.0
    z = (y * y).sum()           # its gradient reads y
    y = scale_and_return(y)     # bound, but the old y the product saved is gone
    return z + y.sum()


def test_gradient_error_callee_overwrites_a_value_the_gradient_reads():
    with pytest.raises(tz.GradientError, match=r"whose old value this function's gradient needs; .*"
                                               r"pass a copy \(`scale_and_return\(y.clone\(\)\)`\)"):
        tz.gradient(squares_then_scales, torch.ones(2))


def test_gradient_error_callee_writes_argument_forward_mode():
    with pytest.raises(tz.GradientError, match=r"reads again afterwards under the same name"):
        tz.jvp(ignores_result, (torch.ones(2),), (torch.ones(2),))


def squares(a):
    return a * a


def keyword_call_then_write(x):
    y = x * 1.0
    z = squares(a=y)    # squares' gradient reads y
    y.mul_(2)
    return z.sum() + y.sum()


def test_gradient_error_written_after_a_keyword_call():
    with pytest.raises(tz.GradientError, match=r"argument 1 of squares .* was written in place after the call"):
        tz.gradient(keyword_call_then_write, torch.ones(2))


def rebinds_the_result(x):
    y = x * 3.0
    s = y * 2.0
    y = scale_and_return(y)
    return (y * s).sum()


def test_callee_writes_argument_and_the_caller_binds_the_result():
    x = torch.linspace(-1.0, 1.0, 4, dtype=torch.float64)
    g, = tz.gradient(rebinds_the_result, x)
    xr = x.clone().requires_grad_(True)
    ref, = torch.autograd.grad(rebinds_the_result(xr), xr)
    torch.testing.assert_close(g, ref)


def cat_then_shrink(x):
    xs = [x * 1.0, x * 2.0]
    y = torch.cat(xs)
    xs[0] = x[:1] * 3.0   # an item replaced by a shorter tensor after the call
    return y.sum() + xs[0].sum()


def test_cat_list_item_shrunk_after_the_call():
    _matches_torch(cat_then_shrink, torch.ones(2, dtype=torch.float64))


def test_gradient_error_custom_rule_count():
    def h(a, b):
        return a * b

    @tz.adjoint(h)
    def rule(a, b):
        return h(a, b), lambda dy: (dy * b,)
    try:
        with pytest.raises(tz.GradientError, match=r"custom rule for .*h' returned 1 gradient for 2 arguments; "
                                                   r"it must return a tuple with one gradient per argument") as e:
            tz.gradient(lambda a, b: h(a, b), 2.0, 3.0)
        assert f"{THIS}:{_line(rule, '@tz.adjoint(h)')}" in str(e.value)
    finally:
        tz.ad.dispatch.USER_RULES.pop(h, None)


def test_gradcheck_refuses_params():
    W = torch.ones(2)
    with pytest.raises(tz.GradientError, match="not Params"):
        tz.gradcheck(lambda: W.sum(), tz.Params([W]))


# ---------------------------------------------------------------- TorchZygoteError

def test_jacobian_of_non_array_output():
    with pytest.raises(tz.TorchZygoteError, match=r"jacobian needs numbers, tensors or numpy arrays, got str"):
        tz.jacobian(lambda x: "x", 1.0)


# ---------------------------------------------------------------- user exceptions get a note

def user_divides(x, d):
    return x / d


def test_user_exception_note():
    with pytest.raises(ZeroDivisionError) as e:
        tz.gradient(lambda x: user_divides(x, 0.0), 1.0)
    notes = "".join(getattr(e.value, "__notes__", []))
    assert "torchzygote: raised while differentiating, in your code at" in notes
    assert f"line {_line(user_divides, 'return x / d')}" in notes


def cat_then_replace(x):
    xs = [x * 1.0, x * 2.0]
    y = torch.cat(xs)
    xs[0] = torch.cat([x, x]) * 5.0   # replaced by a tensor of another size after the call
    return (y * torch.arange(4.0)).sum()


def cat_called_at_run_time(x, cat):
    xs = [x * 1.0, x * 2.0]
    y = cat(xs)               # the callee is known at run time only
    xs[0] = torch.cat([x, x]) * 5.0
    return (y * torch.arange(4.0, dtype=x.dtype)).sum() + xs[0].sum()


def cat_by_keyword(x):
    xs = [x * 1.0, x * 2.0]
    y = torch.cat(tensors=xs)
    xs[1] = x[:1] * 3.0
    return (y * torch.arange(4.0, dtype=x.dtype)).sum() + xs[1].sum()


def multi_dot_then_replace(a, b):
    ms = [a, b]
    y = np.linalg.multi_dot(ms)   # its pullback reads the matrices' values
    ms[0] = a * 3.0
    return y.sum() + ms[0].sum()


@pytest.mark.parametrize("f", [cat_then_replace, cat_by_keyword], ids=lambda f: f.__name__)
def test_cat_list_item_replaced_after_the_call(f):
    """The list's items are read as they are at the call (``ops.items_of``); before, the pullback
    split by the items as they were when it ran (silently wrong: a gradient of shape (4,))."""
    _matches_torch(f, torch.ones(2, dtype=torch.float64))


def test_cat_called_at_run_time_list_item_replaced():
    x = torch.ones(2, dtype=torch.float64)
    g, _ = tz.gradient(cat_called_at_run_time, x, torch.cat)
    xr = x.clone().requires_grad_(True)
    torch.testing.assert_close(g, torch.autograd.grad(cat_called_at_run_time(xr, torch.cat), xr)[0])


def test_multi_dot_list_item_replaced_after_the_call():
    a, b = np.arange(4.0).reshape(2, 2), np.linspace(0.5, 2.0, 4).reshape(2, 2)
    ga, gb = tz.gradient(multi_dot_then_replace, a, b)
    at, bt = (torch.tensor(m, requires_grad=True) for m in (a, b))
    ra, rb = torch.autograd.grad((at @ bt).sum() + (at * 3.0).sum(), (at, bt))
    np.testing.assert_allclose(ga, ra.numpy())
    np.testing.assert_allclose(gb, rb.numpy())   # was b's gradient through the replaced matrix


def _matches_torch(f, x):
    g, = tz.gradient(f, x)
    xr = x.clone().requires_grad_(True)
    torch.testing.assert_close(g, torch.autograd.grad(f(xr), xr)[0])
