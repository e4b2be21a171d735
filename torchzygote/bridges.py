"""Bridges between torchzygote and torch autograd.

``call_torch(fn, *args)`` runs torch-autograd code inside differentiated code;
``to_torch(f)`` makes a torchzygote-differentiated function a torch autograd op.
Neither drops a gradient silently: what torch can see is differentiated (tensors
anywhere in the arguments, modules' parameters, values a closure captures, the
tensors of ``Params``), and a value that cannot be followed raises an error
naming it.
"""
from __future__ import annotations

import copy
import ctypes
import dataclasses
import functools
import sys
import types
from typing import Any, Callable, List

import torch

from .ad.runtime import Record, accum
from .errors import GradientError, NoRuleError
from .rules.fallback import _as_cotangent
from .rules.registry import register_adjoint, register_dispatch

__all__ = ["call_torch", "to_torch"]


def _diff(t) -> bool:
    return isinstance(t, torch.Tensor) and (t.dtype.is_floating_point or t.dtype.is_complex)


def _is_plain_object(x) -> bool:
    """An object whose fields may hold tensors that are worth following (user dataclasses and
    simple objects; not torch's, not classes, modules or functions)."""
    if isinstance(x, (type, types.ModuleType, types.BuiltinFunctionType, torch.dtype, torch.device)):
        return False
    if dataclasses.is_dataclass(x):
        return True
    mod = getattr(type(x), "__module__", "") or ""
    return hasattr(x, "__dict__") and not mod.startswith(("torch", "builtins", "numpy", "torchzygote"))


def _fields(x):
    if dataclasses.is_dataclass(x):
        return [f.name for f in dataclasses.fields(x)]
    return list(vars(x))


# ====================================================================== call_torch

def call_torch(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` run under torch autograd inside differentiated code (Zygote's
    ``pycall`` adjoint): its pullback calls ``torch.autograd.grad``. Everything torch autograd
    can see is differentiated: tensors anywhere in the arguments (tuples, lists, dicts,
    dataclasses, keyword arguments), ``nn.Module`` s passed as ``fn`` or as arguments (their
    parameters and buffers that require grad), values ``fn`` captures in its closure, and in
    implicit mode the tensors of the ``Params``."""
    return fn(*args, **kwargs)


class _CallTorch:
    """One ``call_torch``: the torch graph of its forward, and where each leaf's gradient goes."""

    __slots__ = ("ctx", "leaves", "real_routes", "tmpls", "kkeys", "kw_tmpls", "y_graph", "y", "done",
                 "restore", "seen", "name", "slot_routes")

    def __init__(self, ctx, fn, rest, kw):
        self.ctx = ctx
        self.leaves: List[torch.Tensor] = []
        self.real_routes: dict = {}     # id(real tensor) -> [leaf index, value, [(owner, name)]]
        self.restore: list = []
        self.seen: dict = {}
        self.slot_routes = False
        self.name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
        try:
            pfn, tfn = self._prep(fn, "fn")
            parts = [self._prep(a, f"argument {i + 1}") for i, a in enumerate(rest)]
            self.kkeys = list(kw)
            kparts = {k: self._prep(kw[k], f"keyword argument {k!r}") for k in self.kkeys}
            self._params()
            self.tmpls = [tfn] + [t for _, t in parts]
            self.kw_tmpls = {k: t for k, (_, t) in kparts.items()}
            with torch.enable_grad():
                self.y_graph = pfn(*[c for c, _ in parts], **{k: c for k, (c, _) in kparts.items()})
        finally:
            for undo in reversed(self.restore):
                undo()
        self.y = _detached(self.y_graph)

    # ---------------------------------------------------------------- leaves
    def _leaf(self, t):
        leaf = t.detach().requires_grad_(True)
        self.leaves.append(leaf)
        return leaf, ("t", len(self.leaves) - 1)

    def _real(self, t, owner=None, name=None):
        """A tensor torch autograd tracks as it is (a module's parameter, a Params tensor)."""
        r = self.real_routes.get(id(t))
        if r is None:
            r = self.real_routes[id(t)] = [len(self.leaves), t, []]
            self.leaves.append(t)
        if owner is not None and not any(o is owner for o, _ in r[2]) and not r[2]:
            r[2].append((owner, name))   # tied weights: the first owner takes the gradient
            self.slot_routes = True

    def _prep(self, x, where):
        """A copy of ``x`` whose tensors are fresh graph leaves, and a template saying where
        their gradients go (``None``: nothing to differentiate)."""
        if isinstance(x, torch.Tensor):
            return self._leaf(x) if _diff(x) else (x, None)
        t = type(x)
        if t in (int, float, bool, str, complex, type(None)):
            return x, None
        if isinstance(x, tuple):
            parts = [self._prep(e, f"{where}[{i}]") for i, e in enumerate(x)]
            if all(p[1] is None for p in parts):
                return x, None
            vals = [p[0] for p in parts]
            copy_ = t(*vals) if hasattr(t, "_fields") else (tuple(vals) if t is tuple else t(vals))
            return copy_, ("tuple", [p[1] for p in parts])
        key = id(x)
        if key in self.seen:
            return self.seen[key]
        self.seen[key] = (x, None)   # cycles: a second visit sees the object as it is
        res = self._prep_identity(x, where)
        self.seen[key] = res
        return res

    def _prep_identity(self, x, where):
        if isinstance(x, list):
            parts = [self._prep(e, f"{where}[{i}]") for i, e in enumerate(x)]
            if all(p[1] is None for p in parts):
                return x, None
            self.slot_routes = True
            return [p[0] for p in parts], ("list", x, [p[1] for p in parts])
        if isinstance(x, dict):
            parts = {k: self._prep(v, f"{where}[{k!r}]") for k, v in x.items()}
            if all(p[1] is None for p in parts.values()):
                return x, None
            self.slot_routes = True
            c = copy.copy(x)
            for k, p in parts.items():
                c[k] = p[0]
            return c, ("dict", x, {k: p[1] for k, p in parts.items()})
        if isinstance(x, torch.nn.Module):
            for m in x.modules():
                for table in (m._parameters, m._buffers):
                    for n, p in table.items():
                        if p is not None and p.requires_grad and _diff(p):
                            self._real(p, m, n)
            return x, None
        if isinstance(x, types.FunctionType):
            cells = x.__closure__ or ()
            routes = []
            for name, cell in zip(x.__code__.co_freevars, cells):
                try:
                    contents = cell.cell_contents
                except ValueError:
                    continue
                c, tm = self._prep(contents, f"{where}'s captured {name!r}")
                if tm is None:
                    continue
                if c is not contents:   # the call sees the leaves; the cell is restored after it
                    cell.cell_contents = c
                    self.restore.append(functools.partial(setattr, cell, "cell_contents", contents))
                routes.append((cell, tm))
            if not routes:
                return x, None
            self.slot_routes = True
            return x, ("fn", routes)
        if isinstance(x, types.MethodType):
            c, tm = self._prep(x.__self__, where)
            return (x if c is x.__self__ else types.MethodType(x.__func__, c)), tm
        if isinstance(x, functools.partial):
            c, tm = self._prep(x.func, where)
            pa = [self._prep(a, f"{where}'s bound argument {i + 1}") for i, a in enumerate(x.args)]
            pk = {k: self._prep(v, f"{where}'s bound {k!r}") for k, v in x.keywords.items()}
            if any(p[1] is not None for p in pa) or any(p[1] is not None for p in pk.values()):
                self.slot_routes = True
                return (functools.partial(c, *[p[0] for p in pa], **{k: p[0] for k, p in pk.items()}),
                        ("partial", x, tm, [p[1] for p in pa], {k: p[1] for k, p in pk.items()}))
            return (x if c is x.func else functools.partial(c, *x.args, **x.keywords)), tm
        if _is_plain_object(x):
            names = _fields(x)
            parts = {}
            for n in names:
                try:
                    v = getattr(x, n)
                except AttributeError:
                    continue
                parts[n] = self._prep(v, f"{where}.{n}")
            if all(p[1] is None for p in parts.values()):
                return x, None
            try:
                c = copy.copy(x)
                for n, p in parts.items():
                    if p[0] is not getattr(x, n):
                        object.__setattr__(c, n, p[0])
            except Exception as e:  # noqa: BLE001
                raise GradientError(f"call_torch({self.name}): cannot follow the tensors in {where} (a "
                                    f"{type(x).__name__}: copying it failed with {e!r}); pass its tensors "
                                    f"as arguments") from e
            self.slot_routes = True
            return c, ("obj", x, {n: p[1] for n, p in parts.items()})
        return x, None

    def _params(self):
        """Implicit mode: the Params' tensors become tracked wherever ``fn`` reads them (globals,
        closures, attributes): those that do not require grad do so during the call."""
        ids = self.ctx.params
        if not ids:
            return
        for i in ids:
            # the Params object keeps its tensors alive while its gradient is computed
            t = ctypes.cast(i, ctypes.py_object).value
            if not _diff(t) or id(t) in self.real_routes:
                continue
            if not t.requires_grad:
                if not t.is_leaf:
                    continue
                t.requires_grad_(True)
                self.restore.append(functools.partial(t.requires_grad_, False))
            self._real(t)

    # ---------------------------------------------------------------- pullback
    def back(self, dy, with_kwargs: bool):
        ctx = self.ctx
        pairs: list = []
        self._cotangents(self.y_graph, self.y, dy, pairs, "the result")
        grads = [None] * len(self.leaves)
        if pairs:
            flips = [t for _, t, _ in self.real_routes.values() if not t.requires_grad]
            for t in flips:   # Params tensors that only required grad during the call
                t.requires_grad_(True)
            try:
                grads = list(torch.autograd.grad([o for o, _ in pairs], self.leaves, [d for _, d in pairs],
                                                 allow_unused=True, retain_graph=True))
            finally:
                for t in flips:
                    t.requires_grad_(False)
        for i, t, owners in self.real_routes.values():
            g = grads[i]
            if g is None:
                continue
            ctx.param(t, g)
            for owner, name in owners:
                slot = ctx.slot(owner)
                slot[name] = accum(slot.get(name), g)
        done: set = set()
        da = tuple(self._adjoint(t, grads, done) for t in self.tmpls)
        if not with_kwargs:
            return da
        dk = {}
        for k, t in self.kw_tmpls.items():
            a = self._adjoint(t, grads, done)
            if a is not None:
                dk[k] = a
        return da, dk

    def _cotangents(self, yg, ym, dy, pairs, where):
        if isinstance(yg, torch.Tensor):
            if dy is not None and yg.requires_grad:
                pairs.append((yg, _as_cotangent(dy, yg)))
            return
        if isinstance(yg, (float, complex)):
            if dy is not None and not (isinstance(dy, (int, float, complex)) and dy == 0) and self.leaves:
                raise GradientError(
                    f"call_torch({self.name}): {where} is a Python {type(yg).__name__}, which torch autograd "
                    f"cannot differentiate (.item(), float()): return a tensor instead, or wrap the value in "
                    f"tz.dropgrad if it is a constant")
            return
        if isinstance(yg, tuple):
            if isinstance(dy, Record):
                dy = tuple(dy.values())
            for i, e in enumerate(yg):
                d = dy[i] if isinstance(dy, (tuple, list)) and i < len(dy) else None
                self._cotangents(e, ym[i], d, pairs, f"{where}[{i}]")
            return
        if isinstance(yg, list):
            d = accum(list(dy) if isinstance(dy, (list, tuple)) else None, self.ctx.peek(ym))
            for i, e in enumerate(yg):
                self._cotangents(e, ym[i], d[i] if d is not None and i < len(d) else None, pairs,
                                 f"{where}[{i}]")
            return
        if isinstance(yg, dict):
            d = accum(dict(dy) if isinstance(dy, dict) else None, self.ctx.peek(ym))
            for k, e in yg.items():
                self._cotangents(e, ym[k], d.get(k) if d else None, pairs, f"{where}[{k!r}]")
            return
        if _is_plain_object(yg) and not isinstance(yg, types.FunctionType):
            d = dict(dy.items()) if isinstance(dy, (Record, dict)) else None
            d = accum(d, self.ctx.peek(ym))
            for n in _fields(yg):
                self._cotangents(getattr(yg, n, None), getattr(ym, n, None), d.get(n) if d else None, pairs,
                                 f"{where}.{n}")

    def _adjoint(self, tm, grads, done):
        """The gradient of an argument: values (tensors, tuples) are returned; identity objects'
        gradients go into their slots in the context, as the runtime keeps them."""
        if tm is None:
            return None
        kind = tm[0]
        if kind == "t":
            return grads[tm[1]]
        if kind == "tuple":
            out = [self._adjoint(t, grads, done) for t in tm[1]]
            return None if all(o is None for o in out) else tuple(out)
        obj = tm[1]
        if kind == "fn":
            for cell, t in tm[1]:
                if id(cell) in done:
                    continue
                done.add(id(cell))
                a = self._adjoint(t, grads, done)
                if a is not None:
                    slot = self.ctx.slot(cell)
                    slot["cell_contents"] = accum(slot.get("cell_contents"), a)
            return None
        if id(obj) in done:
            return None
        done.add(id(obj))
        if kind == "partial":
            _, p, tfn, targs, tkw = tm
            self._adjoint(tfn, grads, done)
            slot = self.ctx.slot(p)
            da = tuple(self._adjoint(t, grads, done) for t in targs)
            slot["args"] = accum(slot.get("args"), da)
            slot["keywords"] = accum(slot.get("keywords"), {k: a for k, a in
                                                            ((k, self._adjoint(t, grads, done)) for k, t in tkw.items())
                                                            if a is not None})
            return None
        slot = self.ctx.slot(obj)
        items = enumerate(tm[2]) if kind == "list" else tm[2].items()
        for k, t in items:
            a = self._adjoint(t, grads, done)
            if a is not None:
                slot[k] = accum(slot[k] if kind == "list" else slot.get(k), a)
        return None


def _detached(y):
    """The value handed back: tensors detached; containers rebuilt (lists and dicts are new
    objects, so their gradients have their own slots)."""
    if isinstance(y, torch.Tensor):
        return y.detach()
    t = type(y)
    if t in (int, float, bool, str, complex, type(None)):
        return y
    if isinstance(y, tuple):
        vals = [_detached(e) for e in y]
        if t is tuple:
            return tuple(vals)
        try:  # torch.return_types structseqs
            return t(vals)
        except TypeError:
            return t(*vals)
    if isinstance(y, list):
        return [_detached(e) for e in y]
    if isinstance(y, dict):
        c = copy.copy(y)
        for k, v in y.items():
            c[k] = _detached(v)
        return c
    if _is_plain_object(y) and not isinstance(y, (types.FunctionType, torch.nn.Module)):
        try:
            c = copy.copy(y)
            for n in _fields(y):
                v = getattr(y, n, None)
                if _has_tensor(v):
                    object.__setattr__(c, n, _detached(v))
            return c
        except Exception:  # noqa: BLE001
            return y
    return y


def _has_tensor(x) -> bool:
    if isinstance(x, torch.Tensor):
        return True
    if isinstance(x, (tuple, list)):
        return any(_has_tensor(e) for e in x)
    if isinstance(x, dict):
        return any(_has_tensor(e) for e in x.values())
    return False


def _call_torch_pullback(state, with_kwargs, dy):
    """The pullback of one ``call_torch`` (a primitive for an enclosing differentiation)."""
    return state.back(dy, with_kwargs)


def _call_torch_special(ctx, args, kw, kwargs):
    """The run-time rule of ``call_torch``: ``back(dy)`` returns one gradient per argument
    (``fn`` first), or ``(tuple, dict)`` when called with keywords."""
    state = _CallTorch(ctx, args[0], args[1:], kw)
    return state.y, functools.partial(_call_torch_pullback, state, kwargs is not None)


def _call_torch_nested(octx, oargs, okw, okwargs):
    """``call_torch`` inside a differentiated gradient (nested AD): the enclosing gradient
    differentiates the call's forward through torch autograd; its pullback is a primitive that
    cannot be differentiated again (second order through torch autograd)."""
    ctx, args, kw, kwargs = oargs
    y, back = _call_torch_special(ctx, args, kw, kwargs)
    outer = _CallTorch(octx, args[0], args[1:], kw)

    def pb(d):
        dy = d[0] if type(d) is tuple else None
        if dy is None:
            return None, None, None, None
        da, dk = outer.back(dy, True)
        if dk:
            raise NoRuleError(f"call_torch({outer.name}) inside a nested gradient: gradients for its keyword "
                              f"arguments are not propagated at second order; pass them positionally")
        return None, da, None, None
    return (y, back), pb


def _call_torch_pullback_rule(state, with_kwargs, dy):
    g = state.back(dy, with_kwargs)
    if state.slot_routes:
        raise NoRuleError(
            f"call_torch({state.name}): differentiating its gradient again (second order) is not supported "
            f"when gradients flow into modules, containers or captured values: torch autograd computed it. "
            f"Use torch.autograd for this higher derivative, or write the code for torchzygote")

    def pb(d):
        if d is not None and any(x is not None for x in (d if type(d) is tuple else (d,))):
            raise NoRuleError(
                f"call_torch({state.name}): its gradient came from torch autograd, which torchzygote cannot "
                f"differentiate again (second order). Use torch.autograd for this higher derivative "
                f"(hessian(..., method='torch')), or write the code for torchzygote")
        return None, None, None
    return g, pb


register_dispatch(call_torch, _call_torch_special)
register_dispatch(_call_torch_special, _call_torch_nested)
register_adjoint(_call_torch_pullback, _call_torch_pullback_rule)


# ====================================================================== to_torch

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
    y, back = _pullback(_kwcall, fn, args, kwargs)
    return back(dy)


def _pullback(f, *args):
    from .api import pullback
    return pullback(f, *args)


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
            y, back = _pullback(call.fn, *args)
        else:
            y, back = _pullback(_kwcall, call.fn, args, kwargs)
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
