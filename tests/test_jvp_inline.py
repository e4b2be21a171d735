"""Forward mode on every registered rule as generated code uses it: each sample of
``tests/test_rules_generic.py`` (``SAMPLES``) is called from a small function, statically (the
rule's tangent terms inlined by ``ad/jvp_codegen.py``) and through a dict at run time (the
dispatcher's tangent form), and its ``jvp`` along a random direction of all its float arguments
is checked against central differences of the same function (float64). With
``test_rules_generic`` (reverse mode) this is the generic rule test of both modes: a rule whose
samples exist cannot land without a correct tangent."""
import numpy as np
import pytest
import torch

import torchzygote as tz
from conftest import close
from test_rules_generic import SAMPLES, Program, _declared, _fn_id, _wrappers
from torchzygote.rules.registry import TABLE

_GEN = np.random.default_rng(7)


def _direction(v):
    """A random tangent for a float argument (None for others)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float):
        return float(_GEN.uniform(-1, 1))
    if isinstance(v, complex):
        return complex(_GEN.uniform(-1, 1), _GEN.uniform(-1, 1))
    if isinstance(v, torch.Tensor) and (v.dtype.is_floating_point or v.dtype.is_complex):
        t = torch.as_tensor(_GEN.uniform(-1, 1, tuple(v.shape)), dtype=torch.float64)
        return t.to(v.dtype) if not v.dtype.is_complex else torch.complex(t, t.flip(0) if t.dim() else t).to(v.dtype)
    if isinstance(v, np.ndarray) and v.dtype.kind in "fc":
        t = _GEN.uniform(-1, 1, v.shape)
        return t.astype(v.dtype) if v.dtype.kind == "f" else (t + 1j * t[::-1]).astype(v.dtype)
    if isinstance(v, np.floating):
        return type(v)(_GEN.uniform(-1, 1))
    return None


def _along(f, args, tangents, h):
    def at(s):
        return f(*[a if t is None else a + s * t for a, t in zip(args, tangents)])
    return (at(h) - at(-h)) / (2 * h)


def _real(v):
    if isinstance(v, torch.Tensor):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.item()
    return v


def _fns():
    return [f for f in TABLE.rules if f in SAMPLES and not all(isinstance(s, Program) for s in SAMPLES[f])]


@pytest.mark.parametrize("fn", _fns(), ids=[_fn_id(f) for f in _fns()])
def test_rule_tangent_inlined_and_dispatched(fn):
    failures, checked = [], 0
    for spec in SAMPLES[fn]:
        if isinstance(spec, Program):
            continue
        make, opts = spec
        if opts.get("random") or opts.get("nograd"):
            continue
        for args in make()[:3]:
            static, dynamic, _, has_out = _wrappers(fn, args, opts.get("pre"))
            if not has_out:
                continue
            declared = _declared(fn, args)
            tangents = [(_direction(v) if i in declared else None) for i, v in enumerate(args)]
            if all(t is None for t in tangents):
                continue
            h, rtol, atol = opts.get("h", 1e-6), opts.get("rtol", 1e-5), opts.get("atol", 1e-6)
            want = _along(static, args, tangents, h)
            for f in (static, dynamic):
                try:
                    y, t = tz.jvp(f, args, tangents)
                    ok = close(_real(t), _real(want), max(rtol, 1e-5), max(atol, 1e-6))
                    if not ok:
                        failures.append(f"{f.__name__}{_short(args)}: jvp {_real(t)!r} vs central difference "
                                        f"{_real(want)!r}")
                    checked += 1
                except Exception as e:  # collect every failing sample of this rule
                    failures.append(f"{f.__name__}{_short(args)}: {type(e).__name__}: {str(e)[:300]}")
    assert not failures, "\n".join(failures)


def _short(args):
    return "(" + ", ".join(f"T{tuple(v.shape)}" if isinstance(v, torch.Tensor) else
                           f"A{v.shape}" if isinstance(v, np.ndarray) else repr(v)[:20] for v in args) + ")"
