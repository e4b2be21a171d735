"""What a module's ``parameters()`` (``named_parameters``, ``buffers``, ``named_buffers``)
yields, as an iterator whose items know the field each came from: torch's generators run as
they are, and a gradient flowing into an item goes where reading that field sends it (an L2
penalty ``sum((p ** 2).sum() for p in m.parameters())``)."""
from __future__ import annotations

from typing import Iterable

import torch

from .algebra import accum
from .context import Context


class ModuleTensors:
    __slots__ = ("_items", "_next", "_owners")

    def __init__(self, items: Iterable, module: torch.nn.Module):
        self._items = list(items)
        self._next = 0
        self._owners: dict = {}   # id(tensor) -> (module, name): the first owner (tied weights)
        for m in module.modules():
            for table in (m._parameters, m._buffers):
                for name, t in table.items():
                    if t is not None:
                        self._owners.setdefault(id(t), (m, name))

    def __iter__(self):
        return self

    def __next__(self):
        if self._next == len(self._items):
            raise StopIteration
        self._next += 1
        return self._items[self._next - 1]

    def credit_rest(self, ctx: Context, dys) -> None:
        """The pullback of ``list(it)`` (or ``tuple``): the items it took, the last ones."""
        for y, dy in zip(self._items[len(self._items) - len(dys):], dys):
            self.credit(ctx, y, dy)

    def credit(self, ctx: Context, y, dy) -> None:
        """The pullback of an item ``y`` (a tensor, or a ``(name, tensor)`` pair) read with
        gradient ``dy``: into its owner's slot, as ``attr_back`` credits a field read."""
        if type(y) is tuple:
            y, dy = y[1], (dy[1] if dy is not None else None)
        owner = self._owners.get(id(y))
        if dy is None or owner is None or ctx.param(y, dy):
            return
        slot = ctx.slot(owner[0])
        slot[owner[1]] = accum(slot.get(owner[1]), dy)
