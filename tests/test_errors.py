"""Errors: unsupported constructs name themselves and the user's file:line; a missing rule
names the function and suggests adjoint; user exceptions propagate with user tracebacks."""
import asyncio  # noqa: F401
import math
import os
import traceback

import pytest

import torchzygote as tz

THIS = os.path.basename(__file__)


def _line_of(fn, needle):
    import inspect
    lines, start = inspect.getsourcelines(fn)
    for i, l in enumerate(lines):
        if needle in l:
            return start + i
    raise AssertionError(needle)


def uses_yield(x):
    def gen():
        yield x
    for v in gen():
        x = v
    return x


def uses_yield_direct(x):
    yield x * 2


def uses_async(x):
    async def co():
        return x
    return x


def uses_await_closure(x):
    return x


class _Ctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def uses_with(x):
    with _Ctx():
        y = x * 2
    return y


G = 0


async def uses_async_def(x):
    return x


def uses_global_assign(x):
    global G
    G = 1
    return x * 2


@pytest.mark.parametrize("fn,needle,words", [
    (uses_yield, "yield x", ("yield",)),
    (uses_async_def, "async def", ("async",)),
])
def test_lift_error_names_construct_and_location(fn, needle, words):
    with pytest.raises(tz.LiftError) as e:
        tz.gradient(fn, 1.0)
    msg = str(e.value)
    for w in words:
        assert w in msg.lower(), msg
    line = _line_of(fn, needle)
    assert f"{THIS}:{line}" in msg, msg


def test_lift_error_generator_function():
    with pytest.raises(tz.LiftError) as e:
        tz.gradient(uses_yield_direct, 1.0)
    msg = str(e.value)
    assert "yield" in msg.lower() or "generator" in msg.lower(), msg
    assert THIS in msg, msg


def test_lift_error_async():
    with pytest.raises(tz.LiftError) as e:
        tz.gradient(uses_async, 1.0)
    msg = str(e.value)
    assert "async" in msg.lower() or "await" in msg.lower(), msg
    assert f"{THIS}:{_line_of(uses_async, 'async def')}" in msg, msg


def test_lift_error_is_torchzygote_error():
    assert issubclass(tz.LiftError, tz.TorchZygoteError)
    assert issubclass(tz.NoRuleError, tz.TorchZygoteError)


def test_no_rule_error_names_function_and_suggests_adjoint():
    import zlib

    def f(x):
        return zlib.crc32(b"abc") * x + math.gamma(x)

    # math.gamma has no rule: C function, no source
    with pytest.raises(tz.NoRuleError) as e:
        tz.gradient(f, 1.5)
    msg = str(e.value)
    assert "gamma" in msg
    assert "adjoint" in msg


def test_no_rule_error_for_c_function_through_dict():
    fs = {"g": math.lgamma}
    with pytest.raises(tz.NoRuleError) as e:
        tz.gradient(lambda x: fs["g"](x) * 2, 2.5)
    assert "lgamma" in str(e.value) and "adjoint" in str(e.value)


def test_no_rule_not_raised_when_no_gradient_flows():
    # a C function whose result does not reach the output is fine
    def f(x):
        math.gamma(x)
        return x * 2
    assert tz.gradient(f, 1.5) == (2.0,)


def divide(x, d):
    return x / d  # the user's line that raises


def user_code_raises(x):
    return divide(x, 0.0) + x


def test_user_exception_propagates_with_user_traceback():
    with pytest.raises(ZeroDivisionError) as e:
        tz.gradient(user_code_raises, 1.0)
    tb = "".join(traceback.format_exception(e.type, e.value, e.tb))
    line = _line_of(divide, "the user's line that raises")
    assert f'{THIS}", line {line}' in tb, tb


def user_raises_value_error(x):
    if x > 0:
        raise ValueError("bad x")
    return x


def test_user_raise_propagates_same_type_and_message():
    with pytest.raises(ValueError, match="bad x") as e:
        tz.gradient(user_raises_value_error, 1.0)
    tb = "".join(traceback.format_exception(e.type, e.value, e.tb))
    assert f'{THIS}", line {_line_of(user_raises_value_error, "raise ValueError")}' in tb, tb


def test_exception_in_pullback_of_custom_adjoint_propagates():
    def h(x):
        return x

    @tz.adjoint(h)
    def _(x):
        def back(dy):
            raise KeyError("from pullback")
        return h(x), back

    try:
        with pytest.raises(KeyError):
            tz.gradient(lambda x: h(x) * 2, 1.0)
    finally:
        tz.ad.dispatch.USER_RULES.pop(h, None)


def test_caught_exception_after_partial_try_body_is_a_clear_error():
    """A handler that uses values the try body computed before raising: the forward is
    Python's, and the gradient is refused with the location (Zygote does the same)."""
    from tests.corpus_core import try_except_caught, try_except_else_finally_raised
    for f, args in ((try_except_caught, (0.7,)), (try_except_else_finally_raised, (0.7, 1.9))):
        y, back = tz.pullback(f, *args)
        assert y == f(*args)
        with pytest.raises(tz.GradientError, match=r"(?s)try.*raised.*corpus_core.py:\d+"):
            back(1.0)


def test_with_block_is_differentiated_and_exits():
    assert tz.gradient(uses_with, 1.0) == (2.0,)


def test_global_assignment_is_differentiated_and_leaves_state():
    global G
    G = 0
    assert tz.gradient(uses_global_assign, 1.0) == (2.0,)
    assert G == 1


def _stores_then_raises(x):
    s = []
    try:
        s.append(x * 2)
        raise ValueError("v")
    except ValueError:
        pass
    return s[0] * x


def _stores_in_finally_while_raising(x):
    s = []
    try:
        try:
            raise ValueError("v")
        finally:
            s.append(x * 2)
    except ValueError:
        pass
    return s[0] * x


class _Box:
    def __init__(self):
        self.items = []

    def put_then_fail(self, v):
        self.items.append(v)
        raise KeyError("k")


def _a_callee_stores_then_raises(x):
    b = _Box()
    try:
        b.put_then_fail(x * 2)
    except KeyError:
        pass
    return b.items[0] * x


def _stores_into_a_list_read_in_the_body(x):
    b = _Box()
    try:
        items = b.items
        items.append(x * 2)
        raise ValueError("v")
    except ValueError:
        pass
    return b.items[0] * x


@pytest.mark.parametrize("f", [_stores_then_raises, _stores_in_finally_while_raising, _a_callee_stores_then_raises,
                               _stores_into_a_list_read_in_the_body], ids=lambda f: f.__name__)
def test_a_store_in_a_try_body_that_raised_is_refused(f):
    """The handler's pullback runs in place of the body's: the stored value's gradient (2x of 4x)
    was lost without an error."""
    with pytest.raises(tz.GradientError, match="stored a value that carries a gradient") as e:
        tz.gradient(f, 2.0)
    assert "test_errors.py" in str(e.value)


def _stores_then_raises_through_finally(x):
    s = []
    try:
        s.append(x * 2)
        raise ValueError("user")
    finally:
        pass


def test_a_finally_block_lets_the_users_exception_through():
    """Its handler raises again: the exception is the user's, not a refusal of the store."""
    with pytest.raises(ValueError, match="user"):
        tz.gradient(_stores_then_raises_through_finally, 2.0)
