"""Program order and liveness: where each value is used, and whether the forward may read a
value again after a statement (what in-place writes and their guards need to know)."""
from __future__ import annotations

import itertools
import operator
from typing import Dict, List, Tuple

from .. import ir
from ..frontend import ops
from ..ir import Const, If, Loop, Stmt, Var


class Order:
    """Nodes numbered in program order (``pos``), each value's places of use (``uses``,
    ``last_use``), the spans of each ``If``'s branches, and each node's successor in its
    region (``next``)."""

    def __init__(self, fn: ir.Function, defs: Dict[int, Stmt]):
        self.defs = defs
        self.pos: Dict[int, int] = {}        # id(node) -> its place in program order
        self.last_use: Dict[int, int] = {}   # value -> the place of its last use in the forward
        self.uses: Dict[int, List[int]] = {}  # value -> the places of all its uses
        self.next: Dict[int, object] = {}    # id(node) -> the node after it in its region
        self._arms: List[List[Tuple[int, int]]] = []   # each If: its branches' spans of places
        self._phis: List[Tuple[int, int, int]] = []    # (a region's yield, what it feeds, where: -1 none)
        counter = itertools.count()
        self._order(fn.body, counter)
        self._phi_uses(fn, next(counter))

    def _order(self, r: ir.Region, counter) -> None:
        """Number the nodes in program order and note where each value is used (a region's
        yields at the region's end; a use inside a loop also at the loop's end: the next trip
        uses it again), and the spans of each ``If``'s branches (only one of them runs)."""
        for prev, node in zip([None] + r.nodes, r.nodes):
            self.next[id(prev)] = node
            i = self.pos[id(node)] = next(counter)
            phis = len(self._phis)
            skip = _not_read(node)
            for op in ir.used_operands(node):
                if isinstance(op, Var) and all(op is not k for k in skip):
                    self._use(op.id, i)
            arms = [self._order_region(node, sub, counter) for sub in ir.subregions(node)]
            if isinstance(node, If):
                self._arms.append(arms)
            if isinstance(node, Loop):
                self._loop_end(node, next(counter), phis)

    def _order_region(self, node, sub: ir.Region, counter) -> Tuple[int, int]:
        start = next(counter)
        self._order(sub, counter)
        end = next(counter)
        fed = node.params if isinstance(node, Loop) else node.outs
        for k, op in enumerate(sub.yields):
            if isinstance(op, Var) and k < len(fed):
                self._phis.append((op.id, fed[k].id, end))
            elif isinstance(op, Var):
                self._use(op.id, end)   # a loop's condition to go on
        return start, end

    def _loop_end(self, node: Loop, end: int, phis: int) -> None:
        """What a loop's body reads from outside is read again on the next trip: used at the
        loop's end."""
        self._phis += [(p.id, o.id, -1) for p, o in zip(node.params, node.outs)]   # the last trip's
        inside = set(ir.defs_in(node.body)) | {v.id for v in ir.scoped_vars(node)}
        for inner in ir.walk(node.body):
            for op in ir.used_operands(inner):
                if isinstance(op, Var) and op.id not in inside:
                    self._use(op.id, end)
        self._phis += [(src, t, end) for src, t, at in self._phis[phis:] if at >= 0 and src not in inside]

    def _phi_uses(self, fn: ir.Function, end: int) -> None:
        """A region's yields are uses at the region's end, where what they feed (a branch's
        result, a loop's next trip) is read: the lift merges every name a branch binds, so a
        merge nothing reads is no use."""
        if isinstance(fn.ret, Var):
            self._use(fn.ret.id, end)
        feeds: Dict[int, List[int]] = {}
        for src, t, _ in self._phis:
            feeds.setdefault(t, []).append(src)
        live, work = set(), [v for v in self.uses if v in feeds]
        while work:
            v = work.pop()
            if v not in live:
                live.add(v)
                work += feeds.get(v, [])
        for src, t, at in self._phis:
            if at >= 0 and t in live:
                self._use(src, at)

    def _use(self, vid: int, at: int) -> None:
        self.uses.setdefault(vid, []).append(at)
        self.last_use[vid] = max(self.last_use.get(vid, -1), at)

    def before(self, a, b) -> bool:
        """Whether node ``a`` comes before node ``b`` in program order."""
        return self.pos[id(a)] < self.pos[id(b)]

    def used_after(self, vid: int, s: Stmt) -> bool:
        """Whether the forward may read value ``vid`` after statement ``s``: a use at a later
        place that is not in another branch of an ``If`` whose branch holds ``s`` (a write in
        one branch leaves the other branch's reads alone)."""
        p = self.pos[id(s)]
        if self.last_use.get(vid, -1) <= p:
            return False
        return any(u > p and not self._exclusive(p, u) for u in self.uses[vid])

    def _exclusive(self, p: int, u: int) -> bool:
        """Whether places ``p`` and ``u`` lie in different branches of one ``If``."""
        for arms in self._arms:
            hold = [k for k, (a, b) in enumerate(arms) if a < p < b]
            if hold and any(a < u <= b for k, (a, b) in enumerate(arms) if k != hold[0]):   # b: its yields
                return True
        return False

    def dead_view(self, s: Stmt, first: Var) -> bool:
        """Whether ``s`` writes in place into ``first = base[key]``, a temporary that nothing
        else reads, and the next statement writes the result back (``base[key] += v`` is
        ``t = base[key]; t += v; base[key] = t``): the write-back changes ``base``, and its guards
        keep what the gradient reads, so ``s`` can compute on a copy of ``first`` and leave the
        memory ``first`` may share with ``base`` (a view) alone."""
        d, w = self.defs.get(first.id), self.next.get(id(s))
        if not (d is not None and isinstance(d.fn, Const) and d.fn.value is operator.getitem and len(d.args) == 2
                and isinstance(w, Stmt) and isinstance(w.fn, Const) and w.fn.value is ops.setitem_v
                and len(w.args) == 3 and s.out is not None and isinstance(w.args[2], Var) and w.args[2].id == s.out.id
                and isinstance(d.args[0], Var) and isinstance(w.args[0], Var) and d.args[0].id == w.args[0].id):
            return False
        k1, k2 = d.args[1], w.args[1]
        same_key = k1.id == k2.id if isinstance(k1, Var) and isinstance(k2, Var) else \
            isinstance(k1, Const) and isinstance(k2, Const) and k1.value is k2.value
        return same_key and all(u == self.pos[id(s)] for u in self.uses.get(first.id, ()))


def _not_read(node) -> tuple:
    """The operands of ``node`` whose contents it does not read: the written object's new name
    (``ops.mutated``, ``ops.returned``), the value before an in-place write under no_grad, to
    which ``ops.through`` passes a gradient, the operands of an identity test (``y is x``)."""
    if not (isinstance(node, Stmt) and isinstance(node.fn, Const)):
        return ()
    f = node.fn.value
    if f is ops.mutated or f is ops.returned or f is ops.through:
        return node.args[:1]
    if f is operator.is_ or f is operator.is_not:
        return tuple(node.args)
    return ()
