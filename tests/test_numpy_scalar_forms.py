"""Every NumPy rule on the scalar forms NumPy accepts, derived from its array samples.

For each array sample of a NumPy rule in the generic test (``test_rules_generic.SAMPLES``), the
same call with each float array replaced by a Python float (its first entry) and, separately, by
an ``np.float64``: where NumPy computes a finite result, torchzygote's gradient must match central
differences with a gradient of each argument's own type, inlined and dispatched at run time, and
at second order (a Hessian-vector product) -- or the call must be refused with a clear
``TorchZygoteError``. So a rule cannot land that is right on arrays and silently wrong on numbers.
"""
import warnings

import numpy as np
import pytest

import test_rules_generic as G
import torchzygote as tz
from torchzygote.errors import TorchZygoteError


def _scalar_forms(fn):
    for spec in G.SAMPLES[fn]:
        if isinstance(spec, G.Program):
            continue
        make, opts = spec
        if opts.get("pre") or opts.get("random") or opts.get("nograd"):
            continue
        for args in make():
            if not any(G._is_float_array(v) and v.dtype.kind == "f" for v in args):
                continue
            for number in (float, np.float64):
                sargs = tuple(number(v.flat[0]) if G._is_float_array(v) and v.dtype.kind == "f" else v
                              for v in args)
                try:
                    with warnings.catch_warnings(), np.errstate(all="raise"):
                        warnings.simplefilter("error")
                        y = fn(*sargs)
                    if not np.all(np.isfinite(np.asarray(y, dtype=complex))):
                        continue
                except Exception:  # noqa: BLE001 -- NumPy does not take this form
                    continue
                yield sargs, opts


def _check(fn, sargs, opts):
    G._check_sample(fn, sargs, opts)
    static = G._wrappers(fn, sargs)[0]
    g = tz.gradient(static, *sargs)
    for i, (v, gi) in enumerate(zip(sargs, g)):
        if gi is not None and isinstance(v, float):
            assert type(gi) is type(v), f"arg {i}: gradient {gi!r} of {type(v).__name__} {v!r}"
    idx = [i for i, v in enumerate(sargs) if isinstance(v, float) and g[i] is not None]
    gsum = G._gradient_sum(static, idx, {i: 0.7 for i in idx})
    hv = tz.gradient(gsum, *sargs)
    fd = G.fd_gradient(gsum, sargs, h=1e-4)
    for i in idx:
        if fd[i] is not None:
            assert G.close(0.0 if hv[i] is None else hv[i], fd[i], 1e-4, 1e-5), (i, hv[i], fd[i])


@pytest.mark.parametrize("fn", G.NP_SECOND, ids=[G._fn_id(f) for f in G.NP_SECOND])
def test_numpy_rule_on_numbers(fn):
    failures = []
    for sargs, opts in _scalar_forms(fn):
        try:
            _check(fn, sargs, opts)
        except TorchZygoteError:
            continue   # refused clearly: not a wrong number
        except Exception as e:  # noqa: BLE001
            failures.append(f"{G._fn_id(fn)}{G._short(sargs)}: {type(e).__name__}: {str(e)[:300]}")
    assert not failures, "\n".join(failures)
