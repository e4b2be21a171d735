"""``to_torch(f)``: a torchzygote-differentiated function as a torch autograd op. The arguments'
tensors (and the tensors requiring grad that ``f`` captures) are the op's inputs; its backward
runs torchzygote's pullback, as a differentiable op of its own under ``create_graph=True``."""
from __future__ import annotations

import copy
import dataclasses
import functools
import sys
import types
from typing import Callable

import torch

from ..values.algebra import accum
from ..values.record import Record
from ..api import pullback
from ..errors import GradientError
from .objects import _diff, _fields, _is_plain_object


_TENSOR = "T"   # a tensor's place in a flattened structure


def _flatten(x, out: list, paths: list, path: tuple):
    """The tensors in ``x`` (appended to ``out``, their gradient paths to ``paths``) and a spec to
    rebuild ``x`` with other tensors in their places; structures without tensors are constants."""
    if isinstance(x, torch.Tensor):
        out.append(x)
        paths.append(path)
        return _TENSOR
    t = type(x)
    if t in (int, float, bool, str, complex, type(None)):
        return ("c", x)
    n = len(out)
    if isinstance(x, tuple):
        spec = ("tuple", t, [_flatten(e, out, paths, path + (("i", i),)) for i, e in enumerate(x)])
    elif isinstance(x, list):
        spec = ("list", None, [_flatten(e, out, paths, path + (("i", i),)) for i, e in enumerate(x)])
    elif isinstance(x, dict):
        keys = list(x)
        spec = ("dict", x, [_flatten(x[k], out, paths, path + (("k", k),)) for k in keys], keys)
    elif isinstance(x, Record):
        keys = list(x.keys())
        spec = ("record", None, [_flatten(x[k], out, paths, path + (("a", k),)) for k in keys], keys)
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        keys = [f.name for f in dataclasses.fields(x)]
        spec = ("dc", x, [_flatten(getattr(x, k), out, paths, path + (("a", k),)) for k in keys], keys)
    else:
        return ("c", x)
    return spec if len(out) > n else ("c", x)


def _unflatten(spec, it):
    if spec is _TENSOR:
        return next(it)
    kind, meta, parts = spec[0], spec[1], spec[2] if len(spec) > 2 else None
    if kind == "c":
        return meta
    vals = [_unflatten(p, it) for p in parts]
    if kind == "tuple":
        if meta is tuple:
            return tuple(vals)
        return meta(*vals) if hasattr(meta, "_fields") else meta(vals)
    if kind == "list":
        return vals
    if kind == "dict":
        c = copy.copy(meta)
        for k, v in zip(spec[3], vals):
            c[k] = v
        return c
    if kind == "record":
        return Record(**dict(zip(spec[3], vals)))
    c = copy.copy(meta)   # a dataclass
    for k, v in zip(spec[3], vals):
        object.__setattr__(c, k, v)
    return c


def _cotangent(spec, it):
    """The output gradient for torchzygote's pullback from the tensor gradients torch passes
    (``it``, in the order of ``spec``): values that are no tensors are constants to torch, so
    their gradient is ``None`` (never their value), and a dataclass's gradient is a ``Record``
    (the form the pullback reads)."""
    if spec is _TENSOR:
        return next(it)
    kind = spec[0]
    if kind == "c":
        return None
    vals = [_cotangent(p, it) for p in spec[2]]
    if kind == "tuple":
        return tuple(vals)
    if kind == "list":
        return vals
    if kind == "dict":
        return dict(zip(spec[3], vals))
    return Record(**dict(zip(spec[3], vals)))   # a Record or a dataclass


def _captured(x, path, out: dict, seen: set, top=False):
    """Tensors that require grad and that torch cannot see as arguments: a module's parameters
    and buffers, values a closure captures (through lists, tuples, dicts and objects).
    ``out``: id(tensor) -> [tensor, [gradient paths]]."""
    if isinstance(x, torch.Tensor):
        if not top and x.requires_grad and _diff(x):
            e = out.get(id(x))
            if e is None:
                out[id(x)] = [x, [path]]
            else:
                e[1].append(path)
        return
    t = type(x)
    if t in (int, float, bool, str, complex, type(None)):
        return
    if isinstance(x, tuple):
        for i, e in enumerate(x):
            _captured(e, path + (("i", i),), out, seen, top)
        return
    if id(x) in seen:
        return
    seen.add(id(x))
    if isinstance(x, list):
        for i, e in enumerate(x):
            _captured(e, path + (("i", i),), out, seen, top)
    elif isinstance(x, dict):
        for k, e in x.items():
            _captured(e, path + (("k", k),), out, seen, top)
    elif isinstance(x, (torch.nn.Sequential, torch.nn.ModuleList)):
        for i, m in enumerate(x):
            _captured(m, path + (("i", i),), out, seen)
    elif isinstance(x, torch.nn.Module):
        for table in (x._parameters, x._buffers):
            for n, p in table.items():
                if p is not None:
                    _captured(p, path + (("a", n),), out, seen)
        for n, m in x._modules.items():
            if m is not None:
                _captured(m, path + (("a", n),), out, seen)
    elif isinstance(x, types.FunctionType):
        for name, cell in zip(x.__code__.co_freevars, x.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            _captured(contents, path + (("a", name),), out, seen)
    elif _is_plain_object(x):
        for n in _fields(x):
            _captured(getattr(x, n, None), path + (("a", n),), out, seen, top)


def _at(g, path):
    """The entry of gradient structure ``g`` at ``path`` (None where it has none)."""
    for kind, k in path:
        if g is None:
            return None
        if kind == "i":
            if isinstance(g, Record):
                g = list(g.values())
            g = g[k] if isinstance(g, (tuple, list)) and k < len(g) else None
        elif kind == "k":
            g = g.get(k) if isinstance(g, dict) else None
        else:
            g = g._fields.get(k) if isinstance(g, Record) else (g.get(k) if isinstance(g, dict) else None)
    return g


def _kwcall(fn, args, kwargs):
    return fn(*args, **kwargs)


def _vjp(fn, args, kwargs, dy):
    """The gradient of ``_kwcall(fn, args, kwargs)`` for output gradient ``dy``: the function
    that ``to_torch`` makes a torch op again for double backward (any order)."""
    y, back = pullback(_kwcall, fn, args, kwargs)
    return back(dy)


class _Call:
    """What one call of a ``to_torch`` function passes to its torch op (not a tensor)."""

    __slots__ = ("fn", "spec", "kspec", "n", "paths", "hidden", "fast", "out_spec", "name", "back", "amp")

    def rebuild(self, tensors):
        it = iter(tensors)
        args = _unflatten(self.spec, it)
        kwargs = _unflatten(self.kspec, it) if self.kspec is not None else {}
        return args, kwargs


class _ToTorch(torch.autograd.Function):
    """A torchzygote-differentiated call as a torch autograd op. Inputs: a ``_Call``, then the
    tensors of the arguments, then captured tensors that require grad."""

    @staticmethod
    def forward(call, *tensors):
        args, kwargs = call.rebuild(tensors[:call.n])
        if call.fast:
            y, back = pullback(call.fn, *args)
        else:
            y, back = pullback(_kwcall, call.fn, args, kwargs)
        flat: list = []
        call.out_spec = _flatten(y, flat, [], ())
        call.back = back   # setup_context follows at once (once per functorch level)
        ins = {id(t) for t in tensors}
        # an input returned as it is cannot also be saved for backward: return a view of it
        return tuple(o.view_as(o) if id(o) in ins else o for o in flat)

    @staticmethod
    def setup_context(ctx, inputs, output):
        call = ctx.call = inputs[0]
        ctx.back = call.back
        ctx.save_for_backward(*inputs[1:])

    @staticmethod
    def backward(ctx, *dys):
        call = ctx.call
        if call.amp is not None:   # the pullback runs under the forward's autocast, as torch.amp.custom_bwd
            with torch.autocast(call.amp[0], dtype=call.amp[1]):
                return _ToTorch._backward(ctx, call, dys)
        return _ToTorch._backward(ctx, call, dys)

    @staticmethod
    def _backward(ctx, call, dys):
        dy = _cotangent(call.out_spec, iter(dys))
        if torch.is_grad_enabled():
            # double backward: the gradient as a torch op of its own, differentiable again
            saved = ctx.saved_tensors
            args, kwargs = call.rebuild(saved[:call.n])
            g = _VJP(call.fn, args, kwargs, dy)
        else:
            g = ctx.back(dy)
            if call.fast:
                g = (None, g, None)
        out: list = [None]
        inputs = ctx.needs_input_grad
        for i, path in enumerate(call.paths):
            out.append(_at(g, path) if inputs[1 + i] else None)
        for j, (t, tpaths) in enumerate(call.hidden):
            gi = None
            if inputs[1 + call.n + j]:
                for p in tpaths:
                    gi = accum(gi, _at(g, p))
            out.append(gi)
        return tuple(out)

    @staticmethod
    def vmap(info, in_dims, call, *tensors):
        """Under ``torch.vmap``: one call per batch entry, stacked."""
        dims = in_dims[1:]
        outs = []
        for b in range(info.batch_size):
            outs.append(_ToTorch.apply(call, *[t.select(d, b) if d is not None else t
                                               for t, d in zip(tensors, dims)]))
        res = tuple(torch.stack([o[k] for o in outs]) for k in range(len(outs[0]))) if outs else ()
        return res, (0,) * len(res)


_base_apply = super(torch.autograd.Function, _ToTorch).apply
_functorch_active = torch._C._are_functorch_transforms_active


def _global_grads(fn):
    """Globals ``fn`` reads that hold tensors requiring grad (torch would never see them)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    g = fn.__globals__
    bad = []
    for n in code.co_names:
        v = g.get(n)
        if v is None:
            continue
        if isinstance(v, torch.Tensor) and v.requires_grad and _diff(v) or \
                isinstance(v, torch.nn.Module) and any(p.requires_grad for p in v.parameters()):
            bad.append(n)
    return bad


def _to_torch_call(f, args, kwargs):
    fn = f
    if isinstance(f, types.MethodType):
        fn, args = f.__func__, (f.__self__,) + args
    grad = torch.is_grad_enabled()
    flat: list = []
    paths: list = []
    spec = _flatten(args, flat, paths, (("i", 1),))
    kspec = _flatten(kwargs, flat, paths, (("i", 2),)) if kwargs else None
    hidden: dict = {}
    if grad:
        seen: set = set()
        _captured(fn, (("i", 0),), hidden, seen)
        _captured(args, (("i", 1),), hidden, seen, top=True)
        if kwargs:
            _captured(kwargs, (("i", 2),), hidden, seen, top=True)
    if not grad or not (any(t.requires_grad for t in flat) or hidden):
        return f(*args[1:], **kwargs) if fn is not f else f(*args, **kwargs)
    bad = _global_grads(fn)
    if bad:
        raise GradientError(
            f"to_torch({getattr(fn, '__qualname__', fn)}): it reads the global{'s' if len(bad) > 1 else ''} "
            f"{', '.join(map(repr, bad))}, which require grad; torch would not receive their gradient "
            f"through this op. Pass {'them' if len(bad) > 1 else 'it'} as an argument")
    call = _Call()
    call.fn, call.spec, call.kspec, call.n, call.paths = fn, spec, kspec, len(flat), paths
    call.hidden = list(hidden.values())
    call.fast = not kwargs and not hidden and type(fn) is types.FunctionType
    call.name = getattr(fn, "__qualname__", None) or type(fn).__name__
    call.amp = None
    dev = flat[0].device.type if flat else "cpu"
    if torch.is_autocast_enabled(dev):
        call.amp = (dev, torch.get_autocast_dtype(dev))
    if _functorch_active():
        out = _ToTorch.apply(call, *flat, *[t for t, _ in call.hidden])
    else:   # Function.apply binds default arguments with inspect.signature on every call: skip it
        out = _base_apply(call, *flat, *[t for t, _ in call.hidden])
    return _unflatten(call.out_spec, iter(out))


def to_torch(f: Callable) -> Callable:
    """``f`` as a torch autograd op: calling the result runs torchzygote's forward, and
    ``backward`` through it runs torchzygote's generated pullback (a differentiable one under
    ``create_graph=True``, so double backward, ``torch.autograd.functional.hessian`` and
    gradient penalties work to any order). Tensors anywhere in the arguments (tuples, lists,
    dicts, dataclasses, keyword arguments), the parameters of modules among them or captured
    by ``f``, compose with ``torch.func.grad``/``jacrev``/``vmap``, ``torch.compile`` (as an
    opaque call), ``torch.amp.autocast`` and ``torch.no_grad``."""
    def call(*args, **kwargs):
        return _to_torch_call(f, args, kwargs)
    # for torch.compile an opaque call (a graph break: dynamo cannot trace the generated code);
    # torch._disable_dynamo imports dynamo only when first called, which happens only once dynamo
    # is loaded (before that nothing can be compiling)
    opaque = torch._disable_dynamo(call, recursive=True)
    modules = sys.modules

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        if "torch._dynamo" not in modules:
            return _to_torch_call(f, args, kwargs)
        return opaque(*args, **kwargs)
    return wrapped


_VJP = to_torch(_vjp)
