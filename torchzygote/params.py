"""``Params`` and ``Grads``: Zygote's implicit parameters (a set of tensors by identity) and
the gradients a call with them returns, keyed by the parameter objects."""
from __future__ import annotations

from typing import Iterable


class Params:
    """A set of tensors (by identity) to take gradients with respect to."""

    def __init__(self, xs: Iterable = ()):
        self.order = []
        self._ids = set()
        for x in xs:
            self.add(x)

    def add(self, x) -> None:
        if id(x) not in self._ids:
            self._ids.add(id(x))
            self.order.append(x)

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)

    def __contains__(self, x):
        return id(x) in self._ids

    def __repr__(self):
        return f"Params([{', '.join(_short(p) for p in self.order)}])"


class Grads:
    """Gradients of implicit parameters, keyed by the parameter object itself."""

    def __init__(self, grads: dict, params: Params):
        self._grads = grads
        self.params = params

    def __getitem__(self, x):
        if id(x) not in self.params._ids:
            raise KeyError("not a parameter of this gradient (not in its Params)")
        return self._grads.get(id(x))

    def __contains__(self, x):
        return id(x) in self.params._ids

    haskey = __contains__

    def __iter__(self):
        return iter(self.params)

    def keys(self):
        return list(self.params)

    def values(self):
        return [self[p] for p in self.params]

    def items(self):
        return [(p, self[p]) for p in self.params]

    def __len__(self):
        return len(self.params)

    def __repr__(self):
        return f"Grads({len(self.params)} parameters)"

    def __add__(self, other: "Grads") -> "Grads":
        """The sum over the union of the two sets of parameters (accumulating a gradient over
        batches, as Zygote's ``gs1 .+ gs2``); a parameter without a gradient in one adds nothing."""
        if not isinstance(other, Grads):
            return NotImplemented
        params = Params([*self.params, *other.params])
        grads = {}
        for p in params:
            a = self._grads.get(id(p)) if p in self.params else None
            b = other._grads.get(id(p)) if p in other.params else None
            grads[id(p)] = b if a is None else a if b is None else a + b
        return Grads(grads, params)

    def __mul__(self, c) -> "Grads":
        """Every gradient times the number ``c`` (a learning rate, a mean over batches)."""
        if isinstance(c, Grads):
            return NotImplemented
        return self.map(lambda g: g * c)

    __rmul__ = __mul__

    def __truediv__(self, c) -> "Grads":
        return self.map(lambda g: g / c)

    def map(self, f) -> "Grads":
        """``f`` applied to each parameter's gradient (None stays None)."""
        return Grads({id(p): None if self[p] is None else f(self[p]) for p in self.params}, self.params)


def _short(x):
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__}{tuple(shape)}" if shape is not None else repr(x)
