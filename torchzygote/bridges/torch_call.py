"""``call_torch(fn, *args)``: torch-autograd code run inside differentiated code (Zygote's
``pycall`` adjoint). The forward runs ``fn`` on fresh graph leaves; the pullback calls
``torch.autograd.grad`` and routes each leaf's gradient back to where its tensor came from
(an argument, a container's slot, a module's parameter, a captured cell, a ``Params`` tensor)."""
from __future__ import annotations

import copy
import ctypes
import functools
import types
from typing import Callable, List

import torch

from ..ad import dispatch
from ..values.algebra import accum
from ..values.kinds import same_tuple
from ..values.record import Record
from ..errors import GradientError, NoRuleError
from ..rules.fallback import _as_cotangent
from ..frontend import ops
from ..rules.registry import register_adjoint, register_dispatch
from .objects import _diff, _fields, _is_plain_object


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
        """``_prep`` of an object with identity: its gradient goes into its slot in the context."""
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
            return self._prep_closure(x, where)
        if isinstance(x, types.MethodType):
            c, tm = self._prep(x.__self__, where)
            return (x if c is x.__self__ else types.MethodType(x.__func__, c)), tm
        if isinstance(x, functools.partial):
            return self._prep_partial(x, where)
        if _is_plain_object(x):
            return self._prep_object(x, where)
        return x, None

    def _prep_closure(self, x: types.FunctionType, where):
        """A function's captured values: the call sees leaves in its cells, restored after it."""
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

    def _prep_partial(self, x: functools.partial, where):
        c, tm = self._prep(x.func, where)
        pa = [self._prep(a, f"{where}'s bound argument {i + 1}") for i, a in enumerate(x.args)]
        pk = {k: self._prep(v, f"{where}'s bound {k!r}") for k, v in x.keywords.items()}
        if any(p[1] is not None for p in pa) or any(p[1] is not None for p in pk.values()):
            self.slot_routes = True
            return (functools.partial(c, *[p[0] for p in pa], **{k: p[0] for k, p in pk.items()}),
                    ("partial", x, tm, [p[1] for p in pa], {k: p[1] for k, p in pk.items()}))
        return (x if c is x.func else functools.partial(c, *x.args, **x.keywords)), tm

    def _prep_object(self, x, where):
        """A plain object (a dataclass, a simple object): a copy whose fields hold the leaves."""
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
            if ctx.param(t, g):
                continue
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
        return same_tuple(y, [_detached(e) for e in y])
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


dispatch.COMPUTES.update((call_torch, ops.under_torch))
register_dispatch(call_torch, _call_torch_special)
register_dispatch(ops.under_torch, _call_torch_special)
register_dispatch(_call_torch_special, _call_torch_nested)
register_adjoint(_call_torch_pullback, _call_torch_pullback_rule)
