"""NumPy code on Python floats, differentiated as written: small scientific programs checked
against central differences, at second order, and against the same code on arrays."""
import numpy as np

import torchzygote as tz

from conftest import close, fd_gradient

DATA = [0.3, -1.2, 0.8, 2.1, 0.05]


def gauss_loglik(mu, log_sigma):
    """A Gaussian log-likelihood of DATA, one float at a time."""
    sigma = np.exp(log_sigma)
    total = 0.0
    for x in DATA:
        z = (x - mu) / sigma
        total = total - 0.5 * z * z - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    return total


def gauss_loglik_array(mu, log_sigma):
    sigma = np.exp(log_sigma)
    z = (np.array(DATA) - mu) / sigma
    return np.sum(-0.5 * z * z - np.log(sigma) - 0.5 * np.log(2 * np.pi))


def logistic(w, b):
    s = 0.0
    for x in DATA:
        p = 1.0 / (1.0 + np.exp(-(w * x + b)))
        s = s + np.log(p)
    return s


def sine_loop(x):
    y = x
    for k in range(4):
        y = np.sin(y) * np.power(1.1, k) + np.tanh(x)
    return y


def ufunc_mix(x, y):
    return (np.divide(np.multiply(x, y), np.hypot(x, y)) + np.sqrt(np.square(x) + 1.0)
            - np.maximum(x, y) + np.remainder(x, 0.7) + np.arctan2(y, x) + np.log1p(np.expm1(x)))


def list_reductions(x, y):
    return np.sum([x, x * y, 2.0]) + np.mean([np.sin(x), y]) * np.prod([x, y, 3.0])


def _check(f, args, order2=True):
    g = tz.gradient(f, *args)
    fd = fd_gradient(f, args, h=1e-6)
    for gi, wi, xi in zip(g, fd, args):
        # a float (np.float64 where the output is np.float64 and Python operators carry its seed)
        assert isinstance(gi, type(xi)), (gi, xi)
        assert close(gi, wi, 1e-5, 1e-6), (gi, wi)
    if order2:  # the gradient's gradient (first argument's row of the Hessian)
        def d0(*xs):
            return tz.gradient(f, *xs)[0]
        h = tz.gradient(d0, *args)
        hf = fd_gradient(d0, args, h=1e-5)
        for hi, wi in zip(h, hf):
            assert close(hi, wi, 1e-4, 1e-5), (hi, wi)
    return g


def test_gaussian_loglik_matches_fd_and_array_code():
    g = _check(gauss_loglik, (0.4, -0.2))
    ga = tz.gradient(gauss_loglik_array, 0.4, -0.2)
    assert all(close(u, v, 1e-10, 1e-12) for u, v in zip(g, ga))


def test_gaussian_loglik_on_numpy_scalars():
    g = _check(gauss_loglik, (np.float64(0.4), np.float64(-0.2)), order2=False)
    assert all(type(gi) is np.float64 for gi in g)


def test_logistic():
    _check(logistic, (0.7, -0.3))


def test_sine_loop_and_array_version():
    g = _check(sine_loop, (0.6,))
    xs = np.array([0.6, -0.4])

    def on_array(v):
        return np.sum(sine_loop(v))
    ga = tz.gradient(on_array, xs)[0]
    assert isinstance(ga, np.ndarray) and ga.shape == xs.shape
    assert close(ga[0], g[0], 1e-10, 1e-12)
    assert close(ga[1], tz.gradient(sine_loop, -0.4)[0], 1e-10, 1e-12)


def test_ufunc_mix_on_floats_and_arrays():
    g = _check(ufunc_mix, (0.45, 1.3))
    xs, ys = np.array([0.45, 0.2]), np.array([1.3, 0.9])

    def on_arrays(u, v):
        return np.sum(ufunc_mix(u, v))
    gu, gv = tz.gradient(on_arrays, xs, ys)
    assert gu.shape == (2,) and close(gu[0], g[0], 1e-9, 1e-12) and close(gv[0], g[1], 1e-9, 1e-12)


def test_reductions_of_lists_of_floats():
    _check(list_reductions, (0.45, 1.3))


def test_maximum_tie_splits_the_gradient():
    gx, gy = tz.gradient(lambda x, y: np.maximum(x, y), 0.5, 0.5)
    assert (gx, gy) == (0.5, 0.5) and type(gx) is float
