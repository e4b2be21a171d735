"""The fallback for torch callables with no rule of their own: run the op once
under torch autograd on detached copies of its tensor arguments, and pull back
with ``torch.autograd.grad``.

The graph built here is local to the call (its leaves are fresh detached
tensors), and the value handed back is detached, so the user's tensors never
acquire a ``grad_fn`` and nothing outside the call sees torch autograd.
"""
from __future__ import annotations

import functools
import inspect
import re
from typing import Any, List, Tuple

import torch
import torch.nn.functional as F

from ..errors import NoRuleError
from ..values.algebra import accum
from ..values.kinds import has_identity, same_tuple
from ..values.structures import structure_of
from .registry import nondiff

__all__ = ["torch_fallback", "fallback_call", "is_torch_op", "has_tensor", "RULES", "FALLBACK_CALLS"]

# callables that went through the fallback, with a count (rule coverage diagnostics)
FALLBACK_CALLS: dict = {}


def _diff(t) -> bool:
    return isinstance(t, torch.Tensor) and (t.dtype.is_floating_point or t.dtype.is_complex)


def _prepare(x, leaves: List[torch.Tensor]):
    """A copy of ``x`` whose differentiable tensors are fresh leaves; returns (copy, template)
    where the template records where each leaf came from. Structures that can be rebuilt
    (``values.structures``: tuples, named tuples, lists, dicts, registered types) are walked."""
    if _diff(x):
        leaf = x.detach().requires_grad_(True)
        leaves.append(leaf)
        return leaf, len(leaves) - 1
    s = structure_of(x)
    if s is None or s.unflatten is None:
        return x, None
    children, aux = s.flatten(x)
    named = type(children) is dict
    n = len(leaves)
    parts = [_prepare(c, leaves) for c in (children.values() if named else children)]
    copies = [p[0] for p in parts]
    try:
        copy = s.unflatten(aux, dict(zip(children, copies)) if named else tuple(copies))
    except TypeError:  # a sequence type that cannot be built from its items: passed as is
        del leaves[n:]
        return x, None
    form = tuple if isinstance(x, tuple) else list if isinstance(x, list) else dict
    return copy, (form, list(children) if named else None, [p[1] for p in parts])


def _rebuild(tmpl, grads):
    """The gradient of one argument from the leaves' gradients (None where none): a tuple for a
    tuple (named or not), a list for a list, a dict by name for other structures."""
    if tmpl is None:
        return None
    if isinstance(tmpl, int):
        return grads[tmpl]
    form, keys, parts = tmpl
    out = [_rebuild(p, grads) for p in parts]
    if all(o is None for o in out):
        return None
    return dict(zip(keys, out)) if form is dict else form(out)


def _flat_outputs(y) -> Tuple[list, Any]:
    """Differentiable tensors of an output (a tensor, or a tuple/list of them)."""
    if isinstance(y, torch.Tensor):
        return [y], None
    if isinstance(y, (tuple, list)):
        flat = []
        for e in y:
            if isinstance(e, torch.Tensor):
                flat.append(e)
            elif isinstance(e, (tuple, list)):
                flat += _flat_outputs(e)[0]
        return flat, None
    return [], None


def _flat_dy(y, dy, out: list):
    """Pair each output tensor with its cotangent (``None`` for none)."""
    if isinstance(y, torch.Tensor):
        out.append(dy)
        return
    if isinstance(y, (tuple, list)):
        if dy is not None and hasattr(dy, "values") and not isinstance(dy, (tuple, list, torch.Tensor)):
            dy = tuple(dy.values())  # a Record for a named tuple result
        for i, e in enumerate(y):
            d = None if dy is None else (dy[i] if i < len(dy) else None)
            if isinstance(e, torch.Tensor):
                out.append(d)
            elif isinstance(e, (tuple, list)):
                _flat_dy(e, d, out)


def _detach(y):
    if isinstance(y, torch.Tensor):
        return y.detach()
    if isinstance(y, tuple):
        return same_tuple(y, [_detach(e) for e in y])
    if isinstance(y, list):
        return [_detach(e) for e in y]
    return y


# arguments that are state, not inputs (running statistics): never graph leaves
_CONSTANT_ARGS = {F.batch_norm: (1, 2, "running_mean", "running_var"),
                  F.instance_norm: (1, 2, "running_mean", "running_var")}


# arguments torch refuses to differentiate (``running_mean``, a loss's class ``weight``, ``rtol``),
# learnt from its "is not differentiable with respect to argument" error: callable -> positions/names
_NONDIFF: dict = {}
_NOT_DIFF = re.compile(r"is not differentiable with respect to argument '(\w+)'")


def _arg_position(f, argname):
    """The positional index of parameter ``argname`` of ``f`` (None if unknown or ambiguous)."""
    try:
        params = list(inspect.signature(f).parameters)
        if argname in params:
            return params.index(argname)
    except (TypeError, ValueError):
        pass
    found = set()
    try:
        if hasattr(f, "_schema"):  # torch.ops.aten.x.overload
            schemas = [f._schema]
        else:  # torch.ops.aten.x, or torch.x
            schemas = torch._C._jit_get_schemas_for_operator(
                getattr(f, "_qualified_op_name", None) or "aten::" + getattr(f, "__name__", ""))
        for s in schemas:
            names = [a.name for a in s.arguments if not a.kwarg_only]
            if argname in names:
                found.add(names.index(argname))
    except Exception:  # noqa: BLE001 (no schema: unknown)
        return None
    return found.pop() if len(found) == 1 else None


def torch_fallback(f, args, kw, kwargs):
    """``(y, back)`` for a torch callable without a rule; ``back(dy)`` returns one
    gradient per positional argument, or ``(tuple, dict)`` when ``kwargs`` is a dict."""
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)
    FALLBACK_CALLS[name] = FALLBACK_CALLS.get(name, 0) + 1
    try:
        constant = set(_CONSTANT_ARGS.get(f, ())) | _NONDIFF.get(f, set())
    except TypeError:  # an unhashable callable
        constant = set()
    kkeys = list(kw)
    for _attempt in range(len(args) + len(kkeys) + 1):
        leaves: List[torch.Tensor] = []
        pargs, ptmpl = [], []
        for i, a in enumerate(args):
            c, t = (a, None) if i in constant else _prepare(a, leaves)
            pargs.append(c)
            ptmpl.append(t)
        pkw, ktmpl = {}, {}
        for k in kkeys:
            c, t = (kw[k], None) if k in constant else _prepare(kw[k], leaves)
            pkw[k] = c
            ktmpl[k] = t
        inplace = (name.endswith("_") and not name.endswith("__") or kw.get("inplace") is True) and \
            ptmpl and isinstance(ptmpl[0], int)

        if not leaves:
            return f(*args, **kw), _no_gradients(len(args), kwargs)
        try:
            with torch.enable_grad():
                if inplace:
                    # an in-place method: record it on a copy of the tensor (autograd refuses leaves),
                    # and mutate the real tensor too (below), as Python would
                    pargs[0] = pargs[0].clone()
                y_graph = f(*pargs, **pkw)
            break
        except RuntimeError as e:
            # torch refuses a gradient for this argument (running statistics, a class weight,
            # a tolerance): it carries none; run again with it as a constant
            m = _NOT_DIFF.search(str(e))
            if m is None:
                raise
            arg = m.group(1)
            where = arg if arg in kw else _arg_position(f, arg)
            if where is None and args and (hasattr(args[0], "_schema") or hasattr(args[0], "_qualified_op_name")):
                where = _arg_position(args[0], arg)  # OpOverload(Packet).__call__(op, *args)
                where = None if where is None else where + 1
            if where is None or where in constant or (isinstance(where, int) and where >= len(args)):
                raise NoRuleError(
                    f"{name}: torch does not differentiate it with respect to its argument {arg!r}, and "
                    f"torchzygote cannot tell which argument that is; pass {arg!r} by keyword, or give "
                    f"{name} a rule with @torchzygote.adjoint") from e
            constant.add(where)
            try:
                _NONDIFF.setdefault(f, set()).add(where)
            except TypeError:
                pass
    outs = _flat_outputs(y_graph)[0]
    y = f(*args, **kw) if inplace else _detach(y_graph)
    if not any(isinstance(o, torch.Tensor) and o.requires_grad for o in outs):   # (torch.nn.init's writes)
        return y, _no_gradients(len(args), kwargs)

    def back(dy):
        grads = [None] * len(leaves)
        if dy is not None:
            dys: list = []
            _flat_dy(y_graph, dy, dys)
            pairs = [(o, d) for o, d in zip(outs, dys)
                     if d is not None and isinstance(o, torch.Tensor) and o.requires_grad]
            if pairs:
                ys = [o for o, _ in pairs]
                ds = [_as_cotangent(d, o) for o, d in pairs]
                res = torch.autograd.grad(ys, leaves, ds, allow_unused=True, retain_graph=True)
                grads = list(res)
        da = tuple(_rebuild(t, grads) for t in ptmpl)
        if kwargs is None:
            return da
        return da, {k: _rebuild(ktmpl[k], grads) for k in kkeys if ktmpl[k] is not None}

    return y, back


def _no_gradients(n: int, kwargs):
    """The pullback of a call none of whose results depends on its arguments under torch
    autograd (no tensor argument, or a write under ``torch.no_grad``): a constant, which the
    next order differentiates as any Python function (``torch_pullback``'s refusal is for
    gradients torch computed)."""
    none = (None,) * n

    def back(dy):
        return none if kwargs is None else (none, {})
    back.constant = True
    return back


def _as_cotangent(d, o):
    if isinstance(d, torch.Tensor):
        if d.shape != o.shape:
            d = d.expand(o.shape) if d.dim() <= o.dim() else d.reshape(o.shape)
        return d.to(dtype=o.dtype, device=o.device) if d.dtype != o.dtype or d.device != o.device else d
    return torch.full_like(o, d)


# torch's Python code lifted like the user's: modules' forwards (to reach their parameters) and
# distributions (objects of tensors: under torch autograd, their fields' gradients were lost)
LIFTED_TORCH = ("torch.nn.modules", "torch.distributions")


def torch_built(mod: str) -> bool:
    """Whether a class of module ``mod`` is built as it is: torch's own, but its distributions."""
    return mod.startswith("torch.") and not mod.startswith("torch.distributions")


def is_torch_op(f) -> bool:
    """Whether a callable without source is torch's (then torch autograd differentiates it)."""
    mod = getattr(f, "__module__", None) or ""
    owner = getattr(f, "__self__", None)   # a tensor's bound method, or a builtin of one of torch's modules
    return mod.startswith("torch") or getattr(f, "__objclass__", None) in (torch._C.TensorBase, torch.Tensor) \
        or isinstance(owner, torch.Tensor) or (getattr(owner, "__name__", None) or "").startswith("torch")


def has_tensor(x) -> bool:
    """Whether ``x`` is a tensor or a structure the fallback walks holding one."""
    if isinstance(x, torch.Tensor):
        return True
    s = structure_of(x)
    if s is None or s.unflatten is None:
        return False
    c = s.flatten(x)[0]
    return any(has_tensor(e) for e in (c.values() if type(c) is dict else c))


def fallback_call(ctx, f, args, kw, kwargs):
    """``(y, back)`` for torch op ``f`` through torch autograd, as run-time dispatch calls it: the
    gradients of arguments with identity (lists, dicts, objects) go to their slots in the context."""
    y, back = torch_fallback(f, args, kw, kwargs)
    if getattr(back, "constant", False):
        return y, back
    back = functools.partial(torch_pullback, f, back)
    if not any(has_identity(a) for a in args):
        return y, back

    def back_slots(dy):
        g = back(dy)
        da = g if kwargs is None else g[0]
        da = tuple(_to_slot(ctx, a, d) for a, d in zip(args, da))
        return da if kwargs is None else (da, g[1])
    return y, back_slots


def _to_slot(ctx, a, d):
    """Argument ``a``'s gradient ``d``: into ``a``'s slot by position or name if ``a`` has identity
    (a module's parameters reached through a list, as RNNs' weights are, are noted for it)."""
    if d is None or not has_identity(a):
        return d
    slot = ctx.slot(a)
    children = structure_of(a).flatten(a)[0]
    for k, dk in d.items() if type(d) is dict else enumerate(d):
        if type(slot) is list and (k >= len(slot) or k >= len(children)):
            break
        ak = children.get(k) if type(children) is dict else children[k]
        if isinstance(ak, torch.nn.Parameter) and dk is not None:
            if ctx.param(ak, dk):
                continue   # one of the Params: credited, and absorbed (Context.param)
            ctx.tensor_grads[id(ak)] = accum(ctx.tensor_grads.get(id(ak)), dk)
        slot[k] = accum(slot[k] if type(slot) is list else slot.get(k), dk)
    return None


def torch_pullback(f, back, dy):
    """The pullback of torch op ``f`` computed by torch autograd (``back``). Differentiated
    code that differentiates it again (second order) gets a clear error from its rule below,
    never a silent zero."""
    return back(dy)


def _torch_pullback_rule(f, back, dy):
    def pb(d):
        if d is not None and any(g is not None for g in (d if type(d) is tuple else (d,))):
            name = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
            mod = getattr(f, "__module__", None)
            raise NoRuleError(
                f"no gradient rule for {mod + '.' if mod else ''}{name}: its gradient came from torch "
                f"autograd, which torchzygote cannot differentiate again (second order). Define a rule "
                f"with @torchzygote.adjoint({name}) whose pullback uses ops that have rules, or compute "
                f"this higher derivative with torch.autograd (hessian(..., method='torch'))")
        return None, None, None
    return back(dy), pb


def _torch_fallback_rule(f, args, kw, kwargs):
    """Differentiated code that calls the fallback (the runtime differentiated again, for a
    second derivative) treats it as a primitive: its value's gradient is its own pullback."""
    y, back = torch_fallback(f, args, kw, kwargs)

    def pb(d):
        dy = d[0] if type(d) is tuple else None
        if dy is None:
            return None, None, None, None
        g = back(dy)
        if kwargs is None:
            return None, g, None, None
        return None, g[0], g[1], None
    return (y, back), pb


# how run-time dispatch differentiates the fallback itself (its user rules, ``ad/dispatch.py``)
RULES = {torch_pullback: _torch_pullback_rule, torch_fallback: _torch_fallback_rule}
nondiff(is_torch_op, has_tensor)   # predicates of the dispatcher: a nested transform calls them as they are
