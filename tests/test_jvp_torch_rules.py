"""Forward mode of the torch rules: every rule of the torch tables has its tangent, and every
tangent agrees with central differences and with ``torch.func.jvp``.

In scope: the rules of torch's own callables (functions, ``Tensor`` methods,
``torch.nn.functional``, ``torch.linalg``, in-place methods) and the rules of Python operators
and the frontend's ops whose kinds require a tensor (``x ** y``, ``a @ b``, ``x += y`` on a
tensor, ``x[k]``, ``x[k] = v``, ``float(x)``). Rules whose pullbacks run for their effects (on
lists, dicts, objects) are out of scope: forward mode carries their values' tangents
structurally.

Each sample of ``test_rules_generic.SAMPLES`` (and the extra ones below: for rules it covers by
programs only, and for branches of the tangent helpers its samples miss) is checked through the rule's run-time tangent form along random directions:
all differentiable arguments at once, then each alone, in float64, and again with its
floating-point tensors made complex (central differences along a complex direction measure the
real-linear derivative, which is what a tangent is, holomorphic or not).
"""
import operator

import numpy as np
import pytest
import torch

from test_rules_generic import SAMPLES, Program, t, tdistinct, tp
from torchzygote.frontend import ops
from torchzygote.rules.registry import TABLE, select
from torchzygote.rules.tangents import diff_params, has_tangent, tangent_form, term
from torchzygote.values.kinds import kind_of

# ================================================================ which rules are in scope

# Python operators and frontend ops with torch rules (the variants whose kinds require a tensor)
OPERATORS = (operator.pow, operator.ipow, operator.matmul, operator.imatmul, operator.iadd, operator.isub,
             operator.imul, operator.itruediv, operator.ifloordiv, operator.getitem, ops.setitem_v, float)


def _module(fn):
    return getattr(fn, "__module__", None) or getattr(getattr(fn, "__objclass__", None), "__module__", "") or ""


def _needs_tensor(rule) -> bool:
    """Whether every call this variant takes has a tensor in a position that accepts tensors only."""
    return all(any(s == {"T"} for s in p.items) or (p.need is not None and p.need <= {"T"})
               for p in rule.patterns)


def in_scope(fn, rule) -> bool:
    if rule.effect:
        return False
    if _module(fn).split(".")[0] == "torch":
        return True
    return fn in OPERATORS and _needs_tensor(rule)


SCOPE = [(fn, r) for fn, rules in TABLE.rules.items() for r in rules if in_scope(fn, r)]


def _rid(fn, r):
    return f"{_module(fn)}.{r.name}[{' or '.join(map(str, r.patterns))}]"


def test_scope_is_the_torch_tables():
    names = {r.name for _, r in SCOPE}
    assert len(SCOPE) > 300
    for n in ("TensorBase.add_", "matmul", "setitem_v", "getitem", "linalg_solve", "cross_entropy", "einsum"):
        assert any(n in m for m in names), n
    # the number variants of the operators are the scalar table's, not in this scope
    assert not any(fn is operator.pow and not _needs_tensor(r) for fn, r in SCOPE)


def test_every_torch_rule_has_a_tangent():
    missing = [f"{_rid(fn, r)}: {[p for p in diff_params(r) if term(r, p) is None]}"
               for fn, r in SCOPE if not has_tangent(r)]
    assert not missing, "torch rules without a tangent term:\n" + "\n".join(missing)


def test_linear_rules_have_one_differentiable_parameter_and_no_explicit_term():
    for fn, r in SCOPE:
        if r.linear:
            assert len(r.grads) == 1 and not r.jvp, _rid(fn, r)


# ================================================================ samples

GEN = torch.Generator().manual_seed(13)


def spd(n, *batch):
    m = t(*batch, n, n)
    return m @ m.mT + n * torch.eye(n, dtype=torch.float64)


def kw(args, **kws):
    """A sample with keyword arguments (constants: they get no tangent)."""
    return args, {"kw": kws}


SYM = {"pre": "(({0} + {0}.mT) * 0.5)"}


def _extra():
    """Samples for in-scope rules that test_rules_generic checks by programs only, and for branches
    of the tangent helpers its samples do not reach (keyword arguments, reductions over several
    dims, zeros in products, losses' options, linear algebra's variants)."""
    key = torch.tensor([0, 2])
    zeros = torch.tensor([[0.5, 0.0, 2.0, -1.0], [1.5, 0.7, 0.0, 0.0], [0.3, -0.9, 1.1, 0.4]], dtype=torch.float64)
    F = torch.nn.functional
    ce_t = torch.tensor([0, 3, 1])
    S = dict(
        getitem=[(t(3, 4), (1, slice(None))), (t(3, 4), key), (t(3, 4), (slice(0, 2), key)),
                 (t(3, 4), t(3, 4) > 0), (t(2, 3, 4), (Ellipsis, 1))],
        setitem_v=[(t(3, 4), (0, slice(1, 3)), t(2)), (t(3, 4), key, t(4)), (t(3, 4), (1, 2), 1.5),
                   (t(3, 4), (slice(None), 1), t(3)), (t(3, 4), t(3, 4) > 0, 0.25), (t(3, 4), 1, t(1))],
        iadd=[(t(3, 4), t(3, 4)), (t(3, 4), t(4)), (t(3, 4), 1.5), (1.5, t(3, 4))],
        isub=[(t(3, 4), t(3, 4)), (t(3, 4), t(4)), (t(3, 4), 1.5), (1.5, t(3, 4))],
        imul=[(t(3, 4), t(3, 4)), (t(3, 4), t(4)), (t(3, 4), 1.5), (1.5, t(3, 4))],
        itruediv=[(t(3, 4), tp(3, 4)), (t(3, 4), tp(4)), (t(3, 4), 1.5), (1.5, tp(3, 4))],
        ifloordiv=[(t(3, 4) * 5, tp(3, 4))],
        pow=[(tp(3, 4), t(3, 4)), (tp(3, 4), 2.5), (1.7, t(3, 4)), (t(3, 4), 2)],
        ipow=[(tp(3, 4), t(4)), (tp(3, 4), 0.5)],
        float=[(t(1),), (t(()),)],
        max=[(tdistinct(2, 3, 4), 1), (tdistinct(3),)],
        var=[(t(3, 4), False), (t(2, 3, 4), (0, 2), True, True), kw((t(3, 4), 1), correction=0)],
        std=[(t(3, 4), False), (t(2, 3, 4), (0, 2), True, True), kw((t(3, 4), 1), correction=0)],
        prod=[(zeros,), (zeros, 1), (zeros, 0, True), (t(()),)],
        cumprod=[(zeros, 1), (zeros, 0)],
        einsum=[("ij,jk->ik", [t(2, 3), t(3, 4)]), ("bij,bjk->bik", t(2, 2, 3), t(2, 3, 4))],
        linalg_solve=[kw((spd(3), t(2, 3)), left=False), (spd(3, 2), t(2, 3)), (spd(3, 2), t(2, 3, 2))],
        linalg_cholesky=[((spd(3),), dict(SYM, kw={"upper": True})), ((spd(3, 2),), SYM)],
        linalg_det=[(spd(3, 2),)], linalg_inv=[(spd(3, 2),)],
        linalg_norm=[(t(3, 4), 2), (t(3, 4), "nuc"), (t(2, 3, 4), None, (1, 2)), (t(3, 4), float("inf"), 1)],
        norm=[(t(3, 4), "nuc"), (t(3, 4), float("inf"), 1), (t(2, 3, 4), 3, (0, 2), True)],
        linalg_vector_norm=[(t(3, 4), 0.5, (0, 1), True), (t(3, 4), float("inf"))],
        logsumexp=[(t(2, 3, 4), (0, 2))],
        cross_entropy=[kw((t(3, 4), ce_t), reduction="none"), kw((t(3, 4), ce_t), reduction="sum", weight=tp(4)),
                       kw((t(3, 4), ce_t), label_smoothing=0.2), (t(3, 4), torch.tensor([0, -100, 1])),
                       kw((t(3, 4), torch.softmax(t(3, 4), 1)), reduction="none"),
                       kw((t(3, 4), torch.softmax(t(3, 4), 1)), weight=tp(4), label_smoothing=0.1),
                       (t(4), torch.tensor(2)), (t(2, 4, 3), torch.tensor([[0, 1, 3], [2, 2, 0]]))],
        mse_loss=[kw((t(3, 4), t(3, 4)), reduction="none"), kw((t(3, 4), t(4)), reduction="sum"), (t(3, 4), t(4))],
        layer_norm=[(t(2, 3, 4), (3, 4), t(3, 4), t(3, 4)), (t(3, 4), (4,), None, t(4), 1e-3), (t(3, 4), (4,), t(4))],
        conv1d=[(t(2, 7), t(3, 2, 3), t(3)), (t(1, 4, 6), t(4, 2, 3), t(4), 1, 0, 1, 2),
                (t(1, 2, 7), t(3, 2, 3), t(3), 1, "same")],
        softmax=[(t(3, 4), 1, 3, torch.float64), (t(3, 4),), (t(()), 0)],
        log_softmax=[(t(3, 4), 1, 3, torch.float64), (t(3, 4),)],
        embedding=[(torch.tensor([0, 2, 2]), t(4, 3), 2)],
        sort=[kw((tdistinct(3, 4),), dim=1, descending=True, stable=True)], topk=[(tdistinct(3, 4), 2, 1, False)],
        matmul=[(t(2, 1, 2, 3), t(5, 3, 4)), (t(3), t(2, 3, 4))],
        addmm=[kw((t(2, 4), t(2, 3), t(3, 4)), beta=0.5, alpha=2.0)],
        clamp=[(t(3, 4), None, 0.3)],
        where=[(t(3, 4) > 0, 0.5, t(3, 4))],
        diag=[(t(3), 1), (t(4, 4), -1)],
        atleast_2d=[((t(3), t(())),)],
        linear=[(t(3), t(4, 3), t(4)), (t(2, 5, 3), t(4, 3), t(4))],
        cat=[((t(2, 3), torch.ones(1, 3, dtype=torch.int64)),)],
        tensor=[kw(([0.5, 1, 2.5],), dtype=torch.float64)],
        to=[(t(3, 4), torch.complex128)],
        take_along_dim=[(t(3, 4), torch.tensor([0, 5, 11]))],
        amax=[(tdistinct(2, 3, 4), (0, 2))],
    )
    out = {}
    for fn in (operator.getitem, ops.setitem_v, operator.iadd, operator.isub, operator.imul, operator.itruediv,
               operator.ifloordiv, operator.pow, operator.ipow, float, torch.max, torch.var, torch.std, torch.prod,
               torch.cumprod, torch.einsum, torch.linalg.solve, torch.linalg.cholesky, torch.linalg.det,
               torch.linalg.inv, torch.linalg.norm, torch.norm, torch.linalg.vector_norm, torch.logsumexp,
               F.cross_entropy, F.mse_loss, F.layer_norm, F.conv1d, F.softmax, F.log_softmax, F.embedding,
               torch.sort, torch.topk, torch.matmul, torch.addmm, torch.clamp, torch.where, torch.diag,
               torch.atleast_2d, F.linear, torch.cat, torch.tensor, torch.Tensor.to, torch.take_along_dim, torch.amax):
        name = getattr(fn, "__name__", "")
        out[fn] = [s if len(s) == 2 and isinstance(s[1], dict) else (s, {}) for s in S[name]]
    if torch.cuda.is_available():
        out[torch.Tensor.cuda] = [((t(3, 4),), {})]
    return out


def _samples(fn):
    out = []
    for spec in SAMPLES.get(fn, ()):
        if isinstance(spec, Program):
            continue
        make, opts = spec
        out += [(args, opts) for args in make()]
    return out + EXTRA.get(fn, [])


EXTRA = _extra()


CASES = [fn for fn in dict.fromkeys(fn for fn, _ in SCOPE)]


# ================================================================ values, directions, comparisons

def _is_float(v):
    return isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())


def _differentiable(v) -> bool:
    if type(v) in (tuple, list):
        return any(_differentiable(x) for x in v)
    return _is_float(v) or type(v) in (float, complex)


def _direction(v):
    """A random tangent for value ``v`` (None where it has no tangent space)."""
    if _is_float(v):
        d = torch.randn(v.shape, generator=GEN, dtype=torch.float64)
        if v.is_complex():
            d = torch.complex(d, torch.randn(v.shape, generator=GEN, dtype=torch.float64))
        return d.to(v.dtype)
    if type(v) is float:
        return float(torch.randn((), generator=GEN, dtype=torch.float64))
    if type(v) is complex:
        return complex(*torch.randn(2, generator=GEN, dtype=torch.float64).tolist())
    if type(v) in (tuple, list):
        ds = [_direction(x) for x in v]
        return type(v)(ds) if any(d is not None for d in ds) else None
    return None


def _axpy(v, h, d):
    """``v + h * d`` for a value and its tangent (None: v itself)."""
    if d is None:
        return v
    if type(v) in (tuple, list):
        return type(v)(_axpy(x, h, e) for x, e in zip(v, d))
    return v + h * d


def _copy(v):
    """A fresh copy of the arguments (in-place rules write into their first argument)."""
    if isinstance(v, torch.Tensor):
        return v.clone()
    if isinstance(v, np.ndarray):
        return v.copy()
    if type(v) in (tuple, list):
        return type(v)(_copy(x) for x in v)
    return v


def _leaves(v):
    """The floating-point leaves of a result (tensors, numbers), in order; None for the others."""
    if isinstance(v, torch.Tensor):
        return [v.detach() if _is_float(v) else None]
    if isinstance(v, bool) or v is None or isinstance(v, (int, str, torch.dtype)):
        return [None]
    if isinstance(v, (float, complex)):
        return [torch.tensor(v, dtype=torch.complex128 if isinstance(v, complex) else torch.float64)]
    if isinstance(v, (tuple, list)):
        return [x for e in v for x in _leaves(e)]
    raise TypeError(f"result of type {type(v)}")


def _tangent_leaves(ty, y):
    """The tangent's leaves in the order of ``y``'s (None or a missing item: zero)."""
    if isinstance(y, (tuple, list)) and not isinstance(y, torch.Tensor):
        ty = (None,) * len(y) if ty is None else ty
        assert isinstance(ty, (tuple, list)) and len(ty) == len(y), f"tangent {type(ty)} for {type(y)}"
        return [x for e, te in zip(y, ty) for x in _tangent_leaves(te, e)]
    leaf = _leaves(y)[0]
    if leaf is None:
        assert ty is None or (isinstance(ty, torch.Tensor) and not ty.any()), f"tangent {ty!r} of a non-float"
        return [None]
    if ty is None:
        return [torch.zeros_like(leaf)]
    ty = torch.as_tensor(ty)
    assert ty.shape == leaf.shape, f"tangent shape {tuple(ty.shape)}, value {tuple(leaf.shape)}"
    if not leaf.is_complex():
        assert not ty.is_complex(), "complex tangent of a real value"
    return [ty.detach()]


def _close(got, want, rtol, atol, what):
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            continue
        g, w = g.to(torch.complex128), w.to(torch.complex128)
        assert torch.allclose(g, w, rtol=rtol, atol=atol), \
            f"{what}, output {i}: max error {(g - w).abs().max().item():.3g}\n got {g}\n want {w}"


# ================================================================ the check

def _bind(rule, args, ds):
    """One tangent per parameter of ``rule`` (the vararg's as a tuple) from per-argument ones."""
    n = len(rule.params)
    tang = [ds[i] if i < len(args) else None for i in range(n)]
    if rule.vararg:
        tang.append(tuple(ds[n:]))
    return tuple(tang)


def _diff_positions(rule, args):
    ps = [rule.params[i] if i < len(rule.params) else rule.vararg for i in range(len(args))]
    return [i for i, p in enumerate(ps) if p in rule.grads and _differentiable(args[i])]


def _pre(opts):
    return eval(f"lambda a0: {opts['pre'].format('a0')}") if opts.get("pre") else (lambda v: v)


def _check(fn, rule, args, opts):
    pre = _pre(opts)
    h, rtol, atol = opts.get("h", 1e-6), max(opts.get("rtol", 1e-5), 1e-5), max(opts.get("atol", 1e-6), 1e-6)
    F, kws = tangent_form(rule), opts.get("kw", {})

    def value(xs):
        xs = _copy(list(xs))
        return fn(pre(xs[0]), *xs[1:], **kws)

    def tangent(xs, ds):
        xs, ds = _copy(list(xs)), list(ds)
        xs[0], ds[0] = pre(xs[0]), None if ds[0] is None else pre(ds[0])
        return F(None, _bind(rule, xs, ds), *xs, **kws)

    y0 = value(args)
    positions = _diff_positions(rule, args)
    sets = [positions] + ([[i] for i in positions] if len(positions) > 1 else [])
    if opts.get("random") or opts.get("nograd") or not positions:
        y, ty = tangent(args, [_direction(a) if i in positions else None for i, a in enumerate(args)])
        assert all(leaf is None or not leaf.any() for leaf in _tangent_leaves(ty, y))
        return
    for which in sets:
        ds = [_direction(a) if i in which else None for i, a in enumerate(args)]
        y, ty = tangent(args, ds)
        for a, b in zip(_leaves(y), _leaves(y0)):
            assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, equal_nan=True)), "value"
        got = _tangent_leaves(ty, y)
        plus = _leaves(value([_axpy(a, h, d) for a, d in zip(args, ds)]))
        minus = _leaves(value([_axpy(a, -h, d) for a, d in zip(args, ds)]))
        fd = [None if p is None else (p - m) / (2 * h) for p, m in zip(plus, minus)]
        _close(got, fd, rtol, atol, f"args {which} vs central differences")
        _check_torch_jvp(fn, args, kws, ds, pre, got, which)


# torch's own forward rule is wrong here (central differences agree with ours):
# F.silu on complex tensors conjugates its derivative, as its pullback should
TORCH_COMPLEX_JVP_WRONG = {torch.nn.functional.silu}


def _check_torch_jvp(fn, args, kws, ds, pre, got, which):
    """``torch.func.jvp`` on the same call, where torch can (tensor arguments only)."""
    if any(not isinstance(args[i], torch.Tensor) for i in which) or _holds_tensors_in_sequences(args):
        return
    if fn in TORCH_COMPLEX_JVP_WRONG and any(isinstance(a, torch.Tensor) and a.is_complex() for a in args):
        return
    xs = [_copy(a) for a in args]

    def f(*ts):
        zs = list(xs)
        for i, v in zip(which, ts):
            zs[i] = v
        out = fn(pre(zs[0]), *zs[1:], **kws)
        return tuple(out) if isinstance(out, tuple) else out
    try:
        _, want = torch.func.jvp(f, tuple(pre(xs[i]) if i == 0 else xs[i] for i in which),
                                 tuple(pre(ds[i]) if i == 0 else ds[i] for i in which))
    except Exception:   # torch has no forward rule for it (or refuses the call): nothing to compare
        return
    want = [w if g is not None else None for g, w in zip(got, _leaves(want))]
    _close(got, want, 1e-8, 1e-10, f"args {which} vs torch.func.jvp")


def _holds_tensors_in_sequences(args):
    return any(isinstance(a, (tuple, list)) and any(isinstance(x, torch.Tensor) for x in a) for a in args)


def _complexified(args):
    """The sample with its float64 tensors made complex (None where it has none)."""
    found = [False]

    def cx(v):
        if isinstance(v, torch.Tensor) and v.dtype == torch.float64:
            found[0] = True
            return torch.complex(v, 0.6 * torch.randn(v.shape, generator=GEN, dtype=torch.float64))
        if type(v) in (tuple, list):
            return type(v)(cx(x) for x in v)
        return v
    out = tuple(cx(a) for a in args)
    return out if found[0] else None


def _rules_hit(fn, args, opts):
    called = args if not opts.get("pre") else (_pre(opts)(args[0]),) + tuple(args[1:])
    return select(fn, [kind_of(v) for v in called])


@pytest.mark.parametrize("fn", CASES, ids=[_rid(fn, TABLE.rules[fn][0]).split("[")[0] for fn in CASES])
def test_tangent_matches_differences(fn):
    rules = [r for f, r in SCOPE if f is fn]
    covered, failures = set(), []
    for args, opts in _samples(fn):
        rule = _rules_hit(fn, args, opts)
        if rule is None or all(rule is not r for r in rules):
            continue
        covered.add(id(rule))
        # (a ``pre`` that symmetrises a matrix is written for real ones: no complex variant)
        for variant in (args, None if opts.get("pre", "{0}.clone()") != "{0}.clone()" else _complexified(args)):
            if variant is None or variant is not args and opts.get("random"):
                continue
            if variant is not args:
                try:   # torch (or the rule's kinds) may refuse complex arguments
                    fn(_pre(opts)(_copy(variant[0])), *_copy(list(variant[1:])), **opts.get("kw", {}))
                except Exception:
                    continue
                if _rules_hit(fn, variant, opts) is not rule:
                    continue
            try:
                _check(fn, rule, variant, opts)
            except Exception as e:
                kind = "complex" if variant is not args else "real"
                failures.append(f"{_rid(fn, rule)} {kind} {_short(variant)}: {type(e).__name__}: {str(e)[:600]}")
    assert not failures, "\n".join(failures)
    if fn is torch.Tensor.cuda and not torch.cuda.is_available():
        return   # (its samples need a GPU: _extra adds them where there is one)
    uncovered = [_rid(fn, r) for r in rules if id(r) not in covered and diff_params(r)]
    assert not uncovered, f"no sample reaches {uncovered}: add one"


def _short(args):
    def one(v):
        if isinstance(v, torch.Tensor):
            return f"T{tuple(v.shape)}{'c' if v.is_complex() else ''}"
        if type(v) in (tuple, list):
            return _short(v)
        return repr(v)
    return "(" + ", ".join(one(v) for v in args) + ")"


# ================================================================ cases the samples cannot express

ALIASED = [(torch.Tensor.add_, ["T", "T"]), (torch.Tensor.sub_, ["T", "T"]), (torch.Tensor.mul_, ["T", "T"]),
           (torch.Tensor.div_, ["T", "T"]), (torch.Tensor.pow_, ["T", "T"]), (torch.Tensor.copy_, ["T", "T"]),
           (operator.iadd, ["T", "T"]), (operator.isub, ["T", "T"]), (operator.imul, ["T", "T"]),
           (operator.itruediv, ["T", "T"]), (operator.ipow, ["T", "T"])]


@pytest.mark.parametrize("fn, kinds", ALIASED, ids=[f.__name__ for f, _ in ALIASED])
def test_in_place_write_of_a_tensor_into_itself(fn, kinds):
    # ``x.mul_(x)``, ``x *= x``: the terms read the argument as it was before the write
    x = tp(3, 4)
    d = _direction(x)
    F = tangent_form(select(fn, kinds))

    def g(v):
        v = v.clone()
        return fn(v, v)
    v = x.clone()
    y, ty = F(None, (d, d), v, v)
    h = 1e-6
    assert torch.allclose(y, g(x))
    assert torch.allclose(ty, (g(x + h * d) - g(x - h * d)) / (2 * h), rtol=1e-5, atol=1e-6)


def test_dropout_in_training_scales_the_tangent_by_its_mask():
    x = tp(50)
    d = _direction(x)
    for fn, args in ((torch.nn.functional.dropout, (x, 0.5, True)), (torch.dropout, (x, 0.5, True))):
        y, ty = tangent_form(select(fn, ["T", "R", "R"]))(None, (d, None, None), *args)
        assert torch.allclose(ty, d * y / x)
        assert bool((y == 0).any()) and bool((y != 0).any())
