"""Export a gradient as a ``torch.fx`` graph, to inspect it, save it or hand it to
``torch.compile``.

The generated forward and pullback are run once on the example arguments under
``torch.fx``'s ATen-level tracer (``make_fx``): every tensor operation they
perform is recorded. Python-level control flow and Python numbers are fixed to
what these arguments did, so for code whose branches or loop counts depend on
data the graph is the gradient of the path taken (``graph_module.path_note``
says so).
"""
from __future__ import annotations

from typing import Callable

import torch

from .frontend.lift import lift
from .values.algebra import seed
from .api import pullback
from .ir import If, Loop, Try, walk


def gradient_graph(f: Callable, *example_args) -> torch.fx.GraphModule:
    """A ``GraphModule`` computing ``(value, gradients)`` of ``f`` at arguments shaped
    like ``example_args`` (tensors become graph inputs; other arguments are fixed)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    tensor_pos = [i for i, a in enumerate(example_args) if isinstance(a, torch.Tensor)]

    def value_and_grad(*tensors):
        args = list(example_args)
        for i, t in zip(tensor_pos, tensors):
            args[i] = t
        y, back = pullback(f, *args)
        g = back(seed(y))
        return y, tuple(g[i] for i in tensor_pos)

    try:  # let Python control flow read real values (the path taken is recorded)
        tracer = make_fx(value_and_grad, tracing_mode="real", _error_on_data_dependent_ops=False)
    except TypeError:  # older torch: the option does not exist (and real mode allows it)
        tracer = make_fx(value_and_grad, tracing_mode="real")
    gm = tracer(*(example_args[i] for i in tensor_pos))
    branches = _branches(f, example_args)
    gm.path_note = ("straight-line: the graph is the gradient for any inputs of these shapes"
                    if not branches else
                    f"{f.__qualname__} has control flow ({branches}): the graph is the gradient of the "
                    f"path these example inputs took; other inputs may need another graph")
    return gm


def _branches(f, args) -> str:
    """The kinds of control flow in ``f``'s own IR (callees are not inspected)."""
    try:
        fn_ir = lift(f)[0]
    except Exception:
        return "unknown"
    kinds = sorted({type(n).__name__.lower() for n in walk(fn_ir.body) if isinstance(n, (If, Loop, Try))})
    return ", ".join(kinds)
