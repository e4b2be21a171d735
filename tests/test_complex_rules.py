"""Complex inputs: every rule's reverse-mode gradient on complex arguments, against torch autograd
(torch rules) or central differences (NumPy, scipy.special and Python numbers' rules).

torch's convention for a real loss L of a complex z is the gradient ``dL/dRe z + i dL/dIm z``: a
holomorphic f pulls ``dy`` back as ``dy * conj(f'(z))``, and a real value's gradient is real. A rule
written for real numbers (``dy * f'(x)``) gives the conjugate, silently; one for a real result of a
complex argument (``abs``, ``var``, ``z.real``) must take the real part of a ``dy`` that a complex
factor after it made complex. So this test walks the rule table as ``test_jvp_torch_rules`` does:
each rule of a torch callable (and of the Python operators on tensors), of a NumPy or scipy callable,
and of Python numbers (math, cmath, operators, builtins), on the samples of
``test_rules_generic.SAMPLES`` (with ``test_jvp_torch_rules``' extra ones, and the operators' and
attributes' below) made complex: the float64 tensors and arrays, the Python floats (keyword ones
too), both, the tensors negated (the samples' domains are real ones; a complex formula's branch may
differ where the real part has the other sign), and a sample complex already as it is. A variant the
function refuses, or one another rule takes, is skipped; a ``GradientError`` (a rule refusing complex
arguments) is no wrong number. The gradient of ``Re(sum(y * w))``, random complex weights ``w`` on
every floating-point result, real ones too, is compared with torch autograd's on the same function,
or where torch has no complex backward (``F.silu``), for arrays and for Python numbers, with central
differences on the real and imaginary parts; through the rule inlined (generated code) and dispatched
at run time. A real argument's gradient must be real.
"""
import itertools
import linecache
import operator

import numpy as np
import pytest
import torch

import torchzygote as tz
from conftest import fd_gradient
from test_jvp_torch_rules import EXTRA, SCOPE, _copy, _module, _rid
from test_rules_generic import SAMPLES, Program, _declared, _fn_id, _Weights, a, t, tp
from torchzygote.errors import GradientError
from torchzygote.rules.registry import TABLE, select
from torchzygote.values.kinds import kind_of

# (torch and NumPy warn when a sample casts a complex value to a real one; some samples use aliases)
pytestmark = pytest.mark.filterwarnings("ignore:Casting complex values to real", "ignore::DeprecationWarning",
                                        "ignore:Implicit dimension choice", "ignore:Using a target size")

_GEN = torch.Generator().manual_seed(5)
_COUNTER = itertools.count()


# ================================================================ complex variants of a sample

def _cx_tensor(v):
    return torch.complex(v, 0.6 * torch.randn(v.shape, generator=_GEN, dtype=torch.float64))


def _cx_array(v):
    return v + 0.6j * torch.randn(np.shape(v), generator=_GEN, dtype=torch.float64).numpy()


def _cx(v, tensors, numbers, sign):
    if tensors and isinstance(v, torch.Tensor) and v.dtype == torch.float64:
        return _cx_tensor(sign * v)
    if tensors and isinstance(v, np.ndarray) and v.dtype == np.float64:
        return _cx_array(sign * v)
    if tensors and type(v) is np.float64:
        return np.complex128(complex(sign * v, -0.45))
    if numbers and type(v) is float:
        return complex(v, 0.35)
    if type(v) in (tuple, list):
        return type(v)(_cx(x, tensors, numbers, sign) for x in v)
    return v


VARIANTS = {"complex": (True, False, 1.0), "complex and numbers": (True, True, 1.0),
            "numbers": (False, True, 1.0), "negated": (True, False, -1.0)}


def _has_complex(v):
    if type(v) in (tuple, list):
        return any(_has_complex(x) for x in v)
    return isinstance(v, complex) or isinstance(v, torch.Tensor) and v.is_complex() or \
        isinstance(v, (np.ndarray, np.complexfloating)) and np.iscomplexobj(v)


def _variants(args, kw):
    """(name, arguments, keyword arguments) of each variant of a sample that changes something, and the
    sample itself where it is complex already (test_rules_generic's cmath samples)."""
    out = [("given", args, kw)] if _has_complex(args) else []
    for name, (tensors, numbers, sign) in VARIANTS.items():
        vs = tuple(_cx(v, tensors, numbers, sign) for v in args)
        ks = {k: _cx(v, tensors, numbers, sign) for k, v in kw.items()}
        if _changed(vs, args) or _changed(tuple(ks.values()), tuple(kw.values())):
            out.append((name, vs, ks))
    return out


def _changed(xs, ys):
    return any(x is not y and not (type(x) in (tuple, list) and not _changed(x, y)) for x, y in zip(xs, ys))


def _pre(opts):
    return eval(f"lambda a0: {opts['pre'].format('a0')}") if opts.get("pre") else (lambda v: v)


def _accepts(fn, args, opts):
    try:
        fn(_pre(opts)(_copy(args[0])), *_copy(list(args[1:])), **opts.get("kw", {}))
        return True
    except Exception:
        return False


def complex_cases(fn, rules, samples, limit=2):
    """The complex variants of ``fn``'s samples that a rule in ``rules`` takes and ``fn`` accepts, at
    most ``limit`` per rule and variant."""
    seen, out = {}, []
    for args, opts in samples:
        for name, v, kw in _variants(args, opts.get("kw", {})):
            vopts = dict(opts, kw=kw)
            rule = select(fn, [kind_of(x) for x in (_pre(opts)(v[0]),) + tuple(v[1:])] if v else [])
            key = (id(rule), name)
            if all(rule is not r for r in rules) or seen.get(key, 0) >= limit or not _accepts(fn, v, vopts):
                continue
            seen[key] = seen.get(key, 0) + 1
            out.append((v, vopts))
    return out


def _samples(fn, extra=()):
    """The extra samples (first: they reach what the others do not), then test_rules_generic's."""
    out = [(a, o) for a, o in extra if not o.get("random")]
    for spec in SAMPLES.get(fn, ()):
        if isinstance(spec, Program):
            continue
        make, opts = spec
        if not (opts.get("random") or opts.get("nograd")):
            out += [(args, opts) for args in make()]
    return out


# ================================================================ the functions compared

class _ComplexWeights(_Weights):
    """Random complex weights for every floating-point result, real ones too: the loss is
    ``Re(sum(y * w))``, so a real result's ``dy`` meets a complex factor first (``abs(z) * w``), as in
    user code; its gradient is ``Re(w)``."""

    def expr(self, v, path):
        name = f"W{len(self.env)}"
        if isinstance(v, torch.Tensor) and (v.is_complex() or v.is_floating_point()):
            self.env[name] = _cx_tensor(torch.randn(v.shape, generator=_GEN, dtype=torch.float64))
            return f"torch.real({path} * {name}).sum()"
        if isinstance(v, (np.ndarray, np.inexact)) and np.asarray(v).dtype.kind in "fc":
            self.env[name] = _cx_array(np.linspace(0.3, 1.1, np.size(v)).reshape(np.shape(v)))
            return f"np.sum(({path} * {name}).real)"
        if type(v) in (float, complex):
            return f"(({path}) * (0.3 + 0.8j)).real"
        if isinstance(v, (tuple, list)):
            parts = [p for p in (self.expr(x, f"{path}[{i}]") for i, x in enumerate(v)) if p is not None]
            return " + ".join(parts) if parts else None
        return super().expr(v, path)


def _functions(fn, args, opts):
    """``static``/``dynamic``: real scalar functions of ``args`` calling ``fn`` (statically, and through a
    dict at run time); None where its result has nothing to weigh."""
    pre, kws = opts.get("pre"), opts.get("kw", {})
    params = [f"a{i}" for i in range(len(args))]
    call = [pre.format("a0")] + params[1:] if pre else list(params)
    y = fn(_pre(opts)(_copy(args[0])), *_copy(list(args[1:])), **kws)
    w = _ComplexWeights()
    out = w.expr(y, "y")
    if out is None:
        return None
    ps, cs = ", ".join(params), ", ".join(call + [f"{k}=KW[{k!r}]" for k in kws])
    env = dict(w.env, FN=fn, TBL={"f": fn}, KW=kws, torch=torch, np=np)
    src = (f"def static_call({ps}):\n    y = FN({cs})\n    return {out}\n"
           f"def dynamic_call({ps}):\n    y = TBL['f']({cs})\n    return {out}\n")
    fname = f"<complex rule sample {_fn_id(fn)} #{next(_COUNTER)}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    exec(compile(src, fname, "exec"), env)
    return env["static_call"], env["dynamic_call"]


def _is_leaf(v):
    if isinstance(v, torch.Tensor):
        return v.is_floating_point() or v.is_complex()
    return isinstance(v, (np.ndarray, np.floating, np.complexfloating)) and np.asarray(v).dtype.kind in "fc"


def _leaves(args):
    """(position, index in a sequence or None, value) of every floating-point tensor, array and NumPy
    scalar argument."""
    out = []
    for i, v in enumerate(args):
        if _is_leaf(v):
            out.append((i, None, v))
        elif type(v) in (tuple, list):
            out += [(i, j, x) for j, x in enumerate(v) if _is_leaf(x)]
    return out


def _with(args, leaves, values):
    xs = [list(v) if type(v) in (tuple, list) else v for v in args]
    for (i, j, _), x in zip(leaves, values):
        if j is None:
            xs[i] = x
        else:
            xs[i][j] = x
    return [type(args[i])(x) if type(args[i]) in (tuple, list) else x for i, x in enumerate(xs)]


def _torch_grads(f, args, leaves):
    """torch autograd's gradients of ``f`` for the tensor leaves (None where it has none to give)."""
    if not leaves or not all(isinstance(v, torch.Tensor) for _, _, v in leaves):
        return None
    xs = [v.detach().clone().requires_grad_(True) for _, _, v in leaves]
    try:   # (clones: an in-place rule writes into its first argument)
        loss = f(*_with(_copy(args), leaves, [x.clone() for x in xs]))
        if not isinstance(loss, torch.Tensor):   # (through a Python number: Tensor.item)
            return None
        if not loss.requires_grad:   # (the result does not depend on them)
            return [torch.zeros_like(x) for x in xs]
        gs = torch.autograd.grad(loss, xs, allow_unused=True)
    except RuntimeError as e:
        if "does not support automatic differentiation" in str(e) or "not implemented for" in str(e):
            return None
        raise
    return [torch.zeros_like(x) if g is None else g for x, g in zip(xs, gs)]


def _fd_leaf(f, args, leaves, k, h=1e-6):
    """Central differences of ``f`` in each entry of leaf ``k`` (real and imaginary parts of a complex
    one): the gradient ``dL/dRe + i dL/dIm``, as an array."""
    x = leaves[k][2]
    cplx = x.is_complex() if isinstance(x, torch.Tensor) else np.iscomplexobj(x)
    xa = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x)
    g = np.zeros(xa.shape, dtype=np.complex128 if cplx else np.float64)

    def at(j, step):
        e = np.zeros(xa.shape, dtype=g.dtype)
        e.reshape(-1)[j] = step
        v = torch.as_tensor(xa + e) if isinstance(x, torch.Tensor) else xa + e if isinstance(x, np.ndarray) \
            else type(x)((xa + e).item())
        vs = [v if i == k else _copy(u) for i, (_, _, u) in enumerate(leaves)]
        return complex(_item(f(*_with(_copy(args), leaves, vs)))).real
    for j in range(g.size):
        for u in ((1.0, 1j) if cplx else (1.0,)):
            g.reshape(-1)[j] += u * (at(j, h * u) - at(j, -h * u)) / (2 * h)
    return g


def _item(v):
    return v.item() if isinstance(v, (torch.Tensor, np.ndarray, np.generic)) else v


def _pick(g, leaf):
    i, j, _ = leaf
    return g[i] if j is None or g[i] is None else g[i][j]


def _as_array(v):
    return np.asarray(v.detach().resolve_conj().resolve_neg() if isinstance(v, torch.Tensor) else v)


def _mismatch(got, want, leaf, rtol, atol):
    """Why ``got`` is not the gradient ``want`` of ``leaf`` (None where it is)."""
    want = _as_array(want)
    if got is None:
        return None if not want.any() else f"torchzygote None, want {want.reshape(-1)[:3].tolist()}"
    got = _as_array(got)
    if got.dtype.kind == "c" and not np.iscomplexobj(_as_array(leaf[2])):
        return f"the gradient of a real argument is complex: {got.reshape(-1)[:3].tolist()}"
    if got.shape != want.shape:
        return f"torchzygote of shape {got.shape}, want {want.shape}"
    if np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
        return None
    err = np.abs(got - want).max()
    return f"max error {err:.3g}: torchzygote {got.reshape(-1)[:3].tolist()}, want {want.reshape(-1)[:3].tolist()}"


# where torch's gradient is by convention not the derivative (central differences disagree with it)
NOT_THE_DERIVATIVE = {
    # the rows of padding_idx get no gradient
    torch.nn.functional.embedding: lambda args, kw: len(args) > 2 and args[2] is not None or
    kw.get("padding_idx") is not None,
}


def check(fn, args, opts):
    """torchzygote's gradient of a real loss of ``fn(*args)``, inlined and dispatched, against torch
    autograd's or central differences."""
    fs = _functions(fn, args, opts)
    if fs is None:
        return
    static, dynamic = fs
    leaves = _leaves(args)
    h, rtol, atol = opts.get("h", 1e-6), max(opts.get("rtol", 1e-5), 1e-5), max(opts.get("atol", 1e-6), 1e-6)
    # (torch autograd rounds its gradient through a low-precision result: the sample's tolerances)
    want, tol = _torch_grads(static, args, leaves), (opts.get("rtol", 1e-6), opts.get("atol", 1e-8))
    if want is None:   # arrays, or torch has no complex backward: central differences
        if fn in NOT_THE_DERIVATIVE and NOT_THE_DERIVATIVE[fn](args, opts.get("kw", {})):
            return
        want, tol = [_fd_leaf(static, args, leaves, k, h) for k in range(len(leaves))], (rtol, atol)
    # (a number a rule declares no gradient for is a constant to it, as in test_rules_generic)
    called = (_pre(opts)(args[0]),) + tuple(args[1:])
    numbers = [i for i in _declared(fn, called) if i < len(args) and type(args[i]) in (float, complex)]
    # (copies: a rule without ``pre`` may write into its first argument)
    fd = fd_gradient(lambda *xs: static(*_copy(xs)), args, h=h, which=set(numbers)) if numbers else None
    for f in (static, dynamic):
        g = tz.gradient(f, *_copy(args))
        for k, leaf in enumerate(leaves):
            why = _mismatch(_pick(g, leaf), want[k], leaf, *tol)
            assert why is None, f"{f.__name__}: argument {leaf[:2]}: {why}"
        for i in numbers:
            got, w = g[i], complex(_item(fd[i]))
            assert type(args[i]) is complex or not isinstance(got, complex), \
                f"{f.__name__}: the gradient {got!r} of the real number argument {i} is complex"
            assert abs(complex(0 if got is None else _item(got)) - w) <= atol + rtol * abs(w), \
                f"{f.__name__}: number argument {i}: torchzygote {got!r} vs central differences {w!r}"


def _check_all(fn, cases):
    failures = []
    for args, opts in cases:
        try:
            check(fn, args, opts)
        except GradientError:   # a refusal (decompositions of complex matrices) is not a wrong number
            continue
        except Exception as e:   # collect every failing variant of this function
            failures.append(f"{_fn_id(fn)}{_short(args)}: {type(e).__name__}: {str(e)[:500]}")
    assert not failures, "\n".join(failures)


def _short(args):
    def one(v):
        if isinstance(v, torch.Tensor):
            return f"T{tuple(v.shape)}{'c' if v.is_complex() else ''}"
        if isinstance(v, np.ndarray):
            return f"A{v.shape}{'c' if v.dtype.kind == 'c' else ''}"
        if type(v) in (tuple, list):
            return _short(v)
        return repr(v)[:24]
    return "(" + ", ".join(one(v) for v in args) + ")"


# ================================================================ torch

TORCH = list(dict.fromkeys(fn for fn, _ in SCOPE))
# numbers passed by keyword (their complex variants: the ``numbers`` ones)
_ALPHA = [((t(3, 4), t(3, 4)), {"kw": {"alpha": 1.5}}), ((t(3, 4), t(4)), {"kw": {"alpha": -0.5}})]
_ALPHA_IN_PLACE = [(args, dict(opts, pre="{0}.clone()")) for args, opts in _ALPHA]
TORCH_EXTRA = {torch.add: _ALPHA, torch.sub: _ALPHA, torch.rsub: _ALPHA, torch.Tensor.add: _ALPHA,
               torch.Tensor.sub: _ALPHA, torch.Tensor.add_: _ALPHA_IN_PLACE, torch.Tensor.sub_: _ALPHA_IN_PLACE}


@pytest.mark.parametrize("fn", TORCH, ids=[_rid(fn, TABLE.rules[fn][0]).split("[")[0] for fn in TORCH])
def test_torch_rule_on_complex(fn):
    rules = [r for f, r in SCOPE if f is fn]
    _check_all(fn, complex_cases(fn, rules, _samples(fn, EXTRA.get(fn, []) + TORCH_EXTRA.get(fn, []))))


# ================================================================ NumPy and scipy.special

def _numpy_rule(fn, rule):
    return not rule.effect and (isinstance(fn, np.ufunc) or _module(fn).split(".")[0] in ("numpy", "scipy"))


COPY = {"pre": "{0}.copy()"}
# augmented assignment on arrays writes into the left one (test_rules_generic checks it by programs)
NUMPY_EXTRA = {f: [((a(3, 2), a(3, 2)), COPY), ((a(3, 2), a(2)), COPY), ((a(3, 2), 1.5), COPY)]
               for f in (operator.iadd, operator.isub, operator.imul, operator.itruediv)}
NUMPY_EXTRA[operator.ipow] = [((a(3, 2, lo=0.3, hi=2.0), a(3, 2)), COPY), ((a(3, 2, lo=0.3, hi=2.0), 1.5), COPY)]
NUMPY_SCOPE = [(fn, r) for fn, rules in TABLE.rules.items() for r in rules
               if _numpy_rule(fn, r) or fn in NUMPY_EXTRA and "A" in str(r.patterns[0])]
NUMPY = list(dict.fromkeys(fn for fn, _ in NUMPY_SCOPE))


@pytest.mark.parametrize("fn", NUMPY, ids=[_fn_id(f) for f in NUMPY])
def test_numpy_rule_on_complex(fn):
    rules = [r for f, r in NUMPY_SCOPE if f is fn]
    _check_all(fn, complex_cases(fn, rules, _samples(fn, NUMPY_EXTRA.get(fn, []))))


# ================================================================ Python operators on tensors and arrays

def _pairs(x, y):
    """Operands for a binary operator: tensors (``x``/``y`` make them), arrays, and numbers beside them."""
    return lambda: [(x(3, 4), y(3, 4)), (x(3, 4), y(4)), (x(3, 4), 1.5), (1.5, y(3, 4)),
                    (x(3, 4).numpy(), y(3, 4).numpy()), (x(3, 4).numpy(), 1.5), (1.5, y(3, 4).numpy())]


# (the operators' number rules are test_rules_generic's; these are their variants for tensors and arrays)
OPERATORS = {
    operator.add: _pairs(t, t), operator.sub: _pairs(t, t), operator.mul: _pairs(t, t),
    operator.truediv: _pairs(t, tp), operator.pow: _pairs(tp, t),
    operator.neg: lambda: [(t(3, 4),), (t(3, 4).numpy(),)], operator.pos: lambda: [(t(3, 4),), (t(3, 4).numpy(),)],
    abs: lambda: [(t(3, 4),), (t(3, 4).numpy(),)],
    operator.matmul: lambda: [(t(2, 3), t(3, 4)), (t(2, 3).numpy(), t(3, 4).numpy()), (t(3).numpy(), t(3).numpy())],
    # the real views of a complex value (attributes)
    getattr: lambda: [(v, name) for v in (t(3, 4), t(3, 4).numpy(), 0.7) for name in ("real", "imag")],
}


@pytest.mark.parametrize("fn", list(OPERATORS), ids=[f.__name__ for f in OPERATORS])
def test_operator_on_complex(fn):
    _check_all(fn, complex_cases(fn, TABLE.rules[fn], [(args, {}) for args in OPERATORS[fn]()]))


# ================================================================ Python numbers (math, cmath, operators, builtins)

def _number_rule(rule):
    """A variant for Python numbers only (their samples: test_rules_generic's numbers, made complex)."""
    return not rule.effect and all(all(s <= set("RCN") for s in p.items) and (p.rest is None or p.rest <= set("RCN"))
                                   for p in rule.patterns)


NUMBERS = [fn for fn, rules in TABLE.rules.items() if _module(fn) in ("math", "cmath", "_operator", "builtins")
           and any(_number_rule(r) for r in rules)]


@pytest.mark.parametrize("fn", NUMBERS, ids=[_fn_id(f) for f in NUMBERS])
def test_number_rule_on_complex(fn):
    _check_all(fn, complex_cases(fn, [r for r in TABLE.rules[fn] if _number_rule(r)], _samples(fn)))
