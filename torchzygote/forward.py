"""Forward mode: ``jvp``, ``pushforward``, ``D`` and ``Dual`` (the seeds' dual numbers).

The function is transformed source to source, as for reverse mode, into code that computes each
value's tangent beside it (``ad/jvp_codegen.py``), with the tangents of the same rule table. One
forward pass gives the derivative along one input direction, whatever the number of outputs:
forward mode is the cheap one for functions with more outputs than inputs (a Jacobian column
per pass), reverse mode for the opposite (a row per pass).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Tuple

import torch

from .ad import dispatch
from .ad.jvp_dispatch import F, FwdContext, user_rule
from .ad.jvp_nested import nested_dispatch
from .rules.registry import register_jvp
from .errors import TorchZygoteError
from .rules.tangents import tz
from .values.dual import Dual

__all__ = ["jvp", "pushforward", "D", "Dual", "jvp_rule", "taylor"]


def _check(p, t, i) -> None:
    if t is None:
        return
    if isinstance(p, torch.Tensor):
        if not isinstance(t, torch.Tensor) or t.shape != p.shape:
            raise TorchZygoteError(f"jvp: the tangent of argument {i} must be a tensor of shape {tuple(p.shape)} "
                                   f"(got {type(t).__name__}{' of shape ' + str(tuple(t.shape)) if isinstance(t, torch.Tensor) else ''})")
    elif type(p) in (tuple, list):
        if type(t) not in (tuple, list) or len(t) != len(p):
            raise TorchZygoteError(f"jvp: the tangent of argument {i} must be a {type(p).__name__} of {len(p)} items")
        for x, y in zip(p, t):
            _check(x, y, i)


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> Tuple[Any, Any]:
    """``(f(*primals), J·tangents)``: the value and its directional derivative, in one forward
    pass (``torch.func.jvp``'s and JAX's signature). A tangent may be None (that argument is held
    constant); structures (tuples, lists, dicts) take tangents of the same structure. The output
    tangent has the output's structure, with zeros where it does not depend on the inputs."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise TorchZygoteError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one tangent "
                               f"(or None) per argument")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        _check(p, t, i)
    ctx = FwdContext()
    y, ty = F(ctx, f, *[ctx.pack_tree(p, t) for p, t in zip(primals, tangents)])
    if ty is None:
        y, ty = ctx.sp(y)
    return y, tz(ty, y)


def _nested_jvp(octx, args, kw):
    """``jvp`` inside a forward-mode computation (forward over forward): the inner computation's
    generated code, transformed by the outer one (its values with their outer tangents inside)."""
    f, primals, tangents = args
    ictx = FwdContext()
    res, _ = nested_dispatch(octx, (ictx, f, *[ictx.pack_tree(p, t) for p, t in zip(primals, tangents)]), {})
    y, ty = res
    if ty is None:
        y, ty = ictx.sp(y)
    return (y, tz(ty, octx.vo(y))), None


register_jvp(jvp, _nested_jvp)


def pushforward(f: Callable, *args) -> Callable:
    """The linear map ``tangents -> J·tangents`` of ``f`` at ``args`` (Zygote's ``pushforward``):
    each call is one forward pass."""
    def push(*tangents):
        return jvp(f, args, tangents)[1]
    return push


def _one(x):
    if isinstance(x, torch.Tensor):
        return torch.ones_like(x)
    return type(x)(1) if isinstance(x, (float, complex)) else 1.0


def D(f: Callable, x) -> Any:
    """The derivative of ``f`` at ``x`` by forward mode: the seeds' ``D(f, x) = f(Dual(x, one(x))).ϵ``
    (for a tensor ``x``, the directional derivative along all-ones)."""
    return jvp(f, (x,), (_one(x),))[1]


def taylor(f: Callable, x, order: int, v=None) -> list:
    """The Taylor coefficients ``[y0, y1, ..., y_order]`` of ``t -> f(x + t·v)`` at ``t = 0``
    (``y_k = (d/dt)^k f / k!``; ``v`` defaults to one, or all-ones for a tensor): one pass of
    ``f`` propagating truncated series through each operation (Taylor mode, as JAX's ``jet``),
    instead of ``order`` nested derivatives. ``k! * y_k`` is the k-th derivative."""
    if not isinstance(order, int) or order < 1:
        raise TorchZygoteError(f"taylor: order must be a positive integer, got {order!r}")
    v = _one(x) if v is None else v
    zero = v * 0
    ctx = FwdContext("taylor")
    y, ys = F(ctx, f, Dual(x, [v] + [zero] * (order - 1), ctx))
    if ys is None:
        y, ys = ctx.up(y)
    if ys is None:
        return [y] + [y * 0] * order
    return [y, *ys]


def jvp_rule(f: Callable) -> Callable:
    """Give ``f`` a forward-mode rule (as ``adjoint`` gives a reverse-mode one)::

        @tz.jvp_rule(my_op)
        def my_op_jvp(primals, tangents):      # tangents: None where an argument has none
            (x,) = primals
            (dx,) = tangents
            return my_op(x), None if dx is None else 2 * x * dx

    The rule is used wherever forward mode meets ``f``; reverse mode is unaffected."""
    def register(rule: Callable) -> Callable:
        register_jvp(f, user_rule(rule))
        dispatch.COMPUTES.add(f)   # (under torch.no_grad() it runs as it is)
        return rule
    return register
