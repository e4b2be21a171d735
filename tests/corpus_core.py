"""A corpus of small Python programs for the core transform.

Each program is a plain module-level function ``f(x)`` or ``f(x, y)`` of floats
(complex for the ``cmath`` ones) returning a real number; ``CORPUS`` lists
``(fn, inputs)`` with a few points of its input domain, chosen away from the
places where the program is not differentiable (branch switches, kinks).
test_corpus_core.py checks torchzygote's gradient against central finite
differences at each point.
"""
import cmath
import contextlib
import functools
import math

CORPUS = []

X1 = [(0.7,), (1.3,), (2.1,)]
X2 = [(0.7, 1.9), (1.3, 0.4), (2.1, 1.1)]
UNIT = [(0.2,), (-0.35,), (0.6,)]          # inside (-1, 1)
POS = [(0.4,), (1.7,), (3.2,)]
Z1 = [(0.6 + 0.8j,), (-1.2 + 0.3j,), (0.4 - 1.1j,)]
Z2 = [(0.6 + 0.8j, 1.1 - 0.2j), (-1.2 + 0.3j, 0.5 + 0.5j), (0.4 - 1.1j, -0.7 + 0.9j)]


def case(*inputs):
    """Register a program with the input points it is checked at (default X1/X2 by arity)."""
    def reg(fn):
        pts = inputs
        if not pts:
            n = fn.__code__.co_argcount
            pts = X1 if n == 1 else X2
        elif len(pts) == 1 and isinstance(pts[0], list):
            pts = pts[0]
        CORPUS.append((fn, list(pts)))
        return fn
    return reg


# ================================================================ assignment, unpacking

@case()
def assign_chain(x):
    a = b = x * 2
    return a * b


@case()
def assign_tuple(x, y):
    a, b = x, y
    return a * a + 3 * b


@case()
def assign_swap(x, y):
    x, y = y, x
    return x - 2 * y


@case()
def assign_nested_tuple(x, y):
    (a, b), c = (x, y), x * y
    return a * b + c


@case()
def assign_starred_head(x, y):
    a, *rest = x, y, x * y
    return a * sum(rest)


@case()
def assign_starred_tail(x, y):
    *init, last = [x, y, x + y]
    return init[0] * init[1] * last


@case()
def assign_starred_middle(x, y):
    first, *mid, last = (x, x * y, y * y, y)
    return first * mid[0] + mid[1] * last


@case()
def assign_list_target(x, y):
    [a, b] = [math.sin(x), math.cos(y)]
    return a * b


@case()
def assign_unpack_from_list_var(x, y):
    lst = [x * 2, y * 3]
    p, q = lst
    return p * q


@case()
def assign_annotated(x):
    a: float = x * x
    b: float
    b = a + x
    return b


@case()
def assign_reuse_name(x):
    t = x
    t = t * t
    t = t * x
    return t


@case()
def assign_subscript_tuple_index(x, y):
    t = (x, y, x * y)
    return t[0] + t[-1] * t[1]


@case()
def assign_slice(x, y):
    t = (x, y, x * y, y * y)
    u = t[1:3]
    return u[0] * u[1] + sum(t[::2])


# ================================================================ augmented assignment

@case()
def aug_all_ops(x, y):
    r = x
    r += y
    r *= x
    r -= y * y
    r /= (1 + x * x)
    r **= 2
    return r


@case()
def aug_list_item(x, y):
    a = [x, y]
    a[0] += y
    a[1] *= x
    return a[0] * a[1]


@case()
def aug_dict_item(x, y):
    d = {"a": x}
    d["a"] *= y
    d["a"] += x
    return d["a"]


class _Box:
    def __init__(self, v):
        self.v = v


@case()
def aug_attr_object(x, y):
    b = _Box(x)
    b.v -= y
    b.v *= b.v
    return b.v


@case()
def aug_mod_floordiv(x, y):
    r = x * 7.3
    r %= 2.5
    q = x * 7.3
    q //= 2.5
    return r * y + q


# ================================================================ if / elif / else

@case((0.3,), (1.5,), (-2.0,))
def if_else(x):
    if x > 1:
        return x * x
    else:
        return -x


@case((-2.0,), (0.5,), (1.5,), (3.0,))
def if_elif_else(x):
    if x < 0:
        y = x * 3
    elif x < 1:
        y = math.sin(x)
    elif x < 2:
        y = x ** 3
    else:
        y = math.exp(x)
    return y * x


@case((0.5, 1.0), (1.5, 0.2), (2.5, 3.0))
def if_no_else(x, y):
    r = x
    if x > y:
        r = r * y
    return r + y


@case((0.5, 1.0), (1.5, 0.2), (-2.5, 3.0))
def if_nested(x, y):
    if x > 0:
        if y > 0.5:
            r = x * y
        else:
            r = x + y
    else:
        r = x * x * y
    return r


@case()
def if_int_counter(x):
    n = 3
    if n == 3:
        x = x * 2
    return x * x


@case((0.5, 1.0), (1.5, 0.2))
def if_assign_one_branch_only(x, y):
    if x < y:
        z = x * y
        w = z + 1
    else:
        z = y
        w = x
    return z * w


@case((0.5,), (1.5,))
def if_return_early(x):
    if x > 1:
        return x ** 3
    y = x * 2
    return y * y


@case((0.5, 2.0), (1.5, 0.1))
def if_on_computed(x, y):
    z = x * y
    if math.sin(z) > 0.5:
        return z * z
    return z


# ================================================================ while loops

@case((0.7, 3.0), (1.3, 1.5))
def while_count(x, y):
    r = 1.0
    n = 4
    while n > 0:
        r = r * x + y
        n -= 1
    return r


@case((0.7,), (1.3,), (2.9,))
def while_on_value(x):
    r = x
    while r < 10:
        r = r * 1.5 + x
    return r


@case()
def while_break(x):
    r = x
    i = 0
    while True:
        r = r * x + 0.5
        i += 1
        if i >= 3:
            break
    return r


@case()
def while_continue(x):
    r = 0.0
    i = 0
    while i < 6:
        i += 1
        if i % 2 == 0:
            continue
        r = r + x ** i
    return r


@case()
def while_else(x):
    r = x
    i = 0
    while i < 3:
        r = r * x
        i += 1
    else:
        r = r + 10 * x
    return r


@case()
def while_else_broken(x):
    r = x
    i = 0
    while i < 5:
        r = r * x
        i += 1
        if i == 2:
            break
    else:
        r = r * 1000
    return r


@case()
def while_return_inside(x):
    r = x
    i = 0
    while i < 10:
        r = r * x
        if i == 3:
            return r + x
        i += 1
    return -r


@case()
def while_zero_trips(x):
    r = x * x
    n = 0
    while n > 0:
        r = r * 100
        n -= 1
    return r


@case()
def while_nested(x, y):
    r = 0.0
    i = 0
    while i < 3:
        j = 0
        while j < 2:
            r = r + x * i + y * j * x
            j += 1
        i += 1
    return r


# ================================================================ for loops

@case()
def for_range(x):
    r = 0.0
    for i in range(5):
        r = r + x ** i
    return r


@case()
def for_range_start_step(x):
    r = 1.0
    for i in range(2, 9, 3):
        r = r * (x + i)
    return r


@case()
def for_over_list(x, y):
    r = 0.0
    for v in [x, y, x * y]:
        r = r + v * v
    return r


@case()
def for_over_tuple(x, y):
    r = 1.0
    for v in (x, y, 2.0):
        r = r * v
    return r


@case()
def for_over_list_variable(x, y):
    vs = [math.sin(x), math.cos(y), x + y]
    r = 0.0
    for v in vs:
        r = r + v * x
    return r


@case()
def for_tuple_unpack_target(x, y):
    r = 0.0
    for a, b in [(x, y), (y, x), (x, x)]:
        r = r + a * b
    return r


@case()
def for_enumerate(x, y):
    r = 0.0
    for i, v in enumerate([x, y, x * y]):
        r = r + i * v
    return r


@case()
def for_zip(x, y):
    r = 0.0
    for a, b in zip([x, y, 1.0], [y, 2.0, x]):
        r = r + a * b
    return r


@case()
def for_reversed(x, y):
    r = 0.0
    for v in reversed([x, y, x * y]):
        r = r * 0.5 + v
    return r


@case()
def for_dict_keys(x, y):
    d = {"a": x, "b": y}
    r = 0.0
    for k in d:
        r = r + d[k] * d[k]
    return r


@case()
def for_dict_items(x, y):
    d = {"a": x, "b": y}
    r = 0.0
    for k, v in d.items():
        r = r + v * len(k)
    return r


@case()
def for_dict_values(x, y):
    d = {"a": x, "b": y * x}
    r = 1.0
    for v in d.values():
        r = r * v
    return r


@case()
def for_string_iterable(x):
    r = x
    for ch in "abc":
        if ch == "b":
            r = r * x
        else:
            r = r + 1
    return r


@case()
def for_generator_iterable(x):
    r = 0.0
    for v in (x * i for i in range(4)):
        r = r + v * v
    return r


@case()
def for_map_iterable(x, y):
    r = 0.0
    for v in map(math.sin, [x, y]):
        r = r + v
    return r


@case()
def for_break(x):
    r = 0.0
    for i in range(10):
        if i == 4:
            break
        r = r + x * i
    return r


@case((0.7,), (1.3,), (2.1,))
def for_break_on_value(x):
    r = x
    for i in range(20):
        r = r * 1.3
        if r > 5:
            break
    return r


@case()
def for_continue(x):
    r = 0.0
    for i in range(6):
        if i % 3 == 0:
            continue
        r = r + math.sin(x * i)
    return r


@case()
def for_else(x):
    r = x
    for i in range(3):
        r = r * x
    else:
        r = r + 1
    return r


@case()
def for_else_with_break(x):
    r = x
    for i in range(3):
        r = r * x
        if i == 1:
            break
    else:
        r = r * 100
    return r


@case()
def for_return_inside(x):
    for i in range(10):
        x = x * 1.1
        if i == 2:
            return x * x
    return x


@case()
def for_return_in_nested(x, y):
    for i in range(3):
        for j in range(3):
            if i * j == 2:
                return x * i + y * j
    return x


@case()
def for_nested(x, y):
    r = 0.0
    for i in range(3):
        for j in range(i + 1):
            r = r + x ** i * y ** j
    return r


@case()
def for_nested_break_inner(x, y):
    r = 0.0
    for i in range(3):
        for j in range(5):
            if j > i:
                break
            r = r + x * y * (i + j)
    return r


@case()
def for_loop_carries_two(x, y):
    a, b = x, y
    for _ in range(4):
        a, b = b, a * 0.5 + b
    return a * b


@case()
def for_zero_trips(x):
    r = x * 3
    for _ in range(0):
        r = r * 1000
    return r


@case()
def for_loop_var_after_loop(x):
    v = 0.0
    for v in [x, x * 2, x * 3]:
        pass
    return v * v


@case()
def for_accumulate_list(x):
    out = []
    for i in range(4):
        out.append(x * i + 1)
    return out[1] * out[2] + out[3]


@case()
def for_list_mutation_index(x, y):
    a = [0.0, 0.0, 0.0]
    for i in range(3):
        a[i] = x * i + y
    return a[0] * a[1] * a[2] + a[1]


@case()
def for_while_mixed(x):
    r = x
    for i in range(3):
        k = 0
        while k < i:
            r = r * x
            k += 1
    return r


@case()
def for_mandel(x, y):
    # the talk's mandel loop on a real pair, differentiating the final iterate
    zr, zi = x * 0.3, y * 0.3
    cr, ci = zr, zi
    for n in range(4):
        if zr * zr + zi * zi > 4:
            return zr
        zr, zi = zr * zr - zi * zi + cr, 2 * zr * zi + ci
    return zr + zi


# ================================================================ boolean operators, comparisons, conditional expressions

@case((0.5, 1.5), (1.5, 0.5), (2.5, 2.7))
def bool_and(x, y):
    if x > 1 and y > 1:
        return x * y
    return x + y


@case((0.5, 1.5), (1.5, 0.5), (0.2, 0.1))
def bool_or(x, y):
    if x > 1 or y > 1:
        return x * y
    return x - y


@case((0.5,), (1.5,))
def bool_not(x):
    if not x > 1:
        return x * 3
    return x * x


@case((0.5, 0.7), (1.5, 0.5))
def bool_and_value(x, y):
    # `and`/`or` return one of their operands
    return (x > 1 and x * y) or y * y


@case((0.5, 0.7), (1.5, 0.5))
def bool_or_value(x, y):
    z = (x < 1 or x * 2) + y
    t = (x > 1 and y) or x
    return z * t


@case((0.5,), (1.5,), (2.5,))
def chained_compare(x):
    if 1 < x < 2:
        return x * x
    return x


@case((0.5, 1.0), (1.5, 1.0), (3.5, 3.8), (2.5, 4.5))
def chained_compare_three(x, y):
    if 0 <= x <= y < 4:
        return x * y
    return y - x


@case((0.5,), (1.5,))
def cond_expr(x):
    return x * x if x > 1 else math.sin(x)


@case((0.5, 1.0), (1.5, 0.2))
def cond_expr_nested(x, y):
    return x * y if x < y else (x + y if x > 1 else x - y)


@case()
def cond_expr_in_loop(x):
    r = 0.0
    for i in range(4):
        r = r + (x * i if i % 2 else -x)
    return r


@case((0.5, 1.0), (1.5, 0.2))
def compare_result_used_as_number(x, y):
    return x * (x > y) + y * (y >= x)


# ================================================================ assert, raise (untaken), pass

@case()
def assert_true(x):
    assert x > 0, "positive"
    assert x == x
    return x * x


@case()
def raise_untaken(x):
    if x < -100:
        raise ValueError("too small")
    return math.exp(x)


@case()
def raise_untaken_in_loop(x):
    r = x
    for i in range(3):
        if r > 1e9:
            raise OverflowError(f"overflow at {i}")
        r = r * x
    return r


@case()
def pass_statement(x):
    if x > 100:
        pass
    else:
        pass
    for _ in range(2):
        pass
    return x * 2


# ================================================================ comprehensions, generator expressions

@case()
def listcomp(x, y):
    vs = [x * i + y for i in range(4)]
    return vs[0] * vs[3] + vs[1]


@case()
def listcomp_filter(x, y):
    vs = [x * i for i in range(6) if i % 2 == 1]
    return vs[0] + vs[1] * vs[2] * y


@case()
def listcomp_nested(x, y):
    vs = [a * b for a in (x, y) for b in (x, 2.0)]
    return vs[0] + vs[1] * vs[2] + vs[3]


@case()
def listcomp_over_values(x, y):
    vs = [math.sin(v) for v in [x, y, x * y]]
    return vs[0] * vs[1] + vs[2]


@case()
def dictcomp(x, y):
    d = {k: x * k + y for k in range(3)}
    return d[0] * d[2] + d[1]


@case()
def dictcomp_from_items(x, y):
    src = {"a": x, "b": y}
    d = {k: v * v for k, v in src.items()}
    return d["a"] + 3 * d["b"]


@case()
def setcomp_len(x):
    s = {i % 3 for i in range(7)}
    return x * len(s)


@case()
def genexp_sum(x, y):
    return sum(x ** i * y for i in range(4))


@case((0.7, 1.9), (1.3, 0.4), (2.1, 1.1))
def genexp_max(x, y):
    return max(v * v for v in (x, y, x * y))


@case((0.7, 1.9), (1.3, 0.4), (2.1, 1.1))
def genexp_min(x, y):
    return min(abs(v - 1.0) + v for v in (x, y, x * y))


@case()
def genexp_sum_filter(x):
    return sum(x * i for i in range(10) if i % 3 == 0)


@case()
def comp_captures_local(x, y):
    k = x * y
    return sum([k * i for i in range(3)])


@case()
def comp_walrus(x):
    vals = [z for i in range(4) if (z := x * i) > 0]
    return sum(vals) + z


# ================================================================ calls: keywords, defaults, *args, **kwargs

def _kw(a, b=2.0, *, c=3.0):
    return a * b + c * c


def _varargs(*xs):
    r = 1.0
    for v in xs:
        r = r * v
    return r


def _varkw(**kw):
    return kw["a"] * kw["b"] + kw.get("c", 1.0)


def _both(a, *rest, scale=1.0, **kw):
    return scale * (a + sum(rest)) + sum(kw.values())


@case()
def call_keywords(x, y):
    return _kw(a=x, b=y, c=x)


@case()
def call_keyword_order(x, y):
    return _kw(x, c=y, b=x)


@case()
def call_defaults(x):
    return _kw(x) + _kw(x, x)


@case()
def call_kwonly_default(x, y):
    return _kw(x, y)


@case()
def call_varargs(x, y):
    return _varargs(x, y, x * y)


@case()
def call_star_args(x, y):
    args = (x, y)
    return _varargs(*args) + _varargs(*[x, y], x)


@case()
def call_varkw(x, y):
    return _varkw(a=x, b=y)


@case()
def call_star_star(x, y):
    kw = {"a": x, "b": y, "c": x * y}
    return _varkw(**kw)


@case()
def call_both_sides(x, y):
    return _both(x, y, x, scale=y, extra=x * y) + _both(*(x, y), **{"scale": x})


@case()
def call_lambda_defaults(x, y):
    f = lambda a, b=y: a * b  # noqa: E731
    return f(x) + f(x, x)


@case()
def call_star_mixed(x, y):
    rest = [y, 2.0]
    return _varargs(x, *rest, y)


@case()
def call_def_with_default_from_local(x, y):
    def g(a, b=x * y):
        return a + b * b
    return g(x) + g(y, 1.0)


@case()
def call_functools_partial(x, y):
    g = functools.partial(_kw, b=y)
    return g(x)


@case()
def call_functools_reduce(x, y):
    return functools.reduce(lambda a, b: a * b + 1, [x, y, x])


# ================================================================ walrus

@case()
def walrus_simple(x):
    return (y := x * x) * y


@case((0.5,), (1.5,))
def walrus_in_if(x):
    if (z := x * 3) > 2:
        return z * z
    return z


@case()
def walrus_in_while(x):
    r = x
    i = 0
    while (i := i + 1) < 4:
        r = r * x
    return r


@case((1.3,), (1.7,), (2.1,))
def walrus_in_while_test_renews(x):
    # the trip whose test fails keeps r: t's value may not renew r in place
    r = x
    while (t := r * x) < 10:
        r = t
    return r


# ================================================================ nested def, lambda, closures

@case()
def nested_def(x, y):
    def inner(a):
        return a * a + y
    return inner(x) * inner(y)


@case()
def nested_lambda_capture(x, y):
    k = x * 2
    g = lambda t: t * k + y  # noqa: E731
    return g(x) + g(y)


def _make_scaler(k):
    def scale(v):
        return k * v
    return scale


@case()
def closure_returned(x, y):
    s = _make_scaler(x)
    return s(y) * s(x)


@case()
def closure_made_locally(x, y):
    def make(a):
        return lambda t: a * t * t
    f = make(y)
    return f(x)


@case()
def closure_in_loop(x):
    fs = []
    for i in range(3):
        fs.append(lambda t, i=i: t * i)
    return fs[0](x) + fs[1](x) * fs[2](x)


@case()
def closure_nonlocal(x):
    total = 0.0

    def add(v):
        nonlocal total
        total = total + v
    add(x)
    add(x * x)
    return total * x


@case()
def closure_captures_loop_state(x, y):
    r = x

    def step(v):
        return v * y + x
    for _ in range(3):
        r = step(r)
    return r


@case()
def closure_called_via_map(x, y):
    return sum(map(lambda v: v * y, [x, x * x]))


@case()
def higher_order(x, y):
    def apply_twice(f, v):
        return f(f(v))
    return apply_twice(lambda t: t * y + 1, x)


@case()
def compose_functions(x):
    def compose(f, g):
        return lambda v: f(g(v))
    h = compose(math.sin, math.exp)
    return h(x)


# ================================================================ globals

G_SCALE = 2.5
G_TABLE = {"w": 1.5, "b": -0.25}
G_FNS = [math.sin, math.cos]


@case()
def global_number(x):
    return G_SCALE * x * x


@case()
def global_dict(x):
    return G_TABLE["w"] * x + G_TABLE["b"]


@case()
def global_function_list(x):
    return G_FNS[0](x) * G_FNS[1](x)


@case()
def global_function_call(x, y):
    return _kw(x, y) + poly3(x)


def poly3(x):
    return 3 * x ** 2 + 2 * x + 1


# ================================================================ recursion

def _fact_pow(x, n):
    if n == 0:
        return 1.0
    return x * _fact_pow(x, n - 1)


def _is_even_pow(x, n):
    if n == 0:
        return 1.0
    return x * _is_odd_pow(x, n - 1)


def _is_odd_pow(x, n):
    if n == 0:
        return 2.0
    return math.sin(x) * _is_even_pow(x, n - 1)


def _fib(x, n):
    if n < 2:
        return x
    return _fib(x, n - 1) + _fib(x, n - 2) * x


@case()
def recursion_pow(x):
    return _fact_pow(x, 5)


@case()
def recursion_mutual(x):
    return _is_even_pow(x, 4) + _is_odd_pow(x, 3)


@case()
def recursion_tree(x):
    return _fib(x, 5)


@case()
def recursion_local(x, y):
    def go(v, n):
        return v if n == 0 else go(v * y + x, n - 1)
    return go(x, 3)


# ================================================================ with

class _Holding:
    """A context manager whose ``__enter__`` gives what it holds (``with Holding(v) as k``)."""

    def __init__(self, v):
        self.v = v

    def __enter__(self):
        return self.v * 1.5

    def __exit__(self, *exc):
        return False


@case()
def with_enter_value(x):
    # what __enter__ returns carries the gradient of what the manager holds
    with _Holding(x * 2) as k:
        y = k * x
    return y


@case()
def with_nullcontext_value(x, y):
    with contextlib.nullcontext(x * y) as k:
        r = k + x
    return r


class _Recording:
    """``__exit__`` computes with what the manager holds (it is differentiated too)."""

    def __init__(self, v):
        self.v = v
        self.out = 0.0

    def __enter__(self):
        self.saved = self.v * 2
        return self

    def __exit__(self, *exc):
        self.out = self.saved * self.v
        return False


@case()
def with_exit_computes(x):
    m = _Recording(x)
    with m:
        pass
    return m.out + x


@case()
def with_suppressed_keeps_the_values_before(x, y):
    # a manager that suppresses the exception: what follows sees what the body assigned before it
    r = y * 2
    with contextlib.suppress(KeyError):
        z = x * 3
        {}["missing"]
    return r + len(str(z > 0))


@contextlib.contextmanager
def _constant_setting():
    yield 2.5


@case()
def with_contextmanager_yielding_a_constant(x):
    with _constant_setting() as c:
        r = x * c
    return r


# ================================================================ try / except / else / finally

@case()
def try_no_exception(x):
    try:
        r = x * x
    except ValueError:
        r = -1.0
    return r * x


def try_except_caught(x):
    try:
        r = x * 2
        raise ValueError("boom")
    except ValueError:
        r = r * x
    return r


@case()
def try_except_from_call(x):
    try:
        r = math.log(-x)
    except ValueError:
        r = x * x
    return r


@case()
def try_zero_division(x):
    d = 0.0
    try:
        r = x / d
    except ZeroDivisionError:
        r = x ** 3
    return r


@case()
def try_else(x):
    try:
        r = x * 2
    except KeyError:
        r = 0.0
    else:
        r = r * x
    return r


@case()
def try_else_after_untaken_return(x):
    # the body may leave (return, continue): where it runs to its end, ``else`` runs
    r = x
    try:
        if x > 100:
            return x
        r = r * x
    except ValueError:
        pass
    else:
        r = r + x * x
    return r


@case()
def try_else_in_loop_with_continue(x):
    r = x
    for i in range(4):
        try:
            if i == 1:
                continue
            r = r * x
        except ArithmeticError:
            pass
        else:
            r = r + i * x
    return r


@case()
def try_finally(x):
    r = x
    try:
        r = r * x
    finally:
        r = r + x
    return r


def try_except_else_finally_raised(x, y):
    r = x
    try:
        r = r * y
        {}["missing"]
    except KeyError as e:
        r = r + len(str(e)) * x
    else:
        r = r * 1000
    finally:
        r = r * y
    return r


@case()
def try_in_loop(x):
    r = 0.0
    for i in range(4):
        try:
            if i == 2:
                raise IndexError
            r = r + x * i
        except IndexError:
            r = r * x
    return r


@case()
def try_finally_on_raise(x):   # the finally block runs as the exception leaves (it was skipped)
    s = []
    try:
        try:
            raise ValueError("v")
        finally:
            s.append(1)
    except ValueError:
        pass
    return x * x * len(s)


@case()
def try_finally_breaks_while_raising(x):   # the finally block runs once, and its break ends the exception
    s = x
    for _ in range(3):
        try:
            raise ValueError("v")
        finally:
            s = s * x
            break
    return s


@case()
def try_store_into_a_list_made_there(x):   # the list the body made is not read after it raised
    d = {"a": 1.0}
    try:
        parts = []
        for k in ["a", "b"]:
            parts.append(d[k] * x)
        r = sum(parts)
    except KeyError:
        r = x * 5
    return r


@case()
def try_bare_reraise(x):   # a bare `raise` in a handler re-raises what it handles
    r = x * 3
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise
    except KeyError:
        r = r * x
    return r


@case()
def try_return_in_try(x):
    try:
        return x * x
    finally:
        pass


@case()
def try_except_tuple_types(x):
    try:
        r = [x][3]
    except (KeyError, IndexError):
        r = x * 5
    return r


@case()
def try_nested(x):
    try:
        try:
            r = 1 / (x - x)
        except KeyError:
            r = 0.0
    except ZeroDivisionError:
        r = math.sin(x)
    return r


# ================================================================ math: every differentiable function

@case()
def math_sin(x):
    return math.sin(x) * x


@case()
def math_cos(x):
    return math.cos(x * x)


@case(UNIT)
def math_tan(x):
    return math.tan(x)


@case(UNIT)
def math_asin(x):
    return math.asin(x)


@case(UNIT)
def math_acos(x):
    return math.acos(x)


@case()
def math_atan(x):
    return math.atan(x * x)


@case()
def math_sinh(x):
    return math.sinh(x)


@case()
def math_cosh(x):
    return math.cosh(x)


@case()
def math_tanh(x):
    return math.tanh(x)


@case(UNIT)
def math_asinh(x):
    return math.asinh(x)


@case((1.3,), (2.0,), (4.5,))
def math_acosh(x):
    return math.acosh(x)


@case(UNIT)
def math_atanh(x):
    return math.atanh(x)


@case()
def math_exp(x):
    return math.exp(x)


@case(UNIT)
def math_expm1(x):
    return math.expm1(x)


@case(POS)
def math_log(x):
    return math.log(x)


@case((0.4, 2.0), (1.7, 3.5), (3.2, 10.0))
def math_log_base(x, y):
    return math.log(x, y)


@case(POS)
def math_log2(x):
    return math.log2(x)


@case(POS)
def math_log10(x):
    return math.log10(x)


@case(UNIT)
def math_log1p(x):
    return math.log1p(x)


@case(POS)
def math_sqrt(x):
    return math.sqrt(x)


@case((0.4, 2.0), (1.7, 0.5), (3.2, -1.5))
def math_pow(x, y):
    return math.pow(x, y)


@case((-0.4,), (1.7,), (-3.2,))
def math_fabs(x):
    return math.fabs(x) * x


@case((0.4, 2.0), (-1.7, 0.5), (3.2, -1.5))
def math_atan2(x, y):
    return math.atan2(x, y)


@case(UNIT)
def math_erf(x):
    return math.erf(x)


@case(UNIT)
def math_erfc(x):
    return math.erfc(x)


@case((0.4, 2.0), (-1.7, 0.5), (3.2, -1.5))
def math_copysign(x, y):
    return math.copysign(x, y)


@case((7.4, 2.0), (-1.7, 0.5), (3.2, -1.5))
def math_fmod(x, y):
    return math.fmod(x, y)


@case()
def math_degrees(x):
    return math.degrees(x)


@case()
def math_radians(x):
    return math.radians(x)


@case()
def math_ldexp(x):
    return math.ldexp(x, 3)


@case()
def math_hypot(x, y):
    return math.hypot(x, y, x * y)


@case()
def math_dist(x, y):
    return math.dist((x, y), (1.0, -2.0))


@case()
def math_fsum(x, y):
    return math.fsum([x, y, x * y])


@case()
def math_prod(x, y):
    return math.prod([x, y, x + y])


@case()
def math_floor_ceil_piecewise(x):
    return x * math.floor(x * 3.3) + math.ceil(x) * x


@case((0.74,), (1.33,), (2.15,))
def math_trunc_constant(x):
    return x * math.trunc(x * 10)


@case()
def math_constants(x):
    return math.pi * x + math.e * x * x + math.tau


if hasattr(math, "cbrt"):
    @case((0.4,), (-1.7,), (3.2,))
    def math_cbrt(x):
        return math.cbrt(x)

if hasattr(math, "exp2"):
    @case()
    def math_exp2(x):
        return math.exp2(x)

if hasattr(math, "sumprod"):
    @case()
    def math_sumprod(x, y):
        return math.sumprod([x, y], [y, 2.0])


@case(UNIT)
def math_chain(x):
    return math.exp(math.sin(x)) * math.log1p(x * x) + math.sqrt(1 + math.tanh(x))


# ================================================================ numeric builtins

@case((-0.7,), (1.3,), (-2.1,))
def builtin_abs(x):
    return abs(x) * x + abs(x * x * x)


@case((0.7, 1.9), (1.3, 0.4), (2.1, -1.1))
def builtin_pow(x, y):
    return pow(x, y) + pow(x, 3)


@case((0.7, 1.9), (1.3, 0.4), (2.1, 1.1))
def builtin_min_max(x, y):
    return max(x, y) * min(x, y) + max(x, y, x * y) + min([x, y, 1.0])


@case((0.7, 1.9), (1.3, 0.4))
def builtin_max_key(x, y):
    return max([x, -y, x * y], key=abs)


@case()
def builtin_sum(x, y):
    return sum([x, y, x * y]) + sum((x, y), 10.0)


@case()
def builtin_round(x):
    return x * round(x * 3) + round(x, 2) * 0 + x


@case()
def builtin_float(x):
    return float(x) * x + float(3)


@case()
def builtin_int_counter(x):
    n = int(x * 2)
    return x ** n


@case()
def builtin_sorted(x, y):
    s = sorted([x * y, y, x])
    return s[0] * 1.0 + s[1] * 2.0 + s[2] * 3.0


@case()
def builtin_divmod_const(x):
    q, r = divmod(7, 3)
    return x * q + r * x * x


@case()
def builtin_len_range(x):
    return x * len(range(5)) + len([x, x]) * x


@case()
def builtin_isinstance(x):
    if isinstance(x, float):
        return x * x
    return x


@case()
def builtin_fstring(x):
    s = f"{x:.3f} and {x!r}"
    return x * len(s) * 0 + x * 2


# ================================================================ containers as values

@case()
def container_dict_mutation(x, y):
    d = {}
    d["x"] = x
    d["y"] = d["x"] * y
    return d["x"] * d["y"]


@case()
def container_dict_overwrite(x, y):
    d = {"k": x}
    d["k"] = y * y
    return d["k"] * x


@case()
def container_list_pop(x, y):
    a = [x, y, x * y]
    last = a.pop()
    return last * a[0] + a[-1]


@case()
def container_list_insert_extend(x, y):
    a = [x]
    a.insert(0, y)
    a.extend([x * y, 2.0])
    return a[0] * a[1] + a[2] * a[3]


@case()
def container_dict_get(x, y):
    d = {"a": x}
    return d.get("a", 0.0) * d.get("b", y)


@case()
def container_list_copy_alias(x, y):
    a = [x, y]
    b = a
    b[0] = b[0] * y
    c = list(a)
    return a[0] * c[1]


@case()
def container_nested(x, y):
    d = {"p": [x, y], "q": (x * y, {"r": y})}
    return d["p"][1] * d["q"][0] + d["q"][1]["r"]


@case()
def container_tuple_concat(x, y):
    t = (x,) + (y, x * y)
    return t[0] * t[2] + t[1]


@case()
def container_list_concat_repeat(x, y):
    a = [x] + [y]
    return a[0] * a[1] + sum(a)


@case()
def container_del(x, y):
    a = [x, y, x * y]
    del a[0]
    return a[0] * a[1]


@case()
def container_object_attrs(x, y):
    b = _Box(x)
    b.w = y
    return b.v * b.w + b.v


@case()
def container_method_call(x, y):
    p = _Point(x, y)
    return p.norm2() + p.scaled(y).x


class _Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm2(self):
        return self.x * self.x + self.y * self.y

    def scaled(self, k):
        return _Point(self.x * k, self.y * k)


# ================================================================ cmath on complex inputs (real outputs)

@case(Z1)
def c_abs2(z):
    # the convention: gradient of |z|^2 is 2z
    return abs(z) ** 2


@case(Z1)
def c_abs(z):
    return abs(z)


@case(Z1)
def c_real_imag(z):
    return z.real * z.imag + z.real


@case(Z1)
def c_conj_product(z):
    return (z * z.conjugate()).real


@case(Z2)
def c_two_args(z, w):
    return abs(z * w + z)


@case(Z1)
def c_arith(z):
    return abs((z * z - 3 * z + 1j) / (z + 2))


@case(Z1)
def c_pow(z):
    return abs(z ** 3) + (z ** 2).real


@case(Z1)
def c_exp(z):
    return abs(cmath.exp(z))


@case(Z1)
def c_log(z):
    return cmath.log(z).imag + cmath.log(z).real


@case(Z1)
def c_sqrt(z):
    return cmath.sqrt(z).real


@case(Z1)
def c_sin(z):
    return abs(cmath.sin(z))


@case(Z1)
def c_cos(z):
    return cmath.cos(z).real


@case(Z1)
def c_tan(z):
    return cmath.tan(z).imag


@case(Z1)
def c_sinh(z):
    return cmath.sinh(z).real


@case(Z1)
def c_cosh(z):
    return cmath.cosh(z).imag


@case(Z1)
def c_tanh(z):
    return abs(cmath.tanh(z))


@case(Z1)
def c_asin(z):
    return cmath.asin(z).real


@case(Z1)
def c_acos(z):
    return cmath.acos(z).imag


@case(Z1)
def c_atan(z):
    return abs(cmath.atan(z))


@case(Z1)
def c_asinh(z):
    return cmath.asinh(z).real


@case(Z1)
def c_acosh(z):
    return cmath.acosh(z).real


@case(Z1)
def c_atanh(z):
    return cmath.atanh(z).imag


@case(Z1)
def c_log10(z):
    return abs(cmath.log10(z))


@case(Z1)
def c_phase(z):
    return cmath.phase(z)


@case((0.7, 1.9), (1.3, 0.4), (2.1, -1.1))
def c_rect(x, y):
    return cmath.rect(x, y).real + 2 * cmath.rect(x, y).imag


@case((0.7, 1.9), (1.3, 0.4))
def c_complex_ctor(x, y):
    return abs(complex(x, y)) ** 2


@case(Z1)
def c_loop(z):
    w = z
    for _ in range(3):
        w = w * z + 0.5j
    return abs(w)


@case((0.7, 1.9), (1.3, 0.4))
def c_from_real(x, y):
    z = x + 1j * y
    return (z * z).real + abs(cmath.exp(z))
