"""Zygote's API in Python: ``gradient``, ``pullback``, ``derivative``, ``Params``...

Each call differentiates the function through the same transform; called
inside differentiated code these functions are themselves differentiated
(the stand-ins at the bottom are lifted), which gives nested AD.
"""
from __future__ import annotations

import time
import types
from collections import namedtuple
from typing import Any, Callable, Optional, Tuple

import torch
import torch as _torch

from .ad import dispatch
from .ad.binding import bind_function
from .ad.handlers import lift_as
from .ad.collector import hold as _hold_collection, release as _release_collection
from .ad.cache import _Parameter, _Tensor, _by_type, entry, forward
from .ad.dispatch import J, Jkw
from .rules.container_backs import seed_slots
from .values.algebra import seed
from .values.context import Context
from .params import Grads, Params
from .values.kinds import has_identity
from .torch_transforms import refuse_inside_torch_grad
from .values.materialize import PLAIN, materialize
from .values.outside import outside_data
from .errors import GradientError, add_user_frames
from .frontend.lift import lift
from .rules.registry import TABLE as _TABLE, nondiff, register_adjoint, register_dispatch, register_jvp
from .ad.jvp_dispatch import Fkw, lifted
from .forward import jvp as _jvp

_FunctionType = types.FunctionType

WithGradient = namedtuple("WithGradient", ["val", "grad"])

CHECK: Optional[Callable] = None   # check.checked while every top-level gradient is checked (check.set_check)


_grad_enabled = _torch.is_grad_enabled
_functorch_active = _torch._C._are_functorch_transforms_active
_set_grad_enabled = _torch._C._set_grad_enabled


# Whether a function's gradient is long is measured on its second call (the first includes the
# transform); for short ones holding off the collector (ad/collector.py) would cost more than it saves.
_LONG = {}          # id of the code object (or the callable's type) -> (it, hold off collection for its gradient calls?)
_FIRST, _MEASURE = object(), object()   # states before that is known
_LONG_S = 1e-3      # a gradient call this long keeps enough objects for it to pay
_clock = time.perf_counter


def _quiet(key, fn, *a):
    """Run ``fn(*a)`` for the gradient of ``key`` (a function's code) with torch's autograd
    off (the gradient is our code, and torch ops run faster without recording), and for a
    long one with automatic garbage collection held off; both are restored after, also
    after an error."""
    mode, state, t = _begin(key)
    try:
        return fn(*a)
    finally:
        if state is not False:
            _settle(key, state, t)
        if mode:
            _set_grad_enabled(True)


def _begin(key):
    """Before a gradient call: torch's autograd off, the collector held for a function whose
    calls are long; returns what ``_settle`` and the caller restore."""
    mode = _grad_enabled()
    if mode:
        if _functorch_active():
            refuse_inside_torch_grad(key)
        _set_grad_enabled(False)
    state = _state(key)
    if state is True:
        _hold_collection()
    return mode, state, (_clock() if state is _MEASURE else 0.0)


def _state(key):
    """What is known of ``key``'s gradient calls: ``_FIRST``, ``_MEASURE``, or whether they are long."""
    e = _LONG.get(id(key))
    return e[1] if e is not None and e[0] is key else _FIRST   # (an id a dead code had is another code's)


def _settle(key, state, t: float) -> None:
    """After a gradient call: release the collector it held, or learn whether this
    function's calls are long enough to hold it (the first call only arms the measurement)."""
    if state is True:
        _release_collection()
    elif state is _FIRST:
        _LONG[id(key)] = (key, _MEASURE)
    elif state is _MEASURE:
        _LONG[id(key)] = (key, _clock() - t > _LONG_S)


def _key(f):
    """``_LONG``'s key for ``f``: its code object, else its type (``_LONG`` holds it under its id:
    a code object's hash is computed anew each time, and holding it keeps its id from being
    reused by a later code, which would inherit its state)."""
    code = getattr(f, "__code__", None)
    return type(f) if code is None else code


def _call(ctx: Context, f, args, kwargs):
    """Differentiate ``f(*args, **kwargs)`` with respect to ``args``: keyword arguments
    are constants, and no gradient is computed for them."""
    ctx.data = outside_data(f, args, ctx.params)
    try:
        if not kwargs:
            if type(f) is types.FunctionType:
                code = f.__code__
                if code.co_argcount == len(args) and not code.co_flags & dispatch.VARFLAGS and \
                        not code.co_kwonlyargcount:
                    fwd = forward(f, args)  # the top level may mutate its own arguments
                    if fwd is not None:
                        return fwd(ctx, f, *args)
            return J(ctx, f, *args)
        if type(f) is types.FunctionType and not dispatch.torch_internal(f):
            flat, unbind = bind_function(f, args, kwargs)
            consts = frozenset(i for i, (kind, _) in enumerate(unbind.sources) if kind in "kdx")
            y, back = entry(f, flat, consts).fwd(ctx, f, *flat)
            return y, lambda dy: unbind(ctx, flat, back(dy), len(args), None)
        y, back = Jkw(ctx, f, args, kwargs)
        return y, lambda dy: back(dy)[0]
    except Exception as e:
        add_user_frames(e)
        raise


def _run_back(ctx: Context, back, dy, args, y=None) -> tuple:
    ctx.grads = {}
    if y is not None:
        seed_slots(ctx, y, dy)  # lists, dicts, objects in the output: their gradient lives in slots
    try:
        g = back(dy)
    except Exception as e:
        add_user_frames(e)
        raise
    # numbers' plain gradients are their adjoints as they are (materialize's first case, without a call)
    return tuple([gi if type(a) in PLAIN and type(gi) in PLAIN else materialize(ctx, a, gi)
                  for a, gi in zip(args, g)])


def pullback(f: Callable, *args, **kwargs) -> Tuple[Any, Callable]:
    """``y, back = pullback(f, *args)``; ``back(dy)`` returns one gradient per argument.

    ``back`` may be called any number of times (``jacobian`` does). With a ``Params``
    argument and a zero-argument ``f``, ``back(dy)`` returns ``Grads``."""
    if len(args) == 1 and type(args[0]) is Params and not kwargs:
        return _implicit_pullback(f, args[0])
    if getattr(getattr(f, "__code__", None), "co_flags", 0) & dispatch.CO_GENERATOR_LIKE:
        lift(f)  # names the construct ('yield', 'async') and where it is
    if CHECK:  # TORCHZYGOTE_CHECK=1 / set_check(True): compare with central differences (check.py)
        return CHECK(pullback, f, args, kwargs)
    ctx = Context()
    key = _key(f)
    y, back = _quiet(key, _call, ctx, f, args, kwargs)
    return y, lambda dy: _quiet(key, _run_back, ctx, back, dy, args, y)


def withgradient(f: Callable, *args, **kwargs) -> WithGradient:
    """The value of ``f(*args)`` and its gradient, from one forward pass."""
    if len(args) == 1 and type(args[0]) is Params and not kwargs:
        return _implicit(f, args[0])
    code = getattr(f, "__code__", None)
    if CHECK or code is not None and code.co_flags & dispatch.CO_GENERATOR_LIKE:
        y, back = pullback(f, *args, **kwargs)
        return WithGradient(y, back(seed(y)))
    return _quiet(_key(f), _withgradient, f, args, kwargs)   # (one ``_quiet``: see ``_implicit``)


def _withgradient(f, args, kwargs) -> WithGradient:
    ctx = Context()
    y, back = _call(ctx, f, args, kwargs)
    return WithGradient(y, _run_back(ctx, back, seed(y), args, y))


def _gradient(f, args, kwargs) -> tuple:
    ctx = Context()
    y, back = _call(ctx, f, args, kwargs)
    return _run_back(ctx, back, 1.0 if type(y) is float else seed(y), args)


def gradient(f: Callable, *args, **kwargs):
    """The gradient of a scalar-valued ``f`` at ``args``: a tuple with one entry per
    argument, ``None`` where it has none. With a ``Params`` argument and a
    zero-argument ``f``, returns ``Grads`` for the implicit parameters."""
    n = len(args)
    if n == 1:
        a0 = args[0]
        t0 = type(a0)
        if t0 is Params and not kwargs:
            return _implicit(f, a0).grad
    if type(f) is _FunctionType and not kwargs and not CHECK and n < 3:
        # the warm path of a plain function of one or two arguments whose types decide their
        # kinds: cache.forward (its key: cache.type_key) in this frame
        code = f.__code__
        if n == 1:
            key = (id(code), t0) if t0 is not _Tensor and t0 is not _Parameter else (id(code), t0, a0.dim(), a0.dtype)
        elif n == 2:
            a0, a1 = args
            t0, t1 = type(a0), type(a1)
            if t0 is not _Tensor and t0 is not _Parameter and t1 is not _Tensor and t1 is not _Parameter:
                key = (id(code), t0, t1)
            elif isinstance(a0, _Tensor):
                key = (id(code), t0, t1, a0.dim(), a1.dim(), a0.dtype, a1.dtype) if isinstance(a1, _Tensor) else \
                    (id(code), t0, t1, a0.dim(), None, a0.dtype, None)
            else:
                key = (id(code), t0, t1, None, a1.dim(), None, a1.dtype)
        else:
            key = (id(code),)
        e = _numbers.get(key)
        if e is None or not (e.unguarded and e.version == _TABLE.version or e.valid(f)):
            e = _by_type.get(key)
            if e is None or e.nargs != n or e.fwd is None or e.arg_guards or \
                    not (e.unguarded and e.version == _TABLE.version or e.valid(f)):
                e = None
            else:
                s = _LONG.get(id(code))
                if s is None or s[0] is not code or s[1] is not False or "_numbers_only" not in e.fwd.__globals__:
                    return _warm_gradient(e.fwd, f, args, code)
                _numbers[key] = e
        if e is not None:
            # a short function of Python numbers whose code reads no context (codegen.numbers_only):
            # no tensor is made, so torch's grad mode is left as it is, and no collector is held
            try:
                y, back = e.fwd(None, f, *args)
                g = back(1.0 if type(y) is float else seed(y))
            except Exception as e:
                add_user_frames(e)
                raise
            if n == 1 and t0 in PLAIN and type(g[0]) in PLAIN or \
                    n == 2 and t0 in PLAIN and t1 in PLAIN and type(g[0]) in PLAIN and type(g[1]) in PLAIN:
                return g   # numbers' gradients are their adjoints as they are (see _run_back)
            return _materialized(Context(), args, g)
    code = getattr(f, "__code__", None)
    if code is not None and code.co_flags & dispatch.CO_GENERATOR_LIKE:
        return pullback(f, *args, **kwargs)  # raises, naming the construct
    if CHECK:
        return CHECK(gradient, f, args, kwargs)
    return _quiet(type(f) if code is None else code, _gradient, f, args, kwargs)


_numbers: dict = {}   # cache.type_key -> the entry of a short function of Python numbers (gradient's first look)


def _warm_gradient(fwd, f, args, code) -> tuple:
    """``gradient``'s warm path for a transform found in the cache: ``_quiet``, ``_gradient``,
    ``_call`` and ``_run_back`` in one frame (each of those calls was a tenth of a small
    function's gradient), the same steps in the same order."""
    mode, state, t = _begin(code)
    try:
        ctx = Context()
        ctx.data = outside_data(f, args, None)
        try:
            y, back = fwd(ctx, f, *args)
        except Exception as e:
            add_user_frames(e)
            raise
        dy = 1.0 if type(y) is float else seed(y)
        ctx.grads = {}
        try:
            g = back(dy)
        except Exception as e:
            add_user_frames(e)
            raise
        return _materialized(ctx, args, g)
    finally:
        if state is not False:
            _settle(code, state, t)
        if mode:
            _set_grad_enabled(True)


def _materialized(ctx: Context, args, g) -> tuple:
    """The gradients as the user sees them; numbers' are their adjoints as they are (see ``_run_back``)."""
    if len(g) == len(args) == 1:
        g0 = g[0]
        return (g0 if type(args[0]) in PLAIN and type(g0) in PLAIN else materialize(ctx, args[0], g0),)
    return tuple([gi if type(a) in PLAIN and type(gi) in PLAIN else materialize(ctx, a, gi)
                  for a, gi in zip(args, g)])


def derivative(f: Callable) -> Callable:
    """``f'``: the derivative of a function of one argument (nestable: ``derivative(derivative(f))``)."""
    def df(x):
        return gradient(f, x)[0]
    df.__name__ = f"{getattr(f, '__name__', 'f')}'"
    df.__qualname__ = df.__name__
    return df


# ---------------------------------------------------------------- implicit parameters

def _implicit_pullback(f, ps: Params):
    ctx = Context(ps)
    key = _key(f)
    y, back = _quiet(key, _call, ctx, f, (), None)
    return y, lambda dy: _quiet(key, _implicit_grads, ctx, back, dy, ps)


def _implicit_grads(ctx: Context, back, dy, ps: Params) -> Grads:
    ctx.grads, ctx.pgrads, ctx.pown, ctx.tensor_grads = {}, {}, {}, {}
    back(dy)
    return Grads(ctx.pgrads, ps)


def _implicit(f, ps: Params) -> WithGradient:
    # (forward and pullback in one ``_quiet``: a collector held for the forward alone would, once
    # released, traverse every value the pullback keeps before the pullback frees them)
    return _quiet(_key(f), _implicit_run, f, ps)


def _implicit_run(f, ps: Params) -> WithGradient:
    ctx = Context(ps)
    y, back = _call(ctx, f, (), None)
    return WithGradient(y, _implicit_grads(ctx, back, seed(y), ps))


# ---------------------------------------------------------------- rules from users

def adjoint(f: Callable) -> Callable:
    """Define the pullback of ``f`` (Zygote's ``@adjoint``)::

        @adjoint(add)
        def _(a, b):
            return add(a, b), lambda dy: (dy, dy)

    The decorated function takes ``f``'s arguments and returns ``(y, pullback)``;
    the pullback returns one gradient per argument (``None`` for none). It takes
    precedence over differentiating ``f``'s source, and works for builtins."""
    def register(rule: Callable) -> Callable:
        register_adjoint(f, _counted(f, rule))
        dispatch.COMPUTES.add(f)   # (under torch.no_grad() it runs as it is)
        return rule
    return register


def _counted(f, rule):
    """``rule``, whose pullback must return one gradient per argument (a tuple; a single
    argument's gradient may be returned bare): too few or too many is an error naming the
    rule, not a silently dropped or missing gradient. A result without a gradient (unused) has
    none for the arguments, as Zygote's ``back(nothing)``: the user's pullback is not called with None."""
    def counted_rule(*args, **kw):
        y, pb = rule(*args, **kw)

        def back(dy):
            n = len(args)
            if dy is None:
                return (None,) * n
            g = pb(dy)
            if type(g) is tuple and len(g) in (n, n + len(kw)) or type(g) is not tuple and n == 1 and not kw:
                return g
            code = getattr(rule, "__code__", None)
            got = f"{len(g)} gradient{'s' if len(g) != 1 else ''}" if type(g) is tuple else f"a {type(g).__name__}"
            raise GradientError(
                f"the pullback of the custom rule for {getattr(f, '__qualname__', f)!r} returned {got} for "
                f"{n} argument{'s' if n != 1 else ''}; it must return a tuple with one gradient per argument "
                f"(None for an argument without one)",
                (code.co_filename, code.co_firstlineno) if code is not None else None)
        return y, back
    counted_rule.__wrapped__ = rule
    return counted_rule


def nograd(f: Callable) -> Callable:
    """Mark ``f`` as carrying no gradient: it runs as is, and its result is a constant."""
    nondiff(f)
    return f


def dropgrad(x):
    """``x``, with its gradient dropped."""
    return x


def ignore(f: Callable):
    """Run ``f()`` without differentiating it (Zygote's ``ignore``)."""
    return f()


def hook(f: Callable, x):
    """``x``, whose gradient is passed through ``f`` on the way back (``hook(lambda g: -g, x)``)."""
    return x


def checkpoint(f: Callable, *args):
    """``f(*args)``, keeping nothing for the pullback: the forward is re-run when
    the gradient is needed (trading compute for memory)."""
    return f(*args)


def nestlevel() -> int:
    """How many gradients are being taken around this call (the seeds' example)."""
    return 0


# ---------------------------------------------------------------- their rules

# (their forwards call the function again, as Zygote's do: differentiated in turn, at a
# higher order, the rule's forward meets the function and its rule, not a value passed through)
def _dropgrad_rule(x):
    return dropgrad(x), lambda dy: (None,)


def _ignore_rule(f):
    return ignore(f), lambda dy: (None,)


def _hook_rule(f, x):
    return x, lambda dy: (None, f(dy))


def _checkpoint_rule(ctx, args, kw, kwargs):
    """``checkpoint(f, *args)``: run ``f`` keeping nothing; the pullback runs it again,
    differentiated, in the same context (so what ``f`` captures gets its gradient)."""
    f, rest = args[0], args[1:]
    rng = _rng_state()
    y = f(*rest, **kw)

    def back(dy):
        with _torch.random.fork_rng(devices=range(len(rng[1])) if rng[1] else []):
            _torch.set_rng_state(rng[0])   # (the forward draws again what it drew: dropout's masks)
            if rng[1]:
                _torch.cuda.set_rng_state_all(rng[1])
            _, b = Jkw(ctx, f, rest, kwargs)
        g = b(dy)
        return (None,) + tuple(g) if kwargs is None else ((None,) + tuple(g[0]), g[1])
    return y, back


def _rng_state() -> tuple:
    """torch's random number generators' states (CPU, and each CUDA device's where CUDA is in use),
    for ``checkpoint``'s second run of the forward, as ``torch.utils.checkpoint`` keeps them."""
    cuda = _torch.cuda.get_rng_state_all() if _torch.cuda.is_available() and _torch.cuda.is_initialized() else []
    return _torch.get_rng_state(), cuda


def _nestlevel_rule():
    return nestlevel() + 1, lambda dy: ()


for _f, _rule in {dropgrad: _dropgrad_rule, ignore: _ignore_rule, hook: _hook_rule,
                 nestlevel: _nestlevel_rule}.items():
    register_adjoint(_f, _rule)
register_dispatch(checkpoint, _checkpoint_rule)
dispatch.COMPUTES.add(checkpoint)


# their forward-mode rules: a dropped gradient drops the tangent; ``hook`` acts on gradients only;
# ``checkpoint`` and ``forwarddiff`` are the function itself
def _no_tangent(run):
    def rule(ctx, args, kw):
        return ctx.sp(run(ctx, args, kw))[0], None
    return rule


register_jvp(dropgrad, _no_tangent(lambda ctx, args, kw: args[0]))
register_jvp(ignore, _no_tangent(lambda ctx, args, kw: Fkw(ctx, args[0], (), {})[0]))
register_jvp(hook, lambda ctx, args, kw: ctx.sp(args[1]))
register_jvp(checkpoint, lambda ctx, args, kw: Fkw(ctx, args[0], args[1:], kw))
nograd(Params)
nograd(Grads)


# ---------------------------------------------------------------- nested AD
# Inside differentiated code, these stand-ins replace the API functions: they
# are lifted like user code, so the outer transform differentiates the inner
# generated forward and pullback (themselves plain Python), to any depth.

def _explicit_only(args) -> None:
    """Nested AD differentiates explicit arguments: ``Params`` inside differentiated code would
    call the zero-argument function with them."""
    if len(args) == 1 and type(args[0]) is Params:
        raise GradientError("a gradient with respect to Params taken inside differentiated code is not "
                            "supported; pass the tensors as arguments (`gradient(lambda W: ..., W)`)")


def _nested_pullback(f, *args):
    _explicit_only(args)
    ctx = Context()
    y, back = J(ctx, f, *args)

    def pb(dy):  # as _run_back: a list, dict or object in the output takes its gradient in slots
        ctx.grads = {}
        seed_slots(ctx, y, dy)
        return _results(ctx, args, back(dy))
    return y, pb


def _nested_withgradient(f, *args):
    _explicit_only(args)
    ctx = Context()
    y, back = J(ctx, f, *args)
    return WithGradient(y, _results(ctx, args, back(seed(y))))


def _nested_gradient(f, *args):
    _explicit_only(args)
    ctx = Context()
    y, back = J(ctx, f, *args)
    return _results(ctx, args, back(seed(y)))


def _results(ctx, args, grads):
    if _all_values(args):
        return grads
    return tuple(materialize(ctx, a, g) for a, g in zip(args, grads))


def _all_values(args) -> bool:
    return not any(has_identity(a) for a in args)


for _f, _nested in ((gradient, _nested_gradient), (pullback, _nested_pullback), (withgradient, _nested_withgradient)):
    register_dispatch(_f, lift_as(_nested))
    register_jvp(_f, lifted(_nested))   # forward over reverse: the stand-in, forward-transformed
nograd(Context)
nograd(seed)
nograd(_all_values)
nograd(_explicit_only)


# ---------------------------------------------------------------- mixed mode


def forwarddiff(f: Callable, x):
    """``f(x)``, differentiated in forward mode (one dual pass per input entry):
    cheaper than reverse mode when ``x`` is small and ``f`` has many steps. The
    pullback multiplies by the Jacobian computed in the forward pass."""
    return f(x)


def _forwarddiff_rule(f, x):
    """The Jacobian by torchzygote's forward mode, one pass per entry of ``x`` (a number: one
    pass), so ``f`` may use Python numbers, ``math``, closures and structures; the pullback is
    the Jacobian's transpose applied to the output gradient."""
    if not isinstance(x, torch.Tensor):
        y, d = _jvp(f, (x,), (1.0 if not isinstance(x, complex) else 1.0 + 0j,))
        return y, lambda dy: (None, None if dy is None else dy * d)
    flat = x.reshape(-1)
    cols, y = [], None
    for i in range(flat.numel()):
        e = torch.zeros_like(flat)
        e[i] = 1
        y, t = _jvp(f, (x,), (e.reshape(x.shape),))
        cols.append(torch.as_tensor(t))
    jac = torch.stack(cols, dim=-1) if cols else None   # y.shape + (n,)

    def back(dy):
        if dy is None or jac is None:
            return None, None
        dyt = torch.as_tensor(dy, dtype=jac.dtype)
        g = (dyt.reshape(-1, 1) * jac.reshape(-1, jac.shape[-1])).sum(0)
        return None, g.reshape(x.shape)
    return y, back


register_adjoint(forwarddiff, _forwarddiff_rule)
register_jvp(forwarddiff, lambda ctx, args, kw: Fkw(ctx, args[0], args[1:], kw))
