"""The state of one gradient computation.

Values (numbers, tensors, tuples) carry their gradient in the generated code's adjoint
variables. Objects with identity (lists, dicts, instances, closures, cells) may be aliased and
mutated, so their gradient lives in the context, keyed by identity, and mirrors their state as
the pullback walks back in time (Zygote keeps mutable state's gradient the same way).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..ir import NO_GRAD
from .algebra import accum, add_owned
from .kinds import has_identity

NO_GRAD_MODE = frozenset((NO_GRAD,))   # ``Context.no_grad`` under torch.no_grad()


class Context:
    """State of one gradient computation: gradients of identity objects and
    of implicit parameters."""

    __slots__ = ("grads", "params", "pgrads", "pown", "tensor_grads", "written", "numbers", "shared", "no_grad",
                 "stores", "opened", "data")

    def __init__(self, params=None):
        self.grads: Dict[int, list] = {}      # id(obj) -> [obj, gradient container]
        self.params = None if params is None else {id(p) for p in params}
        self.pgrads: Dict[int, Any] = {}
        self.pown: Dict[int, Any] = {}   # id(param) -> the sum ``param`` made for it (only pgrads holds it)
        self.tensor_grads: Dict[int, Any] = {}   # module parameters reached through lists (RNNs' weights)
        self.written: Optional[set] = None     # (id(module globals), name) of globals written so far
        self.numbers: Optional[set] = None     # those of them holding a number that may carry a gradient
        self.shared: Optional[dict] = None     # id(an instance's __dict__) -> (it, the instance): one slot
        # the ``consts`` of the transforms Python callees run now: NO_GRAD_MODE during a call made
        # under torch.no_grad() (``Analysis.cut``), whose callees then run their no_grad transforms
        self.no_grad: frozenset = frozenset()
        # stores of values with gradients into what the storing function did not make: an ``except``
        # that sees this change since its ``try`` began refuses (``codegen_forward.Forward.fwd_try``)
        self.stores = 0
        # a call of held modules went through ``J`` (hooks, a rebound class): any code may have run
        # since, so pinned calls check their guards from now on, also closed callers' (``dispatch.Pins``)
        self.opened = False
        # id -> (tensor, its version): tensors read from outside that need no gradient (``values.outside``)
        self.data: Optional[dict] = None

    def wants_global(self, value, fn, name) -> bool:
        """Whether a tensor read from a global needs a gradient: it is one of the Params, or
        differentiated code wrote that global (its gradient flows back to the write)."""
        return self.params is not None and id(value) in self.params or \
            self.written is not None and (id(fn.__globals__), name) in self.written

    def wants_field(self, value) -> bool:
        """Whether a tensor read from a module's field needs a gradient: it is not outside data
        (``values.outside``: a module the top-level function reads from its closure or globals,
        not one of the Params, unwritten since)."""
        data = self.data
        if not data:
            return True
        e = data.get(id(value))
        return e is None or e[0] is not value or e[1] != value._version

    def wrote_global(self, fn, name) -> None:
        if self.written is None:
            self.written = set()
        self.written.add((id(fn.__globals__), name))

    def slot(self, obj):
        """The gradient container of an identity object (dict by key/field; list for lists)."""
        if self.shared is not None and id(obj) in self.shared:
            obj = self.shared[id(obj)][1]
        e = self.grads.get(id(obj))
        if e is None:
            g = [None] * len(obj) if isinstance(obj, list) else {}
            e = self.grads[id(obj)] = [obj, g]
        return e[1]

    def share(self, alias, obj) -> None:
        """``alias`` (an instance's ``__dict__``) keeps its gradients in ``obj``'s slot: a write
        through one is what a later read of the other sees. Set in the forward; every run of
        the pullback starts from empty slots, but the sharing holds."""
        if self.shared is None:
            self.shared = {}
        self.shared[id(alias)] = (alias, obj)

    def peek(self, obj):
        if self.shared is not None and id(obj) in self.shared:
            obj = self.shared[id(obj)][1]
        e = self.grads.get(id(obj))
        return None if e is None else e[1]

    def param(self, value, dy) -> bool:
        """Credit ``dy`` to ``value`` if it is one of the implicit parameters, and say so: the
        gradient is then absorbed, and the caller passes it on no further (to the container it
        was read from, and so to where it was stored from), since that path would reach a read
        of the parameter again and credit it twice (Zygote's ``accum_param`` returns nothing)."""
        if self.params is None or id(value) not in self.params:
            return False
        if dy is not None:
            k = id(value)
            old = self.pgrads.get(k)
            if old is None:
                self.pgrads[k] = dy
            else:   # (the sum is written into from its second contribution on: add_owned)
                self.pgrads[k] = self.pown[k] = add_owned(old, dy, self.pown.get(k) is old)
        return True

    def credit(self, value, dy):
        """``param`` for a value read from where its gradient ends (a global, a field, a
        closure, a default): the parts of ``dy`` that are implicit parameters' are credited,
        also items of tuples (``args = (w, x)``, then ``f(*args)`` or ``a, b = args``); returns
        the rest (None where nothing is left), which the caller passes on."""
        if self.params is None or dy is None:
            return dy
        if id(value) in self.params:
            self.param(value, dy)
            return None
        if isinstance(value, tuple) and not has_identity(value) and type(dy) in (tuple, list) and \
                len(dy) == len(value):
            rest = tuple([self.credit(v, d) for v, d in zip(value, dy)])
            return rest if any(r is not None for r in rest) else None
        return dy
