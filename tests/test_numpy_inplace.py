"""In-place writes into NumPy arrays (``x[k] = v``, ``x += y``, ``x.fill(c)``, ``np.add.at``,
``np.copyto``) differentiated as written: gradients against central differences, at first and
second order; where a write changes memory a gradient or a later read still needs (aliases,
views), the gradient is right or the transform raises saying what to do."""
import numpy as np
import pytest

import torchzygote as tz
from torchzygote.errors import GradientError, LiftError

from samples_numpy_inplace import p_np_augmented

X3 = np.array([0.5, -0.3, 0.8])


def fd(f, args, i=0, h=1e-6):
    """Central differences of scalar ``f`` in argument ``i`` (an array or a number); every
    evaluation gets fresh copies (the functions may write into their arguments)."""
    def at(v):
        xs = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
        xs[i] = v
        return f(*xs)
    x = args[i]
    if not isinstance(x, np.ndarray):
        return (at(x + h) - at(x - h)) / (2 * h)
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (at(x + e) - at(x - e)) / (2 * h)
    return g


def grad(f, *args):
    return tz.gradient(f, *[np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args])


def check(f, *args, order2=True):
    """First order for every argument (with its type), then the gradient of <gradient, v>."""
    g = grad(f, *args)
    for i, (gi, a) in enumerate(zip(g, args)):
        want = fd(f, args, i)
        if isinstance(a, np.ndarray):
            assert isinstance(gi, np.ndarray) and gi.shape == a.shape, (i, gi)
        else:
            assert type(gi) is type(a), (i, gi, a)
        assert np.allclose(gi, want, rtol=1e-5, atol=1e-6), (i, gi, want)
    if order2:
        v = np.linspace(0.4, 1.2, np.size(args[0])).reshape(np.shape(args[0]))

        def gv(*xs):
            return np.sum(tz.gradient(f, *xs)[0] * v)
        h2 = grad(gv, *args)
        for i in range(len(args)):
            assert np.allclose(h2[i], fd(gv, args, i, h=1e-5), rtol=1e-4, atol=1e-5), (i, h2[i])
    return g


# ---------------------------------------------------------------- the issue's programs

def issue_f(x):
    y = np.zeros(3)
    y[0] = x[0] * 2
    return np.sum(y * y)


def issue_g(x):
    x = x.copy()
    x += 1.0
    return np.sum(x * x)


@pytest.mark.parametrize("f", [issue_f, issue_g])
def test_issue_programs(f):
    check(f, X3)


# ---------------------------------------------------------------- item writes

def set_int(x):
    y = x * x
    y[1] = np.sin(x[0])
    return np.sum(y * x)


def set_slice(x):
    y = np.ones(4)
    y[1:3] = x[0:2] * x[2]
    return np.sum(np.exp(y) * y)


def set_mask(x):
    y = x * 2.0
    y[x > 0] = 0.5 * x[x > 0] ** 2
    return np.sum(y * y)


def set_index_array(x):
    y = np.zeros(4)
    y[np.array([3, 0])] = x[0:2] * x[2]
    return np.sum(y * np.arange(1.0, 5.0)) + y[0] * y[3]


def set_repeated_index(x):
    y = x * 1.0
    y[[0, 2, 0]] = np.cos(x)          # (0) is written twice: numpy keeps the last value
    return np.sum(y * y)


def set_ellipsis(m):
    y = m * m
    y[..., 1] = m[..., 0] * 3.0
    return np.sum(y * m)


def set_tuple_scalar(m, s):
    y = m * 1.0
    y[1, 0] = s * s                   # a Python float or np.float64 written into one entry
    y[0] = s                          # broadcast along a row
    return np.sum(y * y * m)


def set_in_loop(x):
    y = np.zeros(3)
    for i in range(3):
        y[i] = x[i] * x[(i + 1) % 3]
    for i in range(1, 3):
        y[i] = y[i] * y[i - 1]        # reads the slot it overwrites and its neighbour
    return np.sum(y * y)


def set_list_value(x):
    y = np.zeros(3)
    y[0:2] = [x[0] * x[1], np.float64(2.0) * x[2]]
    return np.sum(y * y)


M = np.array([[0.5, -0.3], [0.8, 1.1], [-0.6, 0.2]])


@pytest.mark.parametrize("f", [set_int, set_slice, set_mask, set_index_array, set_repeated_index, set_in_loop,
                               set_list_value])
def test_item_writes(f):
    check(f, np.array([0.5, -0.3, 0.8]) if f is not set_slice else np.array([0.5, -0.3, 0.8]))


def test_ellipsis_write():
    check(set_ellipsis, M)


@pytest.mark.parametrize("s", [0.7, np.float64(0.7)])
def test_scalar_written_into_array(s):
    check(set_tuple_scalar, M, s)


# ---------------------------------------------------------------- augmented assignment

def aug_broadcast(m, y):
    z = m * 1.0
    z += y                            # a row broadcast into a matrix
    z *= y
    return np.sum(z * z)


def aug_number(x, c):
    z = x * 1.0
    z += c
    z *= c
    z -= c * c
    z /= c
    z **= 3
    return np.sum(z)


def test_augmented_arrays():
    check(p_np_augmented, X3, np.array([0.3, 1.1, -0.7]))   # every augmented operator, also with np.float64


def test_augmented_broadcast():
    check(aug_broadcast, M, np.array([0.3, -1.1]))


@pytest.mark.parametrize("c", [0.7, np.float64(1.3)])
def test_augmented_numbers(c):
    check(aug_number, X3, c)


def aug_power_exponent(x, c):
    z = np.exp(x)
    z **= c                           # the exponent gets a gradient too
    return np.sum(z)


def test_augmented_power_exponent():
    check(aug_power_exponent, X3, 1.7)


# ---------------------------------------------------------------- fill, add.at, copyto

def fill_prog(x):
    y = x * 2.0
    s = np.sum(y * y)
    y.fill(x[0] * x[1])               # the old values get no gradient
    return s + np.sum(y * x)


def add_at_prog(x):
    z = np.zeros(3)
    np.add.at(z, [0, 2, 0], x)        # position 0 accumulates twice
    np.subtract.at(z, np.array([1, 1]), x[0:2] * x[2])
    return np.sum(z * z)


def copyto_prog(x):
    w = np.ones((2, 3))
    np.copyto(w, x * x)               # broadcast into every row
    return np.sum(w * np.sin(w))


@pytest.mark.parametrize("f", [fill_prog, add_at_prog, copyto_prog])
def test_writes_returning_none(f):
    check(f, X3)


def test_multiply_at_refused():
    def f(x):
        z = np.ones(3)
        np.multiply.at(z, [0, 0], x[0:2])
        return np.sum(z)
    with pytest.raises(GradientError, match="np.add.at"):
        grad(f, X3)


# ---------------------------------------------------------------- writes into arguments

def write_argument(x):
    y = x * x                         # its gradient reads x's old value
    x[0] = 1.0
    return np.sum(y * x)


def test_write_into_argument_keeps_old_value_and_mutates_like_python():
    x = X3.copy()
    g = tz.gradient(write_argument, x)[0]
    assert x[0] == 1.0                # written, as Python does
    assert np.allclose(g, fd(write_argument, (X3,)))


# ---------------------------------------------------------------- aliases and views: right or refused

def view_write_then_read_base(x):
    y = x * 1.0
    v = y[0:2]
    v[0] = 3.0                        # writes into y
    return np.sum(y * y)


def reshape_view_write(x):
    y = x * 1.0
    w = np.reshape(y, (3, 1))
    w[0, 0] = 5.0                     # a view made by a function: shared memory known at run time
    return np.sum(np.sin(y))


def augmented_alias(x):
    y = x * 1.0
    z = y
    y += 1.0                          # z is y: Python's z sees the write
    return np.sum(z * x)


@pytest.mark.parametrize("f", [view_write_then_read_base, augmented_alias, reshape_view_write])
def test_stale_alias_refused(f):
    """A name read after a write through another name or a view: refused (at transform time
    where the transform sees the alias, else at run time by np.shares_memory)."""
    with pytest.raises((LiftError, GradientError), match="copy"):
        grad(f, X3)


def view_write_old_value_read_by_gradient(x):
    y = x * 1.0
    s = np.sum(np.sin(y))             # sin's gradient reads y's old value
    v = y[0:2]
    v[0] = 3.0                        # writes into y, which is not read again
    return s + np.sum(v * v * x[0:2])


def scalar_item_kept(x):
    y = x * 1.0
    t = y[0]                          # a number, not a view: the write leaves it alone
    y[0] = y[1]
    y[1] = t                          # a swap
    return np.sum(y * np.arange(1.0, 4.0)) * t


@pytest.mark.parametrize("f", [view_write_old_value_read_by_gradient, scalar_item_kept])
def test_views_and_items_right(f):
    check(f, X3)


def helper_reads(a):
    return np.sum(np.sin(a))


def callee_read_then_written(x):
    y = x * 1.0
    s = helper_reads(y)               # the callee's gradient reads y
    y[0] = 2.0
    return s + np.sum(y * x)


def test_write_after_callee_read_right_or_refused():
    try:
        g = grad(callee_read_then_written, X3)[0]
    except GradientError as e:
        assert "copy" in str(e)
    else:
        assert np.allclose(g, fd(callee_read_then_written, (X3,)))


def held_in_list(x):
    y = x * 1.0
    keep = [y]
    y[0] = 2.0
    return np.sum(keep[0] * x)


def test_write_into_array_held_by_list():
    try:
        g = grad(held_in_list, X3)[0]
    except GradientError as e:
        assert "copy" in str(e)
    else:
        assert np.allclose(g, fd(held_in_list, (X3,)))


def loop_saves_view(x):
    y = x * 1.0
    s = 0.0
    for i in range(2):
        v = y[i:i + 2]                # a view saved for sin's gradient, then written next trip
        s = s + np.sum(np.sin(v))
        y[i + 1] = 0.5 * y[i]
    return s + np.sum(y)


def test_loop_saves_of_written_views():
    check(loop_saves_view, X3)


# ---------------------------------------------------------------- arrays built from active values

def build_nested(x, s):
    m = np.array([[x[0], 2.0], [np.float64(1.5) * x[1], x[0] * s + np.sin(s)]])
    v = np.asarray([s, x[2], s * s])
    w = np.stack([x, x * s, np.sin(x)])
    return np.sum(m @ m) + np.sum(v * v) + np.sum(w[1:] * w[:2])


@pytest.mark.parametrize("s", [0.7, np.float64(-0.4)])
def test_arrays_built_from_lists(s):
    check(build_nested, X3, s)


def test_unsupported_write_says_where_and_what():
    def f(x):
        y = np.zeros(3)
        y[0] = {"a": x[0]}            # not a number or an array
        return np.sum(y)
    with pytest.raises(Exception) as e:
        grad(f, X3)
    assert "test_numpy_inplace.py" in str(e.value) or "test_numpy_inplace.py" in "".join(
        getattr(e.value, "__notes__", []))


# ---------------------------------------------------------------- writes into copies (fuzzer and corpus refusals)

def slice_iadd_on_copy(m):
    b = m.copy()
    b[1:3, 0] += 1.0                  # t = b[1:3, 0] (a view); t += 1.0; b[1:3, 0] = t
    return np.sum(b ** 2)


def slice_imul_reads_slice(m):
    b = m.copy()
    b[1:3, 0] *= b[0, 1]              # the product's gradient reads the slice's old values
    return np.sum(b ** 2)


def slice_isub_after_read(m):
    b = m * 1.0
    s = np.sum(np.sin(b))             # sin's gradient reads b's old values
    b[0] -= m[1] * 2.0
    return s + np.sum(b * m)


def slice_idiv_in_loop(m):
    b = m.copy()
    for i in range(2):
        b[i, :] /= 1.5 + b[i + 1, :] ** 2
    return np.sum(np.exp(b))


def fancy_and_mask_augmented(m):
    b = m.copy()
    b[[0, 2, 0], 1] += m[:, 0]        # a repeated index: numpy keeps one of the writes
    b[b > 0] **= 2
    b[..., 1] += np.sin(m[..., 0])
    return np.sum(b * m)


@pytest.mark.parametrize("f", [slice_iadd_on_copy, slice_imul_reads_slice, slice_isub_after_read, slice_idiv_in_loop,
                               fancy_and_mask_augmented])
def test_augmented_write_into_slice_of_copy(f):
    check(f, M)


def augmented_slice_of_argument(m):
    m[1:3, 0] += 1.0                  # into the caller's array, as Python does
    m[0, 1] = 3.0
    return np.sum(m ** 2)


def test_augmented_slice_of_argument_mutates_like_python():
    m, want = M.copy(), M.copy()
    augmented_slice_of_argument(want)
    g = tz.gradient(augmented_slice_of_argument, m)[0]
    assert np.array_equal(m, want)
    assert np.allclose(g, fd(augmented_slice_of_argument, (M,)))


def write_in_one_branch_read_in_other(x):
    z = x.copy()
    if x[0] > 0:
        z *= np.tanh(x[1])            # the other branch's reads of z never follow this write
    else:
        s = np.sum(z)
        z[-1] = s
    return np.sum(z * z)


def add_at_in_branch(x):
    z = x.copy()
    if x[0] > 0:
        np.add.at(z, [0, 2, 0], x + z[0])
    else:
        keep = [z]                    # holds z in the branch that does not write
        z = keep[0] * 2.0
    return np.sum(np.sin(z + x))


@pytest.mark.parametrize("f", [write_in_one_branch_read_in_other, add_at_in_branch])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_write_in_one_branch(f, sign):
    check(f, X3 * np.array([sign, 1.0, 1.0]))


# ---------------------------------------------------------------- stale aliases that gave wrong numbers

def returns_stale_view(x):
    y = np.sin(x)
    v = y[0:2]
    y[0] = 3.0                        # v[0] is now 3.0: its gradient is zero
    return v


def view_reached_through_branch_in_loop(x):
    y = x * 1.0
    v = y[0:2]
    s = 0.0
    for i in range(2):
        if x[0] > 0:
            w = v                     # the next trip reads v after the write below
        else:
            w = x[0:2]
        s = np.sum(w * w)
        y[0] = 3.0 * x[1] * s
    return s


def alias_reached_through_branch_in_loop(x):
    y = x * 1.0
    z = y
    s = 0.0
    for i in range(2):
        if x[0] > 0:
            w = z
        else:
            w = x
        s = s + np.sum(w * x)
        y *= x[1]                     # z is y: the next trip's w sees the product
    return s


def test_stale_view_returned_right_or_refused():
    try:
        val, back = tz.pullback(returns_stale_view, X3.copy())
    except GradientError as e:
        assert "copy" in str(e)
    else:
        assert np.allclose(back(np.ones(2))[0], [0.0, np.cos(X3[1]), 0.0])


@pytest.mark.parametrize("f", [view_reached_through_branch_in_loop, alias_reached_through_branch_in_loop])
def test_alias_through_branch_in_loop_right_or_refused(f):
    try:
        g = grad(f, X3)[0]
    except (GradientError, LiftError) as e:
        assert "copy" in str(e)
    else:
        assert np.allclose(g, fd(f, (X3,)))
