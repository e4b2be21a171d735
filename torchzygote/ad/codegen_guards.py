"""Where in-place writes are guarded: which values a write may overwrite that the
pullback or the forward still reads (known now, or checked at run time by the functions in
``write_checks.py``), and which arguments' memory the pullback reads."""
from __future__ import annotations

import operator
import re
from typing import List, Optional, Tuple

import numpy as np

from .. import ir
from ..frontend import ops
from ..ir import Const, Stmt, Var
from ..rules.registry import ARRAY, DICT, LIST, OBJECT, TENSOR
from .. import errors
from . import dispatch, jvp_dispatch
from ..values import versions
from .naming import words
from .write_checks import check_call_writes, check_not_held, copy_item, fresh_array, keep_if_shared, version_of

WRITES_FIRST = (np.copyto,)   # functions that write into their first argument
MAY_BE_TENSOR = (TENSOR, OBJECT, ARRAY)   # kinds whose values in-place writes may share memory with
# a constant number as a tensor of another's dtype (codegen.rule_mapping): no read of its values
_DTYPE_ONLY = re.compile(r"\b_kt\(([^(),]+), v\d+\)")
_DTYPE_READ = re.compile(r"\bv\d+\.dtype\b")   # (a value's dtype: kept by in-place writes)
# a loop's pullback binding a trip's saved values (``codegen_pullback._trip_head``): no read of them
_SAVED_BINDING = re.compile(r"^\s*(for [\w, ]+ in reversed\(_s\d+\):|[\w, ]+ = _st\[_i\]|[\w, ]+ = _s\d+\[_k\d+\])$",
                            re.MULTILINE)
# callees whose calls need no guards: they never write into a tensor argument, or (the dispatchers,
# in generated code differentiated again) the code they run checks its own calls
_UNGUARDED = (getattr, hasattr, isinstance, len, dispatch.J, dispatch.Jkw, jvp_dispatch.F, jvp_dispatch.Fkw)
INPLACE_OPS = (operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ipow, operator.imod,
               operator.ifloordiv, operator.imatmul)


_MAKERS = (ops.new_cell, ops.build_list, ops.build_dict, ops.build_tuple, list, tuple, dict)


class WriteGuards:
    """The in-place half of ``Codegen`` (``codegen.py``): a mixin over its names and facts."""

    def _inplace_guards(self, s: Stmt, first: Var) -> List[str]:
        """Before ``s`` writes ``first`` in place: keep what the pullback reads of the memory
        it overwrites (Tapenade's rule), views of the same tensor first, then the tensor itself
        (as ``_ip``, which the write then takes)."""
        pre = []
        root = self.A.root_of(first)
        for vid in self._live:
            if vid == first.id or self.A.K.get(vid) not in MAY_BE_TENSOR:
                continue
            read, later = self._read_back(vid), self.order.used_after(vid, s)
            same = self.A.root.get(vid, vid) == root
            if same and self.A.K.get(vid) == TENSOR:
                # a read of it afterwards sees the new contents, but the IR's value is the old one: its
                # gradient would not follow the write (nor would the old value, if the pullback reads it)
                if read or later and (vid in self.A.varied or any(isinstance(a, Var) and a.id in self.A.varied
                                                                 for a in s.args)):
                    self._check_unused_after(vid, s)
                if read:
                    pre.append(self._bound(vid, f"v{vid} = v{vid}.clone()"))
            elif (read or later) and (same or self._may_alias(vid) or self._may_alias(first.id)) and \
                    not self._apart(vid, first.id):
                # (an array read from the one written, ``a = y[0]``, is a view or a copy:
                # known at run time)
                # memory shared by other means (a list, an object, an argument, a callee's
                # result): known at run time. A value read again afterwards would be stale.
                held = self._global_read(vid)
                pre.append(self._bound(vid, f"v{vid} = {self.glob(keep_if_shared, 'keep')}(v{vid}, "
                                            f"{self.v(first)}, {later!r}, {s.loc!r}{', True' if held else ''})"))
        pre += self._holder_check(s, first)
        if self._read_back(first.id) or self.A.K.get(first.id) == ARRAY:
            self._check_unused_after(first.id, s)
        if self._read_back(first.id):
            copy = "_ip.clone()" if self.A.K.get(first.id) == TENSOR else \
                f"{self.glob(versions.copy_value, 'copy')}(_ip)"   # a tensor or an array: known at run time
            pre += [f"_ip = {self.v(first)}", f"{self.v(first)} = {copy}"]
        return pre

    def _written(self, s: Stmt) -> Optional[Tuple[Var, Optional[int]]]:
        """For a write by name dispatched at run time (``y -= x``, ``y[k] = v``, ``y.mul_(2)``,
        whatever kind ``y`` turns out to have): the value written and its position among the
        statement's arguments (None: inside a tuple built before). Generated code that is
        differentiated again makes its writes through the dispatcher (``J(ctx, f, *args)``,
        ``Jkw(ctx, f, args, kwargs)``), so the dispatch is looked through."""
        fn, args, pos = s.fn, s.args, 0
        while isinstance(fn, Const) and fn.value in (dispatch.J, dispatch.Jkw) and len(args) >= 3:
            if fn.value is dispatch.J:
                fn, args, pos = args[1], args[2:], None if pos is None else pos + 2
                continue
            d = self.A.defs.get(args[2].id) if isinstance(args[2], Var) else None
            if d is None or not (isinstance(d.fn, Const) and d.fn.value is ops.build_tuple):
                return None
            fn, args, pos = args[1], d.args, None
        if isinstance(fn, Const) and fn.value is ops.call_method and len(args) > 2 and \
                isinstance(args[1], Const) and args[1].value in ops.MUTATING_FUNCTIONS and isinstance(args[2], Var):
            return args[2], None if pos is None else pos + 2   # np.add.at(x, i, v)
        if not args or not isinstance(args[0], Var) or not isinstance(fn, Const):
            return None
        f = fn.value
        if f in INPLACE_OPS or f is ops.setitem_v or f is ops.call_method and len(args) > 1 and \
                isinstance(args[1], Const) and isinstance(args[1].value, str) and \
                (args[1].value.endswith("_") and not args[1].value.endswith("__") or
                 args[1].value in ops.MUTATING_METHODS):
            return args[0], pos
        if f in WRITES_FIRST:
            return args[0], pos
        return None

    def _item_copy(self, s: Stmt, first: Var) -> str:
        """The copy ``s`` writes into in place of ``first = base[key]`` (``dead_view``): a plain
        copy where ``base`` is a tensor or an array (the write-back changes it), else one checked
        against the other holders of the item (``write_checks.copy_item``)."""
        base = self.A.defs[first.id].args[0]
        if self.A.K.get(base.id) in (TENSOR, ARRAY):
            return f"{self.v(first)}.clone()" if self.A.K.get(first.id) == TENSOR else \
                f"{self.glob(versions.copy_value, 'copy')}({self.v(first)})"
        return f"{self.glob(copy_item, 'copy_item')}({self._item_holders(s, first, base, self._live)})"

    def _item_holders(self, s: Stmt, first: Var, base: Var, bound) -> str:
        """``write_checks.check_item_alone``'s arguments for ``first = base[key]`` written by ``s``
        (``bound``: the values bound where ``s`` runs)."""
        later = "".join(f"v{vid}, " for vid in bound if vid not in (first.id, base.id) and
                        self.A.K.get(vid) in MAY_BE_TENSOR and self.order.used_after(vid, s))
        return f"{self.v(first)}, {self.v(base)}, ({later}), {s.loc!r}"

    def _runtime_write_guards(self, s: Stmt, first: Var) -> List[str]:
        """Before an in-place write of ``first`` dispatched at run time: tensors that may
        share its memory and are read again afterwards would be stale values, so they are
        checked as for a known write."""
        lines = self._holder_check(s, first)
        for vid in self._live:
            if vid != first.id and self.A.K.get(vid) in MAY_BE_TENSOR and \
                    (self._read_back(vid) or self.order.used_after(vid, s)):
                later = self.order.used_after(vid, s)
                lines.append(self._bound(vid, f"v{vid} = {self.glob(keep_if_shared, 'keep')}(v{vid}, "
                                                f"{self.v(first)}, {later!r}, {s.loc!r})"))
        return lines

    def _call_write_guards(self, s: Stmt, written: Optional[Var]) -> Tuple[List[str], List[str]]:
        """Around a call dispatched at run time (not the write ``written``, guarded above): the
        lines before and after it that check the tensors passed to it come back unchanged where
        this function reads them again under their old names, in the forward or the pullback,
        or where their name takes the call's result only if it is the same object
        (``ops.returned``: ``torch.relu_(y)``). See ``check_call_writes``."""
        args = list(s.args) + [v for _, v in s.kwargs]
        if dispatch.own_code(self.fn.file) or isinstance(s.fn, Const) and any(s.fn.value is f for f in _UNGUARDED) or \
                not any(isinstance(a, Var) and a.id in self.A.varied for a in args):
            return [], []   # (constants only: a write of constants into them changes no gradient)
        nxt = self.order.next.get(id(s))
        if isinstance(nxt, Stmt) and isinstance(nxt.fn, Const) and nxt.fn.value is operator.is_:
            nxt = self.order.next.get(id(nxt))   # (the flag ``ops.returned`` takes)
        renewed = nxt.args[0] if isinstance(nxt, Stmt) and isinstance(nxt.fn, Const) and \
            nxt.fn.value is ops.returned and nxt.args[1] is s.out else None
        watched, how = [], []
        for a in args:
            if not isinstance(a, Var) or a is written or a in watched or self.A.K.get(a.id) not in (TENSOR, OBJECT) \
                    or a.id in self.A.mods.held:   # (a module, a function: no version counter)
                continue
            why = "later" if self._read_after(a, s) else "back" if a.id in self._value_reads else \
                "returned" if a is renewed else None
            aliases = self._aliases_read(s, a) if why is None or why == "returned" else []
            if why is not None or aliases:
                watched.append(a)
                how.append(why if not aliases else (why, tuple(aliases)))
        if not watched:
            return [], []
        vers = "".join(f"{self.v(a)}._version, " if self.A.K.get(a.id) == TENSOR else
                       f"{self.glob(version_of, 'version')}({self.v(a)}), " for a in watched)
        names = "".join(self.v(a) + ", " for a in watched)
        # the other names of an argument written (a callee returns the tensors it writes into), read
        # only if one was: ``(why, (names,))`` (a loop's value may be unbound yet: ``_UNDEF``)
        hows = "(" + "".join(f"{h!r}, " if type(h) is not tuple else
                             f"({h[0]!r}, ({''.join(f'v{vid}, ' for vid in h[1])})), " for h in how) + ")"
        n = self.nid(s)
        out = self.v(s.out) if s.out is not None else "None"
        return [f"_w{n} = ({vers})"], [f"if ({vers}) != _w{n}: {self.glob(check_call_writes, 'check_writes')}("
                                     f"{self.v(s.fn)}, _w{n}, ({names}), {hows}, {out}, {s.loc!r})"]

    def _aliases_read(self, s: Stmt, a: Var) -> List[int]:
        """Tensors bound where call ``s`` runs, other than ``a``, that the forward or the pullback
        reads again and that may be argument ``a`` under another name (a callee's result, an item,
        an argument: memory the analysis does not follow). A write the callee makes into ``a``
        would change them unseen."""
        opaque = self._may_alias(a.id)
        ids = {o.id for o in s.args if isinstance(o, Var)}
        return [vid for vid in self._live if vid not in ids and vid not in self._in_branch and
                self.A.K.get(vid) == TENSOR and (self.order.used_after(vid, s) or vid in self._value_reads) and
                (opaque or self._may_alias(vid)) and not self._apart(vid, a.id)]

    def _read_after(self, a: Var, s: Stmt) -> bool:
        """Whether the forward reads ``a`` after ``s``, or a tensor that shares its memory as the
        analysis knows it (its view's base, ``scale(y[1:3])`` then ``y``; views share the base's
        version counter, so a write through either is seen)."""
        if self.order.used_after(a.id, s):
            return True
        if self._members is None:   # root -> the values that may share its memory, once
            self._members = {}
            for v, r in self.A.root.items():
                self._members.setdefault(r, []).append(v)
        root = self.A.root.get(a.id, a.id)
        return any(v != a.id and self.order.used_after(v, s) for v in [root] + self._members.get(root, []))

    def _bound(self, vid: int, line: str) -> str:
        """A guard line for value ``vid``; a branch's value may be unbound (the branch did not
        run): it starts as None, and the guard runs only if the branch set it."""
        if vid not in self._in_branch:
            return line
        self._init_none.add(vid)
        return f"if v{vid} is not None: {line}"

    def _check_unused_after(self, vid: int, s: Stmt) -> None:
        """The old value of a tensor written in place is kept for the pullback by giving
        its name a copy: only right if the forward does not read that name again."""
        if self.order.used_after(vid, s):
            if self.A.K.get(vid) == ARRAY:
                raise errors.LiftError(
                    "torchzygote cannot differentiate this in-place write: it changes an array (through "
                    "another name or a view) that the code reads again afterwards under its old value; "
                    "write into a copy (`y = y.copy()` before writing into y) or write through the "
                    "array's own name", s.loc)
            raise errors.LiftError(
                "torchzygote cannot differentiate this in-place write: it changes a tensor (through "
                "another name or a view) that the code reads again afterwards, whose gradient would not "
                "follow the change; modify a copy (`y = y.clone()`) or write through the tensor's own name",
                s.loc)

    def _holder_check(self, s: Stmt, target: Var) -> List[str]:
        """Before an in-place write: the cells, lists and dicts this function made (at its top
        level, before ``s``) and its list and dict arguments, if they are read afterwards, must
        not hold the tensor written: a later read would give the new value the old one's gradient."""
        d = self.A.defs.get(target.id)
        own = d.args[0].id if d is not None and isinstance(d.fn, Const) and d.fn.value is getattr and \
            d.args and isinstance(d.args[0], Var) else None   # the name's own cell is written back
        holders = [n.out for n in self.fn.body.nodes
                   if self.order.before(n, s) and isinstance(n, Stmt) and n.out is not None and n.out.id != own
                   and self._made_here(n)]
        holders += [p for p in self.fn.params[1:] if self.A.K.get(p.id) in (LIST, DICT)]
        holders = [h for h in holders if self.order.used_after(h.id, s)]  # read again
        if not holders:
            return []
        hs = "".join(self.v(h) + ", " for h in holders)
        return [f"{self.glob(check_not_held, 'held')}({self.v(target)}, ({hs}), {s.loc!r})"]

    def _made_here(self, n: Stmt) -> bool:
        """Whether ``n`` makes a cell, list, tuple or dict (``[z]``, ``list(...)``, ``(z,)``), or
        renews one it made (``l[0] = v``). State read from outside is not one: a later read of
        it is a read of the object as it is then (``rewrite_item``)."""
        while isinstance(n, Stmt) and isinstance(n.fn, Const):
            f = n.fn.value
            if f in _MAKERS:
                return True
            if f is not ops.setitem_v or not n.args or not isinstance(n.args[0], Var):
                return False
            n = self.A.defs.get(n.args[0].id)
        return False

    def _global_read(self, vid: int) -> bool:
        """Whether tensor value ``vid``'s root was read from a global (``_may_alias``)."""
        d = self.A.defs.get(self.A.root.get(vid, vid))
        return d is not None and isinstance(d.fn, Const) and d.fn.value is ops.get_global

    def _may_alias(self, vid: int) -> bool:
        """Whether tensor value ``vid`` may share memory with a tensor of another root: its
        root is an argument, or was read from a container, an object or a global, or came
        from a call the analysis does not see into (ops with rules make new tensors)."""
        root = self.A.root.get(vid, vid)
        d = self.A.defs.get(root)
        if d is None:
            return True   # an argument or a loop or branch value
        r = self.A.rule.get(id(d))
        if self.A.K.get(root) == ARRAY or self.A.K.get(vid) == ARRAY:
            # numpy returns views from many functions (np.ravel, np.asarray, x.T, astype(copy=False)):
            # only results known to be new memory are apart from other roots
            f = r.fn if r is not None else d.fn.value if isinstance(d.fn, Const) else None
            return not (f is not None and not d.kwargs and fresh_array(f))
        return r is None or r.fn in (operator.getitem, getattr, ops.get_global) or r.effect

    def _apart(self, vid: int, target: int) -> bool:
        """Whether array ``vid`` cannot share the memory of array ``target``: the target's root is
        new memory (a fresh result) made after ``vid``'s root (an argument, or an earlier value)."""
        rt, rv = self.A.root.get(target, target), self.A.root.get(vid, vid)
        d, dv = self.A.defs.get(rt), self.A.defs.get(rv)
        if rt == rv or self.A.K.get(rt) != ARRAY or d is None or self._may_alias(target):
            return False
        if dv is None:
            return any(p.id == rv for p in self.fn.params)
        return id(dv) in self.order.pos and id(d) in self.order.pos and self.order.before(dv, d)

    def _written_roots(self, r: ir.Region) -> set:
        """Roots of the tensors a loop body writes in place (None: a write whose target is
        known at run time only): a value saved for the pullback in one trip and written in
        a later trip is saved as a copy."""
        out = set()
        for node in ir.walk(r):
            if not isinstance(node, Stmt) or not node.args or not isinstance(node.args[0], Var):
                continue
            rule = self.A.rule.get(id(node))
            if rule is not None and rule.inplace:
                out.add(self.A.root_of(node.args[0]))
            elif rule is None and self._written(node) is not None:
                out.add(None)
        loop = self._loops_by_body().get(id(r))
        while loop is not None:   # (``a, b = b, a``: a tensor written under one name is another's next trip)
            pairs = [(self.A.root_of(p), self.A.root_of(n)) for p, n in zip(loop.params, loop.body.yields)
                     if isinstance(n, Var)]
            grown = {x for pair in pairs if (pair[0] in out) != (pair[1] in out) for x in pair}
            if not grown:
                break
            out |= grown
        return out

    def _loops_by_body(self) -> dict:
        """id(a loop's body) -> the loop, for this function, made once."""
        if self._loop_bodies is None:
            self._loop_bodies = {id(n.body): n for n in ir.walk(self.fn.body) if isinstance(n, ir.Loop)}
        return self._loop_bodies

    def _array_may_alias(self, name: str) -> bool:
        """Whether saved value ``name`` is an array that may share memory with one a loop writes."""
        m = re.fullmatch(r"v(\d+)", name)
        return m is not None and self.A.K.get(int(m.group(1))) == ARRAY and self._may_alias(int(m.group(1)))

    def _saved_copy(self, name: str, written: set) -> bool:
        """Whether a loop trip saves ``name`` as a copy: a later trip may write into it (its root is
        among ``written``, or may share memory with what is) and the pullback reads its values (not
        only its dtype: ``x[i] = v``'s buffer is saved as it is)."""
        value = re.fullmatch(r"v(\d+)", name)
        if value is not None and not self._read_back(int(value.group(1))):
            return False
        return self._saved_root(name) in written or \
            value is not None and (None in written or bool(written) and self._array_may_alias(name))

    def _saved_root(self, name: str):
        m = re.fullmatch(r"v(\d+)", name)
        return self.A.root.get(int(m.group(1)), int(m.group(1))) if m else False

    def reads_params(self) -> tuple:
        """Positions of the arguments whose memory the pullback reads (directly or through a
        view): a caller that writes into one of them afterwards would change the gradient."""
        roots = {self.A.root.get(v, v) for v in self._read_set()}
        reads = tuple(i for i, p in enumerate(self.fn.params[1:]) if p.id in roots)
        ret = self.fn.ret
        if isinstance(ret, Var) and self.A.root_of(ret) in roots:
            reads += (-1,)   # the result itself (``return torch.exp(x)``: its pullback reads it)
        return reads

    def _read_back(self, vid: int) -> bool:
        """Whether the pullback reads primal value ``vid``."""
        return vid in self._read_set()

    def _read_set(self) -> set:
        """The primal values the pullback reads: one scan of its text (a search, and a new
        pattern, per value was most of a nested transform's time)."""
        if self._read_ids is None:
            text = _SAVED_BINDING.sub("", _DTYPE_READ.sub("", _DTYPE_ONLY.sub(r"_kt(\1)", self._rev_text)))
            self._read_ids = {int(w[1:]) for w in words(text) if w[0] == "v" and w[1:].isdigit()}
        return self._read_ids
