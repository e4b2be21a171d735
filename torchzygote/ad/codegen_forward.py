"""The forward's text: statements in order, rules inlined as expressions, other calls
dispatched at run time (each returns its pullback), loops and branches as Python's own,
the values a loop's pullback reads pushed on one stack per trip."""
from __future__ import annotations

import ast
import operator
import re
from typing import List, Optional

import torch

from .. import errors, ir
from ..frontend import ops
from ..ir import Const, If, Loop, Stmt, Try, Var
from ..rules.registry import ARRAY, COMPLEX, DICT, LIST, MIXED, NONDIFF, OBJECT, REAL, TENSOR, Rule
from ..values import versions
from ..values.context import NO_GRAD_MODE
from . import dispatch, module_facts, templates
from .analysis import global_key
from .analysis_scopes import branch_values
from .codegen_guards import MAY_BE_TENSOR
from .naming import words
from .templates import basename, indent
from .write_checks import (UNTRACKED, refuse_partial, check_global_type, check_number_global, check_tracked_write, copy_tensor,
                           keep_old, note_number_write)


# writes into an existing list, dict, object or global (``Forward._gradient_write``)
_STORES = ("append", "extend", "insert", "update", "setdefault", "__setitem__", "add", "appendleft", "extendleft")
_BUILDERS = (ops.build_list, ops.build_dict, ops.cat_list, ops.merge_dict, list, dict, list.copy, dict.copy,
             ops.unpack_star)


def _created(r: ir.Region) -> set:
    """The statements of region ``r`` that make a new list or dict."""
    return {id(s) for s in ir.walk(r) if isinstance(s, Stmt) and isinstance(s.fn, Const) and
            any(s.fn.value is b for b in _BUILDERS)}


_STORE_FNS = (list.append, list.insert, list.extend, operator.setitem, setattr, object.__setattr__, ops.set_global,
              ops.setitem_v, operator.iadd, operator.imul, operator.ior, *ops.REWRITES)


class Forward:
    """The forward half of ``Codegen`` (``codegen.py``): a mixin over its names and facts."""

    def fwd_region(self, r: ir.Region) -> List[str]:
        lines: List[str] = []
        mark = len(self._live)
        start = 0   # where the trip starts (a test-first loop's: after its test)
        for node in r.nodes:
            if isinstance(node, Stmt):
                lines += self.fwd_stmt(node)
                if id(node) in self._progress:
                    lines.append(f"{self._progress[id(node)]} = True")
                if self._counted(node):
                    lines.append("_ctx.stores += 1")
            elif id(node) in self.tests:   # a while loop's test: the trip runs on, the last one breaks
                lines.append(f"if not {self.v(node.cond)}: break")
                start = len(lines)
                kept = self.saves.get(id(r), {})   # its merges are the loop's next values, bound if saved
                pairs = [(o, y) for o, y in zip(node.outs, node.then.yields) if f"v{o.id}" in kept]
                lines += self.fwd_region(node.then) + self._assign([o for o, _ in pairs], [y for _, y in pairs])
            elif isinstance(node, If):
                lines.append(f"if {self.v(node.cond)}:")
                lines += indent(self.fwd_region(node.then) + self._assign(node.outs, node.then.yields))
                els = self.fwd_region(node.orelse) + self._assign(node.outs, node.orelse.yields)
                if els:
                    lines.append("else:")
                    lines += indent(els)
            elif isinstance(node, Loop):
                lines += self.fwd_loop(node)
            else:
                lines += self.fwd_try(node)
            self._live.extend(v.id for v in ir.defined_vars(node) if self.A.K.get(v.id) in MAY_BE_TENSOR)
            if isinstance(node, (If, Try)):   # the pullback reads a branch's values by name too
                inner = [v for v in branch_values(node) if self.A.K.get(v) in MAY_BE_TENSOR]
                self._live.extend(inner)
                self._in_branch.update(inner)
        del self._live[mark:]
        save = self.saves.get(id(r))
        if save and id(r) in self.scopes.in_loop:
            written = self._written_roots(r)
            save = [f"{self.glob(copy_tensor, 'copy')}({n})" if self._saved_copy(n, written) else n for n in save]
            own = self.own.get(id(r))
            if own is None:
                lines.append(f"_st.append(({', '.join(save)},))")
            else:   # its trip's own values, pushed before the trip renews them (_coalesce)
                push = f"{own}.append({save[0] if len(save) == 1 else '(' + ', '.join(save) + ')'})"
                lines.insert(start, push) if id(r) in self._early else lines.append(push)
        return lines

    def _assign(self, outs, vals) -> List[str]:
        pairs = [(o, v) for o, v in zip(outs, vals) if not (isinstance(v, Var) and self.v(v) == self.v(o))]
        if not pairs:
            return []
        return [f"{', '.join(self.v(o) for o, _ in pairs)} = {', '.join(self.v(v) for _, v in pairs)}"
                + ("," if len(pairs) == 1 and False else "")]

    def fwd_loop(self, L: Loop) -> List[str]:
        lines = self._assign(L.params, L.inits)
        cnt = f"_n{self.nid(L)}"
        counted = cnt in self._used_top
        if counted:
            lines.append(f"{cnt} = 0")
        if id(L.body) in self.own:
            lines.append(f"{self.own[id(L.body)]} = []")
        head = f"for {self.v(L.item)} in {self.v(L.iterable)}:" if L.iterable is not None else "while True:"
        mark = len(self._live)
        self._live.extend(v.id for v in L.params + ([L.item] if L.item else []) if self.A.K.get(v.id) in MAY_BE_TENSOR)
        *nexts, cont = L.body.yields
        test = L.body.nodes[-1] if L.body.nodes and id(L.body.nodes[-1]) in self.tests else None
        if test is not None:   # the trip that breaks out binds nothing: the next values are the trip's
            trip = {o.id: y for o, y in zip(test.outs, test.then.yields)}
            nexts = [trip.get(n.id, n) for n in nexts]
        self._coalesce(L, test, nexts, cont)
        body = self.fwd_region(L.body)
        del self._live[mark:]
        if counted:
            body.append(f"{cnt} += 1")
        if test is not None:
            head, body = _while_head(body, self.v(test.cond))
        body += self._assign(L.params, nexts)
        if test is None and not (isinstance(cont, Const) and cont.value is True):
            body.append(f"if not {self.v(cont)}: break")
        lines.append(head)
        lines += indent(body)
        lines += self._assign(L.outs, L.params)
        return lines

    def _coalesce(self, L: Loop, test, nexts, cont) -> None:
        """Loop values that a trip's statement renews in place (``n = n - 1``, not ``n2 = n - 1``
        and ``n = n2`` at the trip's end): a number made by a statement of the trip itself,
        whose parameter nothing reads after it (a loop with a list of its own pushes its
        parameters first, when they are all it saves) and that the pullback does not read."""
        saves = self.saves.get(id(L.body), {})
        numbers = (REAL, COMPLEX, NONDIFF)
        params = {f"v{p.id}" for p in L.params if self.A.K.get(p.id) in numbers}
        if saves and id(L.body) in self.own and set(saves) <= params:
            self._early.add(id(L.body))
        trip = list(L.body.nodes[:-1]) + list(test.then.nodes) if test is not None else list(L.body.nodes)
        # (with a test first, the trip that breaks out keeps the parameters' values: a value made
        # before the test, ``while (t := r * s) < 10``, may not renew a parameter in place)
        first = len(L.body.nodes) - 1 if test is not None else 0
        at = {s.out.id: k for k, s in enumerate(trip) if k >= first and isinstance(s, Stmt) and s.out is not None}
        for p, n in zip(L.params, nexts):
            k = at.get(n.id) if isinstance(n, Var) and n.id != p.id else None
            if k is None or self.A.K.get(p.id) not in numbers or self.A.K.get(n.id) not in numbers or \
                    f"v{n.id}" in saves or f"v{p.id}" in saves and id(L.body) not in self._early or \
                    sum(isinstance(m, Var) and m.id == p.id for m in nexts + [cont]) or \
                    p.id in _reads(trip[k + 1:]):
                continue
            self._alias[n.id] = f"v{p.id}"

    def fwd_try(self, T: Try) -> List[str]:
        """``try``/``except``: a handler's pullback runs in place of the body's, so an exception
        after a write of a value with a gradient into a container, an object or a global (whose
        pullback would then not run) is refused in the handler (``write_checks.refuse_partial``)."""
        tk = f"_tk{self.nid(T)}"
        lines = ["_sl = len(_st)"] if self.has_stack else []
        # (generated code, differentiated again, unwinds its own stores: its saved values' list;
        # not a finally block's handler, which raises again; nor stores into what the body made)
        checked = not dispatch.own_code(self.fn.file) and not T.rethrows
        made = _created(T.body)
        writes = [s for s in ir.walk(T.body) if isinstance(s, Stmt) and self._gradient_write(s, made)] \
            if checked else []
        flag = f"_tp{self.nid(T)}" if writes else None
        if flag:
            lines.append(f"{flag} = False")
            self._progress.update((id(s), flag) for s in writes)
        count = f"_ts{self.nid(T)}" if checked else None   # (stores the functions it calls make: ``_counted``)
        if count:
            lines.append(f"{count} = _ctx.stores")
        lines.append("try:")
        lines += indent(self.fwd_region(T.body) + self._assign(T.outs, T.body.yields) + [f"{tk} = 0"])
        for i, (typ, exc, h) in enumerate(T.handlers):
            lines.append(f"except {self.v(typ)} as _e:")
            body = ["del _st[_sl:]"] if self.has_stack else []
            if count:
                body.append(f"if {flag + ' or ' if flag else ''}_ctx.stores != {count}: "
                            f"{self.glob(refuse_partial, 'partial')}({T.loc!r})")
            if exc is not None:
                body.append(f"{self.v(exc)} = _e")
            body += self.fwd_region(h) + self._assign(T.outs, h.yields) + [f"{tk} = {i + 1}"]
            lines += indent(body)
        return lines

    def fwd_stmt(self, s: Stmt) -> List[str]:
        lines = self._fwd_write_or_stmt(s) + self.detach(s)
        if isinstance(s.fn, Const) and s.fn.value is ops.set_global and isinstance(s.args[1], Const) and \
                self.A.kind(s.args[2]) not in (TENSOR, ARRAY):   # (a number: what check_number_global reads)
            how = self._from_inputs(s.args[2], s.args[1].value) if not self.A.cut(s) else False
            if how is not None:
                lines.append(f"{self.glob(note_number_write, 'numwrite')}(_ctx, {self.v(s.args[0])}, "
                             f"{s.args[1].value!r}, {self.v(s.args[2])}, {how})")
        lines += self.global_type_check(s)
        if isinstance(s.fn, Const) and s.fn.value is ops.get_global and isinstance(s.args[1], Const) and \
                self.A.kind(s.out) in (REAL, COMPLEX) and \
                s.out.id in self.A.useful:   # (a value whose gradient this function would pass on)
            lines.append(f"{self.glob(check_number_global, 'numglobal')}(_ctx, {self.v(s.args[0])}, "
                         f"{s.args[1].value!r}, {s.loc!r})")
        assumed = self.A.mods.checked.get(id(s))
        if assumed is not None:   # a module field's kind the transform specialised on (module_facts)
            facts = [self.glob(x, x.__name__) if isinstance(x, type) else repr(x) for x in assumed]
            lines.append(f"{self.glob(module_facts.check, 'assumed')}({self.v(s.out)}, "
                         f"{', '.join(facts)}, {s.loc!r})")
        return lines

    def _counted(self, s: Stmt) -> bool:
        """Whether ``s`` writes a value that carries a gradient into what this function did not
        make: counted in the context (``Context.stores``), so that a caller's ``except`` sees a
        store made before an exception that left this function (``fwd_try``)."""
        if dispatch.own_code(self.fn.file):
            return False
        if self._made is None:
            self._made = _created(self.fn.body)
        return self._gradient_write(s, self._made)

    def _gradient_write(self, s: Stmt, made: set) -> bool:
        """Whether ``s`` writes a value that carries a gradient into a list, a dict, an object or a
        global (``append``, ``setattr``, ``obj[k] = v``) that none of the statements ``made`` made."""
        target = self.A.defs.get(s.args[0].id) if s.args and isinstance(s.args[0], Var) else None
        if target is not None and id(target) in made:
            return False
        r = self.A.rule.get(id(s))
        if r is not None and not r.moves:   # (a tensor's own in-place write: a value, ``ops.try_guard``'s)
            return False
        f = r.fn if r is not None else s.fn.value if isinstance(s.fn, Const) else None
        if f is ops.call_method:   # (kinds known at run time only)
            store = len(s.args) > 1 and isinstance(s.args[1], Const) and s.args[1].value in _STORES
        else:   # (not a name's own cell, which the handler reads through ``ops.try_guard``)
            store = any(f is g for g in _STORE_FNS) and not (len(s.args) > 1 and isinstance(s.args[1], Const) and
                                                             s.args[1].value == "cell_contents")
        values = self.A.diff_args(s) if r is not None else s.args[2:]   # (obj, name or key, values...)
        return store and any(self.A.passes(s, o) for o in values)

    def detach(self, s: Stmt) -> List[str]:
        """After a ``cut`` statement (under ``torch.no_grad()``): its value marked a constant for
        a transform of this code (nested AD), as it is here (``ops.detached``)."""
        if s.out is None or not self.A.cut(s) or self.A.kind(s.out) == NONDIFF:
            return []
        return [f"{self.v(s.out)} = {self.glob(ops.detached, 'detached')}({self.v(s.out)})"]

    def global_type_check(self, s: Stmt) -> List[str]:
        """After a read of a data global whose kind the code is specialised on: a check that a
        function called since the call began did not rebind it to another kind (``check_global_type``)."""
        key = global_key(s) if isinstance(s.fn, Const) and s.fn.value in (ops.get_global, ops.module_data) else None
        was = self.fn.global_types.get(key) if key is not None else None
        if was is None or self.A.kind(s.out) == OBJECT:
            return []
        v, t = self.v(s.out), self.glob(was, was.__name__)
        name = key if isinstance(key, str) else f"{key[0].__name__}.{key[1]}"
        return [f"if type({v}) is not {t}: {v} = {self.glob(check_global_type, 'globaltype')}({v}, {t}, "
                f"{name!r}, {s.out.id in self.A.useful}, {s.loc!r})"]

    def _fwd_write_or_stmt(self, s: Stmt) -> List[str]:
        if isinstance(s.fn, Const) and s.fn.value is operator.setitem and len(s.args) == 3:
            return self._untracked_write(s, s.args[0], s.args[2:]) + self._fwd_stmt(s)
        if isinstance(s.fn, Const) and s.fn.value is ops.untracked_write:
            return self._untracked_write(s, s.args[0], s.args[1:])
        return self._fwd_stmt(s)

    def _untracked_write(self, s: Stmt, obj, values) -> List[str]:
        """A write of ``values`` into ``obj``, an object reached other than by a local name
        (``G[k] = v``, ``G.mul_(v)``, ``np.copyto(self.buf, v)``): list and dict items are followed
        by identity, but a tensor's or an array's new contents only through the names the write
        renews, so a varied value written there would lose its gradient: refused (at run time
        where the kind is open)."""
        if not any(self.A.varied_in(s, v) and self.A.kind(v) != NONDIFF for v in values):
            return []
        k = self.A.kind(obj)
        if k in (TENSOR, ARRAY):
            raise errors.LiftError(UNTRACKED.format(what="tensor" if k == TENSOR else "NumPy array"), s.loc)
        if k in (LIST, DICT):
            return []
        return [f"{self.glob(check_tracked_write, 'tracked')}({self.v(obj)}, {s.loc!r})"]

    def _grad_mode(self, s: Stmt, out: Optional[str], where: str) -> Optional[List[str]]:
        """``torch.is_grad_enabled()`` in differentiated code: whether this statement is
        differentiated (not under ``torch.no_grad()``), as under torch autograd. At run time torch's
        own mode is off (the gradient is this code), and code that asks it (``nn.Transformer``'s fast
        path, which has no derivative) would take the branch meant for inference."""
        if isinstance(s.fn, Const) and s.fn.value is torch.is_grad_enabled and not s.args and not s.kwargs \
                and out is not None:
            return [f"{out} = {not self.A.off(s)!r}{where}"]
        return None

    def _fwd_stmt(self, s: Stmt) -> List[str]:
        r = self.A.rule.get(id(s))
        where = f"  # {basename(s.loc[0])}:{s.loc[1]}" if s.loc else ""
        out = self.v(s.out) if s.out is not None else None
        mode = self._grad_mode(s, out, where)
        if mode is not None:
            return mode
        self._refuse_out(s, r)
        if r is not None and r.fwd is not None:
            return self._fwd_rule(s, r, out, where)
        if r is not None or self.A.effectful(s) is False:
            if r is not None and isinstance(s.fn, Const) and s.fn.value is ops.call_method:
                code = f"{self.v(s.args[0])}.{s.args[1].value}({self._call_args(s, skip=2)})"
            else:
                code = f"{self.v(s.fn)}({self._call_args(s)})"
            return [f"{out} = {code}{where}" if out else code + where]
        return self._fwd_dispatch(s, out, where)

    def _from_inputs(self, v, name: str, seen=None) -> Optional[bool]:
        """For a number written into global ``name``: whether it may carry a gradient (True), has
        none (False), or may carry one only if the global's earlier value did (None: ``t = t +
        0.1``, which leaves the context's note as it is). A number global is a constant to the
        functions reading it unless differentiated code wrote it with such a value
        (``write_checks.note_number_write`` and ``check_number_global``)."""
        if not isinstance(v, Var) or v.id not in self.A.varied:
            return False
        seen = {} if seen is None else seen
        if v.id in seen:
            return seen[v.id]
        seen[v.id] = None
        seen[v.id] = found = self._number_source(v, name, seen)
        return found

    def _number_source(self, v: Var, name: str, seen: dict) -> Optional[bool]:
        d = self.A.defs.get(v.id)
        if d is None or d.out is None or d.out.id != v.id:
            return True   # a parameter, a loop's value: varied as the analysis says
        if isinstance(d.fn, Const) and d.fn.value is ops.get_global and isinstance(d.args[1], Const) and \
                d.args[1].value == name:
            return None
        if id(d) in self.A.rule:
            operands = self.A.diff_args(d)
            if any(isinstance(o, Var) and self.A.kind(o) not in _VALUES for o in operands):
                return True   # read from a container or an object, whose contents may have changed since
        elif isinstance(d.fn, Const) and d.fn.value in _ARITHMETIC:
            operands = d.args   # an arithmetic operator dispatched at run time (``t + dt``, ``t`` of unknown kind)
        else:
            return True   # any other call, such as a read of an object's state (a cell, an attribute)
        found = [self._from_inputs(o, name, seen) for o in operands]
        return True if True in found else None if None in found else False

    def _fwd_rule(self, s: Stmt, r: Rule, out: Optional[str], where: str) -> List[str]:
        """A statement whose rule is inlined: its forward expression, after what keeps the
        values an in-place write overwrites."""
        bound = self.A.bind(s, r)
        m = self.rule_mapping(s, r, bound, None, set())
        pre = []
        first = bound.get(r.params[0]) if r.params else None
        if r.inplace and isinstance(first, Var) and self.A.K.get(first.id) in (ARRAY, TENSOR) and \
                self.order.dead_view(s, first):
            pre.append(f"_ip = {self._item_copy(s, first)}")
            m[r.params[0]] = "_ip"
        elif r.inplace and isinstance(first, Var):
            pre = self._inplace_guards(s, first)
            if self._read_back(first.id):
                m[r.params[0]] = "_ip"
        code = self.subst(r.fwd, m, r.ns)
        if r.inplace and self.A.cut(s):
            # a call, not ``y.mul_(2)`` or ``y[k] = v``: transformed again (nested AD), generated code
            # must not read as a write through the name, whose old value ``ops.through`` gets
            args = [m.get(r.params[0], self.v(first)) if first is not None else None] + \
                [self.v(a) for a in s.args[1:]]
            code = f"{self.v(s.fn)}({', '.join(args)}{''.join(f', {k}={self.v(v)}' for k, v in s.kwargs)})"
        if pre:
            return pre + [f"{out} = {code}{where}"]
        if isinstance(templates.parse(r.fwd), ast.Module) or out is None:
            return [code + where] if out is None else [code + where, f"{out} = None"]
        return [f"{out} = {code}{where}"]

    def _refuse_out(self, s: Stmt, r: Optional[Rule]) -> None:
        """For a rule whose function takes an optional ``out``: ``torch.stack(xs, out=o)`` writes
        into ``o``, whose later reads would not carry the inputs' gradient (torch autograd refuses
        ``out=`` too): refused where an input is varied (both modes)."""
        if r is None or "out" not in r.defaults:
            return
        bound = self.A.bind(s, r)
        o = bound.get("out")
        if not isinstance(o, Var) or self.A.K.get(o.id) not in (TENSOR, ARRAY):   # (None, or open)
            return
        if any(self.A.varied_in(s, v) for b in bound.values() for v in (b if isinstance(b, list) else [b])):
            raise errors.LiftError("torchzygote does not differentiate a call with out=: its result is "
                                   "written into the out tensor, whose later reads would lose the inputs' "
                                   "gradient; use the call's result instead (`o = torch.stack(xs)`)", s.loc)

    def _fwd_dispatch(self, s: Stmt, out: Optional[str], where: str) -> List[str]:
        """A call dispatched at run time (``_J``/``_Jkw``), which returns its pullback, after
        the guards of a write it may make."""
        tgt = f"{out or '_'}, B{self.nid(s)}"
        written = self._written(s)   # also for y.sub_(x, alpha=2): keywords or not
        argv = [self.v(a) for a in s.args]
        guards = []
        if written is not None and written[1] is not None and self.order.dead_view(s, written[0]):
            argv[written[1]] = self._item_copy(s, written[0])   # as when known
            written = None
        elif written is not None:
            guards = self._runtime_write_guards(s, written[0])
        if written is not None and self._read_back(written[0].id):
            # the pullback reads the value this write overwrites: it keeps a copy of a tensor,
            # the write goes to the object itself (as Python does; a tuple built for the
            # dispatcher already holds the object)
            first, pos = written
            later = self.order.used_after(first.id, s)
            guards += [f"_ip = {self.v(first)}",
                       f"{self.v(first)} = {self.glob(keep_old, 'old')}(_ip, {later!r}, {s.loc!r})"]
            if pos is not None:
                argv[pos] = "_ip"
        pre, post = self._call_write_guards(s, written[0] if written is not None else None)
        if s.kwargs or s.star is not None or s.dstar is not None:
            pos = self.v(s.star) if s.star is not None else "(" + "".join(a + ", " for a in argv) + ")"
            kw = "{" + ", ".join(f"{k!r}: {self.v(v)}" for k, v in s.kwargs) + "}"
            if s.dstar is not None:   # (the keywords as passed: the pullback credits the Params among them)
                pre = pre + [f"_kw{self.nid(s)} = {{**{kw}, **{self.v(s.dstar)}}}"]
                kw = f"_kw{self.nid(s)}"
            return guards + pre + self._in_mode(s, [f"{tgt} = _Jkw(_ctx, {self.v(s.fn)}, {pos}, {kw}){where}"]) + post
        pinned = self.A.mods.pins.get(id(s))
        if pinned is not None and not self.A.off(s):   # a call of modules this transform is specialised on
            method = isinstance(s.fn, Const)   # (``self.net(x)``: ops.call_method(self, "net", x))
            call = self.glob(dispatch.call_pinned_method if method else dispatch.call_pinned, "Jp")
            args = s.args[2:] if method else s.args
            pins = dispatch.Pins(pinned, self.A.mods.closed,
                                 frozenset(i + 1 for i, a in enumerate(args) if self._constant(a)))
            head = f"_ctx, {self.glob(pins, 'pin')}" + ("" if method else f", {self.v(s.fn)}")
            return guards + pre + [f"{tgt} = {call}({head}{''.join(', ' + a for a in argv)}){where}"] + post
        consts = frozenset(i for i, a in enumerate(s.args) if self._constant(a))
        if consts:
            head = f"_ctx, {self.glob(consts, 'consts')}, {self.v(s.fn)}"
            return guards + pre + self._in_mode(s, [f"{tgt} = {self.glob(dispatch.call_consts, 'Jc')}({head}"
                                                    f"{''.join(', ' + a for a in argv)}){where}"]) + post
        return guards + pre + self._in_mode(s, [f"{tgt} = _J(_ctx, {self.v(s.fn)}{''.join(', ' + a for a in argv)})"
                                                f"{where}"]) + post

    def _in_mode(self, s: Stmt, call: List[str]) -> List[str]:
        """A dispatched call, under the grad mode it runs in where that is not this transform's
        (``Context.no_grad``): under ``torch.no_grad()`` a Python callee runs its ``no_grad``
        transform, and a rule that computes gives no gradient (``dispatch.apply_rule``); under
        ``torch.enable_grad()`` in such a transform, the usual ones."""
        if self.A.off(s) == self.A.no_grad or self.A.rule.get(id(s)) is not None:
            return call
        mode = self.glob(NO_GRAD_MODE if self.A.off(s) else frozenset(), "mode")
        # (restored by an except clause, not finally: nested AD lifts this code, and follows a handler)
        return ["_gm = _ctx.no_grad", f"_ctx.no_grad = {mode}", "try:", *indent(call),
                f"except {self.glob(BaseException, 'BaseException')} as _e:", "    _ctx.no_grad = _gm", "    raise _e",
                "_ctx.no_grad = _gm"]

    def _constant(self, a) -> bool:
        """Whether a dispatched call's argument is a number or a tensor without a gradient here
        (a literal, a value not varied: the data rows of ``for x in xs``): the callee need not
        compute its gradient (``call_consts``, ``Pins.consts``). Not an object, which the callee
        may write into (a tensor it writes into, it must return: ``check_mutation``)."""
        return self.A.kind(a) in (REAL, COMPLEX, TENSOR) and not (isinstance(a, Var) and a.id in self.A.varied)

    def _call_args(self, s: Stmt, skip=0) -> str:
        parts = [self.v(a) for a in s.args[skip:]]
        if s.star is not None:
            parts.append("*" + self.v(s.star))
        parts += [f"{k}={self.v(v)}" for k, v in s.kwargs]
        if s.dstar is not None:
            parts.append("**" + self.v(s.dstar))
        return ", ".join(parts)


_VALUES = (REAL, COMPLEX, TENSOR, ARRAY, MIXED, NONDIFF)   # kinds whose SSA value is what a statement made
_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
               operator.pow, operator.neg, operator.pos, operator.iadd, operator.isub, operator.imul,
               operator.itruediv, operator.ipow}   # (results that depend on their operands alone)


def _while_head(body: List[str], cond: str):
    """``while <test>:`` for a loop whose body starts by computing its test as one
    expression used nowhere else (``c = n > 0; if not c: break``), else ``while True:``."""
    start = f"{cond} = "
    if len(body) < 2 or not body[0].startswith(start) or body[1] != f"if not {cond}: break" or \
            any(cond in words(ln) for ln in body[2:]):
        return "while True:", body
    line = body[0][len(start):]
    cut = [m.start() for m in re.finditer("  # ", line)] + [len(line)]
    for k in cut:   # the first cut that leaves an expression (a string may hold "  # ")
        try:
            ast.parse(line[:k], mode="eval")
        except SyntaxError:
            continue
        return f"while {line[:k]}:{line[k:]}", body[2:]
    return "while True:", body


def _reads(nodes) -> set:
    """The ids of the values these nodes (and the regions inside them) read."""
    out = set()
    for node in nodes:
        for sub in [node] + [x for r in ir.subregions(node) for x in ir.walk(r)]:
            out.update(o.id for o in ir.used_operands(sub) if isinstance(o, Var))
        for r in ir.subregions(node):
            for reg in [r] + [x for n in ir.walk(r) for x in ir.subregions(n)]:
                out.update(o.id for o in reg.yields if isinstance(o, Var))
    return out
