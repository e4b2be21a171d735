"""Forward mode of the rules on numbers and NumPy arrays: every one has a tangent, and each tangent
agrees with central differences on the samples of ``test_rules_generic`` (float64, a random
direction per sample, real and complex values).

In scope ("a rule on numbers and arrays"): a rule with a differentiable parameter and no effect
that is either for a function of NumPy, SciPy, ``math`` or ``cmath`` (ufuncs and their methods, and
the NumPy rule modules' own helpers included), or not on torch values (some variant of it takes no
tensor: a tensor rule's patterns all require one, kind T) and whose result, for arguments of the
kinds its patterns take (arrays and numbers first), is a number or an array rather than a container
or an object: the operators and numeric builtins on numbers and arrays, and the frontend's
operations on arrays. Container and object rules (``build_tuple``, ``getattr``, ...) are handled
structurally by the forward transform (rules/tangents.py).
"""
import copy
import operator

import numpy as np
import pytest
import torch

from torchzygote.frontend import ops
from torchzygote.rules.registry import TABLE, select
from torchzygote.rules.tangents import diff_params, has_tangent, tangent_form
from torchzygote.values.kinds import kind_of

from test_rules_generic import NP_ELEMENTWISE, SAMPLES, Program, _fn_id

_RESULTS = {"A", "R", "C", "N", "M"}
_PREFER = "ARCN"


def _needs_tensor(p) -> bool:
    return any(s <= {"T"} for s in p.items) or (p.need is not None and p.need <= {"T"})


def _representative(p, n):
    """Argument kinds a pattern takes, arrays and numbers first."""
    def pick(s):
        return next((k for k in _PREFER if k in s), sorted(s)[0])
    ks = [pick(p.at(i)) if p.at(i) is not None else None for i in range(max(n, len(p.items)))]
    ks = [k for k in ks if k is not None]
    if p.need is not None and not any(k in p.need for k in ks):
        ks[-1 if ks else 0:] = [pick(p.need)]
    return ks


def _module(fn) -> str:
    return str(getattr(fn, "__module__", None) or getattr(getattr(fn, "__objclass__", None), "__module__", ""))


def _numpy_like(fn) -> bool:
    """A function of NumPy, SciPy, math or cmath (ufuncs and their bound methods too), or a helper of
    the NumPy rule modules."""
    if isinstance(fn, np.ufunc) or isinstance(getattr(fn, "__self__", None), np.ufunc):
        return True
    mod = _module(fn)
    return mod.split(".")[0] in ("numpy", "scipy", "math", "cmath") or mod.startswith("torchzygote.rules.numpy")


def in_scope(rule) -> bool:
    if rule.effect or not diff_params(rule):
        return False
    if _numpy_like(rule.fn):
        return True
    if _module(rule.fn).startswith("torch") and not _module(rule.fn).startswith("torchzygote"):
        return False
    pats = [p for p in rule.patterns if not _needs_tensor(p)]
    if not pats:
        return False
    for p in pats:
        ks = _representative(p, len(rule.params))
        try:
            out = rule.out_kind(ks)
        except Exception:
            out = "A"
        if out in _RESULTS:
            return True
    return False


def _rules():
    return [r for rs in TABLE.rules.values() for r in rs if in_scope(r)]


# rules left without a tangent on purpose (a wrong number is worse than a clear NoRuleError)
NO_TANGENT = {
    # registry.grad refuses tangent terms where a parameter is named d<another parameter> (the tangent's
    # name): np.trapezoid(y, x=None, dx=1.0) cannot be given one without renaming NumPy's keyword dx
    "trapezoid": "parameters x and dx: dx names x's tangent",
}


def test_every_rule_on_numbers_and_arrays_has_a_tangent():
    rules = _rules()
    assert len(rules) > 400, len(rules)   # the definition above still finds the tables
    missing = sorted({r.describe() for r in rules if not has_tangent(r) and r.name not in NO_TANGENT})
    assert not missing, f"{len(missing)} rules without a tangent:\n" + "\n".join(missing)


# ------------------------------------------------------------------ numerical check

_RNG = np.random.default_rng(7)


def _direction(v):
    """A random tangent for value ``v`` (None where it has none: ints, bools, strings, objects)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (complex, np.complexfloating)):
        return type(v)(complex(_RNG.normal(), _RNG.normal()))
    if isinstance(v, (float, np.floating)):
        return type(v)(_RNG.normal())
    if isinstance(v, torch.Tensor):   # (the number rules take tensors too: abs, pow, the operators)
        d = _direction(v.numpy())
        return None if d is None else torch.from_numpy(d)
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            return _RNG.normal(size=v.shape).astype(v.dtype)
        if v.dtype.kind == "c":
            return (_RNG.normal(size=v.shape) + 1j * _RNG.normal(size=v.shape)).astype(v.dtype)
        return None
    if type(v) in (list, tuple):
        items = [_direction(x) for x in v]
        return type(v)(items) if any(t is not None for t in items) else None
    return None


def _moved(v, t, h):
    if t is None:
        return v
    if type(v) in (list, tuple):
        return type(v)(_moved(x, tx, h) for x, tx in zip(v, t))
    if isinstance(v, (np.ndarray, torch.Tensor)):
        return v + h * t
    return type(v)(v + h * t)


def _numeric(y):
    """An output as arrays (None where it has no tangent: ints, bools, strings)."""
    if isinstance(y, tuple) or type(y) is list:
        return tuple(_numeric(v) for v in y)
    if isinstance(y, (bool, int, str)) or y is None:
        return None
    a = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return a if a.dtype.kind in "fc" else None


def _diff(yp, ym, h):
    """Central difference of outputs."""
    if isinstance(yp, tuple):
        return tuple(_diff(a, b, h) for a, b in zip(yp, ym))
    return None if yp is None else (yp - ym) / (2 * h)


def _agree(got, want, rtol, atol, path="y"):
    if want is None:
        return []
    if type(want) in (list, tuple):
        got = (None,) * len(want) if got is None else got
        if len(got) != len(want):
            return [f"{path}: {len(got)} tangents for {len(want)} outputs"]
        return [e for i, (g, w) in enumerate(zip(got, want)) for e in _agree(g, w, rtol, atol, f"{path}[{i}]")]
    g = np.zeros_like(want) if got is None else np.asarray(got)
    if g.shape != want.shape and g.size == want.size:
        return [f"{path}: tangent of shape {g.shape} for an output of shape {want.shape}"]
    if not np.allclose(g, want, rtol=rtol, atol=atol):
        return [f"{path}: tangent {g!r} vs central difference {want!r}"]
    return []


def _bind(rule, args):
    """Positional arguments as the tangent form's per-parameter slots (the vararg's as a tuple)."""
    n = len(rule.params)
    return list(args[:n]), args[n:]


def _tangents(rule, args, only=None):
    fixed, rest = _bind(rule, args)
    ts = []
    for i, p in enumerate(rule.params):
        v = fixed[i] if i < len(fixed) else None
        ts.append(_direction(v) if p in rule.grads and i < len(fixed) and only in (None, p) else None)
    if rule.vararg:
        ts.append(tuple(_direction(v) for v in rest) if rule.vararg in rule.grads and only in (None, rule.vararg)
                  else None)
    return ts


def _flat_tangents(rule, args, ts):
    n = len(rule.params)
    out = list(ts[:n])[:len(args)]
    if rule.vararg:
        out += list(ts[n] or (None,) * (len(args) - n))
    return out


def _check(fn, rule, make, opts):
    """``make()`` builds the call's arguments afresh (a ``pre`` may build a generator)."""
    h, rtol, atol = opts.get("h", 1e-6), opts.get("rtol", 1e-5), opts.get("atol", 1e-6)
    args = make()
    errors = []
    diff = [p for p in diff_params(rule)]
    for only in [None] + (diff if len(diff) > 1 else []):
        ts = _tangents(rule, args, only)
        flat = _flat_tangents(rule, args, ts)
        if all(t is None for t in flat):
            continue
        kept = copy.deepcopy(ts)
        y, ty = tangent_form(rule)(None, tuple(ts), *copy.deepcopy(make()))
        # a term never writes into a tangent (tangents may be shared by several values)
        errors += _agree(_numeric(tuple(ts)), _numeric(tuple(kept)), 0.0, 0.0, "argument tangents")
        yp = _numeric(fn(*[_moved(v, t, h) for v, t in zip(make(), flat)]))
        ym = _numeric(fn(*[_moved(v, t, -h) for v, t in zip(make(), flat)]))
        errors += _agree(ty, _diff(yp, ym, h), rtol, atol, f"tangent in {only or 'all'}")
        # the value is the function's (a tangent never lands in an out= array or an argument)
        errors += _agree(_numeric(y), _numeric(fn(*make())), 1e-12, 1e-12, "value")
    return errors


# ------------------------------------------------------------------ samples of this file
# For the variants the generic samples reach only through programs (operators and in-place writes on
# arrays, ufuncs of lists), and complex values (holomorphic, non-holomorphic and linear functions).

_G = np.random.default_rng(3)


def ar(*shape, lo=-1.0, hi=1.0):
    return lo + (hi - lo) * _G.random(shape)


def cz(*shape, lo=0.3, hi=1.0):
    """Complex entries with moduli in (lo, hi), away from the branch cuts on the negative real axis."""
    return ar(*shape, lo=lo, hi=hi) * np.exp(1j * ar(*shape, lo=-1.2, hi=1.2))


EXTRA = {}


def extra(fns, make, **opts):
    for f in fns if isinstance(fns, (tuple, list)) else (fns,):
        EXTRA.setdefault(f, []).append((make, opts))


def _domain_values(lo, hi, n):
    return [lo + (hi - lo) * (0.23 + 0.51 * i / max(n - 1, 1)) for i in range(n)]


for _f, _doms in NP_ELEMENTWISE.items():   # the ufuncs of lists and tuples (np.exp([a, b]))
    if len(_doms) == 1:
        extra(_f, lambda d=_doms[0]: [(_domain_values(*d, 3),), (tuple(map(np.float64, _domain_values(*d, 2))),)])
    else:
        extra(_f, lambda d=_doms: [(_domain_values(*d[0], 2), ar(2, lo=d[1][0], hi=d[1][1])),
                                   (_domain_values(*d[0], 1)[0], list(_domain_values(*d[1], 3)))])
extra((np.abs, np.fabs), lambda: [([0.4, -0.7],)])
# operators on arrays (and numbers beside them), their in-place forms
for _f in (operator.add, operator.sub, operator.mul, operator.iadd, operator.isub, operator.imul):
    extra(_f, lambda: [(ar(3, 2), ar(3, 2)), (ar(3, 2), ar(2)), (ar(3), 0.7), (0.7, ar(3))])
for _f in (operator.truediv, operator.itruediv):
    extra(_f, lambda: [(ar(3, 2), ar(3, 2, lo=0.5, hi=2.0)), (ar(3), 1.3), (0.7, ar(3, lo=0.5, hi=2.0))])
for _f in (operator.pow, operator.ipow):
    extra(_f, lambda: [(ar(3, lo=0.5, hi=2.0), ar(3)), (ar(3, lo=0.5, hi=2.0), 2.5), (ar(2, 2, lo=0.5, hi=2.0), 3)])
extra(operator.mod, lambda: [(ar(3, lo=1.25, hi=1.55), ar(3, lo=1.0, hi=1.1))])
extra(operator.neg, lambda: [(ar(3),), (cz(3),)])
extra(operator.matmul, lambda: [(ar(2, 3), ar(3, 2)), (ar(3), ar(3, 2)), (cz(2, 2), cz(2))])
extra(ops.setitem_v, lambda: [(ar(4), 1, 0.7), (ar(3, 2), (slice(None), 0), ar(3)), (ar(4), [0, 2, 0], ar(3)),
                              (ar(4), slice(1, 3), [0.7, np.float64(-0.3)])])
extra(np.ndarray.fill, lambda: [(ar(3, 2), 0.7)])
extra(np.copyto, lambda: [(ar(3, 2), ar(2)), (ar(3), 0.7)])
extra(np.ufunc.at, lambda: [(np.add, ar(4), [0, 2, 0], ar(3)), (np.subtract, ar(4), [1, 1], 0.7)])
extra((np.copy, np.ndarray.copy), lambda: [(ar(3, 2),)])
extra(ops.mutated, lambda: [(None, ar(3)), (None, 0.7)])
extra(ops.returned, lambda: [(ar(3), ar(3), False), (0.7, 1.3, True)])
extra(ops.items_of, lambda: [(ar(3),), (0.7,)])
# complex values: holomorphic functions, the non-holomorphic ones, linear maps and products
_HOLO = (np.sin, np.cos, np.tan, np.sinh, np.cosh, np.tanh, np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10,
         np.log1p, np.sqrt, np.square, np.reciprocal, np.negative, np.positive, np.arcsin, np.arccos, np.arctan,
         np.arcsinh, np.arctanh)
extra(_HOLO, lambda: [(cz(3, 2),), (complex(cz(1)[0]),)])
extra((np.add, np.subtract, np.multiply, np.divide, np.power), lambda: [(cz(3, 2), cz(3, 2)), (cz(3), ar(3)),
                                                                       (ar(3, lo=0.3), cz(3))])
extra((np.abs, np.angle, np.real, np.imag, np.conj, abs), lambda: [(cz(3, 2),)])
extra((np.angle,), lambda: [(cz(3), True), (ar(3), False)])
extra((np.sum, np.mean, np.prod, np.cumsum, np.cumprod, np.transpose, np.ravel, np.fft.fft, np.fft.ifft),
      lambda: [(cz(3, 2),)])
extra((np.sum, np.mean, np.prod, np.cumsum, np.cumprod), lambda: [(cz(3, 2), 0)])
extra((np.dot, np.matmul, np.outer, np.vdot, np.inner, np.kron), lambda: [(cz(3), cz(3))])
extra((np.dot, np.matmul, np.inner, np.kron), lambda: [(cz(2, 3), cz(3))])
extra((np.linalg.inv, np.linalg.det), lambda: [(cz(3, 3) + 2 * np.eye(3),)])
extra(np.linalg.solve, lambda: [(cz(3, 3) + 2 * np.eye(3), cz(3))])
extra(np.einsum, lambda: [("ij,jk->ik", cz(2, 3), cz(3, 2)), ("ii", cz(3, 3))])
extra((operator.mul, operator.truediv, operator.add, operator.sub), lambda: [(cz(3), 0.4 + 0.3j), (0.4 - 0.3j, cz(3))])
extra(np.where, lambda: [(ar(3) > 0, cz(3), cz(3))])
# an out= array takes the value, never the tangent
extra((np.sum, np.mean), lambda: [(ar(3, 2), 0, None, np.zeros(2)), (ar(3, 2), None, np.float32)])
extra(np.cumsum, lambda: [(ar(3, 2), 0, None, np.zeros((3, 2)))])
extra(np.fft.fft, lambda: [(ar(4), None, -1, None, np.zeros(4, complex))])
extra(np.take, lambda: [(ar(4), [0, 2], None, np.zeros(2))])
extra(np.where, lambda: [(np.bool_(True), ar(3), ar(3)), ([True, False, True], ar(3), 0.5)])
extra((np.var, np.std, np.nansum, np.nanmean), lambda: [(cz(3, 2),), (cz(3, 2), 0)])
extra(np.linalg.norm, lambda: [(cz(3, 2),), (cz(3, 2), None, 0), (cz(4), 1)])
# the number rules that take tensors as well (builtin abs and pow)
extra(abs, lambda: [(torch.from_numpy(ar(3)),), (torch.from_numpy(cz(3)),), (ar(3),)])
extra(pow, lambda: [(torch.from_numpy(ar(3, lo=0.5, hi=2.0)), 2.5), (ar(3, lo=0.5, hi=2.0), 1.5)])


def _all_samples():
    yield from SAMPLES.items()
    yield from EXTRA.items()


def _samples():
    """(fn, rule, make, opts) for every sample whose rule is in scope."""
    out = []
    for fn, specs in _all_samples():
        rules = TABLE.lookup(fn) or ()
        if not any(in_scope(r) for r in rules):
            continue
        for spec in specs:
            if isinstance(spec, Program):
                continue
            make, opts = spec
            if opts.get("nograd") or opts.get("random"):
                continue
            for args in make():
                pre = opts.get("pre")

                def build(args=args, pre=pre):
                    if not pre:
                        return copy.deepcopy(args)
                    first = eval(f"lambda a0: {pre.format('a0')}", {"np": np, "torch": torch})(copy.deepcopy(args[0]))
                    return (first,) + copy.deepcopy(tuple(args[1:]))
                called = build()
                rule = select(fn, [kind_of(v) for v in called])
                if rule is None or not in_scope(rule) or not has_tangent(rule):
                    continue
                out.append((fn, rule, build, opts))
    return out


def _by_fn():
    groups = {}
    for fn, rule, build, opts in _samples():
        groups.setdefault(fn, []).append((rule, build, opts))
    return groups


_GROUPS = _by_fn()


@pytest.mark.parametrize("fn", list(_GROUPS), ids=[_fn_id(f) for f in _GROUPS])
def test_tangent_matches_central_differences(fn):
    failures = []
    for rule, build, opts in _GROUPS[fn]:
        try:
            errs = _check(fn, rule, build, opts)
        except Exception as e:   # collect every failing sample of this function
            errs = [f"{type(e).__name__}: {str(e)[:300]}"]
        failures += [f"{rule.describe()} on {_short(build())}: {e}" for e in errs]
    assert not failures, "\n".join(failures[:20])


# in-scope variants no sample reaches, and why
NOT_SAMPLED = {
    "trapezoid(ys, x, dx, axis) for kinds (A, many(A|L|N|P|PR|PT|R))": "no tangent (NO_TANGENT)",
    "copy(a, order, subok) for kinds (A|R, ...)": "numpy_shape.py's variant: inplace.py's np.copy(a), of the "
                                                  "same kinds, is chosen for every call",
    "ndarray.copy(a, order, subok) for kinds (A|R, ...)": "as copy(a, order, subok)",
    "neg(a) for kinds (many(A|C|M|N|R|T),) with one of M or (A|T, C) or (C, A|T)":
        "for kind M (a number or a tensor, known at run time only)",
    "through(old, new) for kinds (A|T, A|T)": "not a derivative of its arguments (new is old written in place "
                                              "under no_grad): tests/test_no_grad.py checks it against reverse mode",
    "through(old, new) for kinds (...,)": "as through(old, new) for kinds (A|T, A|T), for kinds known at run time",
}


def test_every_tangent_is_checked():
    reached = {id(r) for _, r, _, _ in _samples()}
    unchecked = sorted({r.describe() for r in _rules() if id(r) not in reached} - set(NOT_SAMPLED))
    assert not unchecked, "rules no sample reaches (add samples to EXTRA):\n" + "\n".join(unchecked)


def _short(args):
    return "(" + ", ".join(f"A{v.shape}{v.dtype.kind}" if isinstance(v, np.ndarray) else
                           type(v).__name__ for v in args) + ")"
