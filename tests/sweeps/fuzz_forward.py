"""Forward-mode checks for the program fuzzer (``python -m tests.sweeps.fuzz --mode forward|both``).

Each generated program's ``tz.jvp`` along random directions (every float argument perturbed at
once) is checked against central differences along the direction (two step sizes; a point where
they disagree is non-smooth and skipped), against the reverse gradient (``<grad, v>``, for the
scalar-valued program) and, where torch accepts the program, against ``torch.func.jvp`` (the
scalar programs' torch twin; tensor programs as they are, and their vector-valued twin ``fv``).
At order 2, ``tz.hvp`` (forward over reverse) is checked against central differences of
torchzygote's reverse gradient along the same direction and against
``torch.autograd.functional.hvp``. Verdicts are keyed ``"f1"`` and ``"f2"``.
"""
import math
import random

import numpy as np
import torch

import torchzygote as tz

DIRECTIONS = 2


def _clone(x):
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.clone() if isinstance(x, torch.Tensor) else x.copy()
    if type(x) in (tuple, list):
        return type(x)(_clone(a) for a in x)
    return x


def _direction(rng, a):
    """A random tangent of ``a``'s type and shape."""
    if isinstance(a, torch.Tensor):
        return torch.tensor([rng.uniform(-1, 1) for _ in range(a.numel())], dtype=torch.float64).reshape(a.shape)
    if isinstance(a, np.ndarray):
        return np.array([rng.uniform(-1, 1) for _ in range(a.size)]).reshape(a.shape)
    return type(a)(rng.uniform(-1, 1))


def _shift(args, vs, t):
    """``args + t * vs``, item by item (tuples too)."""
    return [type(a)(_shift(a, v, t)) if type(a) in (tuple, list) else a + t * v for a, v in zip(_clone(args), vs)]


def _flat(x, like=None):
    """The numbers of a value as a list of floats; None (a structural zero) as zeros shaped like ``like``."""
    if x is None:
        return None if like is None else [0.0] * len(_flat(like))
    if isinstance(x, torch.Tensor):
        return x.detach().reshape(-1).tolist()
    if isinstance(x, np.ndarray):
        return x.reshape(-1).astype(float).tolist()
    if type(x) in (tuple, list):
        out = []
        for i, a in enumerate(x):
            fa = _flat(a, None if like is None else like[i])
            if fa is None:
                return None
            out += fa
        return out
    return [float(x)]


def _value(fn, xs):
    """``fn(*xs)`` flattened, or None if it raises or is not finite."""
    try:
        with torch.no_grad(), np.errstate(all="raise"):
            y = _flat(fn(*_clone(xs)))
    except Exception:  # noqa: BLE001
        return None
    return y if y is not None and all(math.isfinite(u) and abs(u) < 1e8 for u in y) else None


def _dfd(fn, args, vs, h):
    """Central differences of ``fn`` along ``vs``, one per output number (None where it jumps), or None."""
    y1, y2, y0 = _value(fn, _shift(args, vs, h)), _value(fn, _shift(args, vs, -h)), _value(fn, args)
    if y1 is None or y2 is None or y0 is None or not len(y1) == len(y2) == len(y0):
        return None
    return [None if abs(a + b - 2 * c) > 1e-6 * max(1.0, abs(c)) else (a - b) / (2 * h) for a, b, c in zip(y1, y2, y0)]


def _tensors(xs):
    return tuple(x.clone() if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64) for x in xs)


def _torch_jvp(ft, args, vs):
    """``torch.func.jvp`` of ``ft`` (floats as 0-d tensors), flattened, or None where torch refuses."""
    if ft is None or any(isinstance(a, np.ndarray) for a in args):
        return None
    try:
        _, ty = torch.func.jvp(lambda *xs: ft(*_clone(xs)), _tensors(args), _tensors(vs))
        return _flat(ty)
    except Exception:  # noqa: BLE001 -- torch does not accept this program
        return None


def _compare_all(fz, v, label, got, args, fn, vs, ref, rtol, hs):
    """Each output number of a directional derivative against central differences and ``ref``."""
    fa, fb = _dfd(fn, args, vs, hs[0]), _dfd(fn, args, vs, hs[1])
    if fa is not None and (got is None or len(got) != len(fa)):
        v.bad("mismatch", f"{label}: tangent {got!r} does not match the output's {len(fa)} numbers")
        return
    for k in range(len(got) if got is not None else 0):
        r = ref[k] if ref is not None and len(ref) == len(got) else None
        fz.compare(v, f"{label}[{k}]", got[k], None if fa is None else fa[k], None if fb is None else fb[k], r, rtol)


def _jvp_checks(fz, v, fn, ft, args, vs, label, grad):
    """One direction: the value, central differences, ``<grad, v>`` (if given) and torch's jvp."""
    out, err = fz.guarded(lambda: tz.jvp(fn, _clone(args), vs))
    if err:
        v.bad(*err)
        return
    y, ty = out
    y0 = _value(fn, args)
    if y0 is not None and (_flat(y) is None or len(_flat(y)) != len(y0)
                           or any(abs(a - b) > 1e-9 * max(1.0, abs(b)) for a, b in zip(_flat(y), y0))):
        v.bad("mismatch", f"{label}: jvp's value {y!r}, plain {y0!r}")
        return
    if isinstance(y, torch.Tensor) and not (isinstance(ty, torch.Tensor) and ty.shape == y.shape):
        v.bad("mismatch", f"{label}: tangent {ty!r} is not shaped like the output {tuple(y.shape)}")
        return
    got = _flat(ty, y)
    if grad is not None and got is not None and len(got) == 1:
        gv = sum(g * d for g, d in zip(_flat(grad, args), _flat(vs)))
        if not math.isclose(got[0], gv, rel_tol=1e-8, abs_tol=1e-10):
            v.bad("mismatch", f"{label}: jvp {got[0]!r}, <reverse gradient, v> {gv!r}")
    _compare_all(fz, v, label, got, args, fn, vs, _torch_jvp(ft, args, vs), 1e-5, (fz.H1, fz.H2))


def check(fz, prog, mod, tmod, order):
    """Verdicts ``{"f1": ..., "f2": ...}`` of one loaded program (``fz`` is the fuzz module)."""
    f, args = mod.f, list(prog.args)
    ft = tmod.f if tmod is not None else (f if prog.kind == "tensor" else None)
    rng = random.Random(f"tzfuzz-fwd:{prog.seed}:{prog.index}:{prog.kind}")
    v = fz.Verdict()
    if _value(f, args) is None:
        v.skip("the plain program raises or is not finite")
        return {"f1": v}
    grad, gerr = fz.guarded(lambda: tz.gradient(f, *_clone(args)))
    if gerr:
        v.skip(f"no reverse gradient to compare with ({gerr[0]}: {gerr[1][:100]})")
        grad = None
    dirs = [[_direction(rng, a) for a in args] for _ in range(DIRECTIONS)]
    for d, vs in enumerate(dirs):
        _jvp_checks(fz, v, f, ft, args, vs, f"jvp#{d}", grad)
    fv = getattr(mod, "fv", None)
    if fv is not None:
        _jvp_checks(fz, v, fv, fv, args, dirs[0], "jvp fv", None)
    res = {"f1": v}
    if order < 2 or v.cls != "ok":
        return res
    res["f2"] = _hvp_check(fz, f, ft, args, dirs[0], grad)
    return res


def _hvp_check(fz, f, ft, args, vs, grad):
    """``tz.hvp`` along ``vs`` (all arguments, packed in a tuple when there are several)."""
    v2 = fz.Verdict()
    if grad is not None and all(g is None for g in grad):
        v2.skip("the first derivative is structurally zero (None)")
        return v2
    one = len(args) == 1
    F = (lambda x: f(_clone(x))) if one else (lambda xs: f(*_clone(xs)))
    P, V = (args[0], vs[0]) if one else (tuple(args), tuple(vs))
    hv, err = fz.guarded(lambda: tz.hvp(F, _clone(P), V))
    if err:
        v2.bad(*err)
        return v2
    if isinstance(P, torch.Tensor) and not (isinstance(hv, torch.Tensor) and hv.shape == P.shape):
        v2.bad("mismatch", f"hvp {hv!r} is not shaped like the argument {tuple(P.shape)}")
        return v2
    ref = None
    if ft is not None and not any(isinstance(a, np.ndarray) for a in args):
        try:
            ref = _flat(torch.autograd.functional.hvp(lambda *xs: ft(*_clone(xs)), _tensors(args), _tensors(vs))[1])
        except Exception:  # noqa: BLE001 -- torch does not accept this program
            ref = None
    g = lambda p: tz.gradient(F, p)[0]  # noqa: E731  (the reverse gradient, differenced along V)
    _compare_all(fz, v2, "hvp", _flat(hv, P), [P], lambda p: _flat(g(p), P), [V], ref, 1e-4, (fz.H1, fz.H2))
    return v2
