"""Binding a call's arguments to the parameters of a rule or of a Python function, and routing
the gradients of the bound parameters back to the call's positional and keyword arguments."""
from __future__ import annotations

from ..errors import NoRuleError
from ..values.algebra import accum


def bind_rule(rule, args, kw):
    if not kw and (len(args) == len(rule.params) or rule.vararg):
        return args
    out = list(args[:len(rule.params)])
    for p in rule.params[len(out):]:
        if p in kw:
            out.append(kw[p])
        elif p in rule.defaults:
            out.append(rule.defaults[p])
        else:
            raise TypeError(f"{rule.name}() missing argument {p!r}")
    extra = set(kw) - set(rule.params)
    if extra:
        raise NoRuleError(f"torchzygote's rule for {rule.name} takes ({', '.join(rule.params)}): it has no "
                          f"gradient for a call with keyword arguments {sorted(extra)}; leave them out, or give "
                          f"the call a rule with @torchzygote.adjoint")
    return tuple(out) + tuple(args[len(rule.params):])


def rebind_back(back, rule, args, kwargs):
    n = len(args)
    if kwargs is None:
        if rule.vararg or len(rule.params) == n:
            return back
        return lambda dy: back(dy)[:n]

    def b(dy):
        g = back(dy)
        dk = {k: g[rule.params.index(k)] for k in kwargs if k in rule.params}
        return tuple(g[:n]), dk
    return b


def bind_function(f, args, kw):
    """Bind a call to ``f``'s parameters as the flat list generated code takes,
    and return how to route the flat gradients back to the call."""
    code = f.__code__
    na, nk = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames[:na + nk]
    has_var, has_kw = bool(code.co_flags & 0x04), bool(code.co_flags & 0x08)
    defaults = f.__defaults__ or ()
    kwdefaults = f.__kwdefaults__ or {}
    pos = list(args[:na])
    src = [("a", i) for i in range(len(pos))]
    for i in range(len(pos), na):
        name = names[i]
        if name in kw:
            pos.append(kw[name])
            src.append(("k", name))
        elif i >= na - len(defaults):
            pos.append(defaults[i - (na - len(defaults))])
            src.append(("d", None))
        else:
            raise TypeError(f"{f.__qualname__}() missing required argument {name!r}")
    flat = pos
    if has_var:
        flat.append(tuple(args[na:]))
        src.append(("v", len(args) - na))
    elif len(args) > na:
        raise TypeError(f"{f.__qualname__}() takes {na} positional arguments but {len(args)} were given")
    for name in names[na:]:
        if name in kw:
            flat.append(kw[name])
            src.append(("k", name))
        elif name in kwdefaults:
            flat.append(kwdefaults[name])
            src.append(("d", name))
        else:
            raise TypeError(f"{f.__qualname__}() missing keyword-only argument {name!r}")
    used = set(names[:na + nk])
    if has_kw:
        extra = {k: v for k, v in kw.items() if k not in used}
        flat.append(extra)
        src.append(("x", list(extra)))
    else:
        bad = [k for k in kw if k not in used]
        if bad:
            raise TypeError(f"{f.__qualname__}() got an unexpected keyword argument {bad[0]!r}")

    def unbind(ctx, flat, g, nargs, kwargs):
        da = [None] * nargs
        dk = {}
        for i, ((kind, where), gi) in enumerate(zip(src, g)):
            if kind == "x":  # **kwargs: a dict made for the call; its gradient is in its slot
                gi = accum(gi, ctx.peek(flat[i]))
            elif kind == "d" and gi is not None:  # a default: the function object holds it
                gi = ctx.credit(flat[i], gi)   # (implicit parameters in it: credited as such)
                if gi is not None:
                    _default_back(ctx, f, i - (na - len(defaults)), where, gi)
                continue
            if gi is None:
                continue
            if kind == "a":
                da[where] = gi
            elif kind == "k":
                dk[where] = gi
            elif kind == "v" and isinstance(gi, tuple):
                da = da[:na] + list(gi) + da[na + where:]
            elif kind == "x" and isinstance(gi, dict):
                dk.update(gi)
        return tuple(da) if kwargs is None else (tuple(da), dk)

    unbind.sources = src
    return flat, unbind


def _default_back(ctx, f, j: int, name, g) -> None:
    """Credit the gradient of a default a call used: the ``j``-th positional default, kept in the
    function's slot (its defaults are a tuple, a value), or the keyword-only default ``name``, kept
    in the slot of the ``__kwdefaults__`` dict itself (a dict's gradient lives in its slot, where
    ``make_function``'s pullback and reads of that dict find it)."""
    if name is not None:
        slot = ctx.slot(f.__kwdefaults__)
        slot[name] = accum(slot.get(name), g)
        return
    slot = ctx.slot(f)
    d = list(slot.get("__defaults__") or [None] * len(f.__defaults__))
    d[j] = accum(d[j], g)
    slot["__defaults__"] = tuple(d)
