"""Forward mode's code generator: ``jvp(ctx, f, *args, *tangents) -> (y, ty)`` from the same IR
and analysis as reverse mode.

Each active number, tensor or array has its tangent in a variable beside it (``t12`` beside
``v12``); a rule's tangent is inlined from its table entry (``rules/tangents.py``: one term per
argument with a tangent), so control flow stays Python's own and no closure is made per
operation. Values going into containers, attributes and cells carry their tangents inside as
``Dual``s (``values/dual.py``) and are split again where they are read back, so mutation and
aliasing of structures need no bookkeeping. Calls whose callee or kinds are open go through
``F``/``Fkw`` (``ad/jvp_dispatch.py``), which forward-transforms Python callees in turn.

Taylor mode (``taylor=True``) is the same program with every rule call going through
``rules/taylor.py``: a tangent is then the list of a value's higher Taylor coefficients.
"""
from __future__ import annotations

from typing import Dict, List

from .. import errors, ir
from ..frontend import ops
from ..ir import Const, If, Loop, Stmt, Var
from ..rules import tangents
from ..rules.registry import ARRAY, COMPLEX, CONTAINERS, REAL, TENSOR, TABLE, TUPLE_OF, Rule
from . import jvp_dispatch, write_checks
from .codegen import Codegen
from .templates import basename, indent

LEAF = (REAL, COMPLEX, TENSOR, ARRAY)   # kinds whose tangent is kept beside the value
STRUCTURES = (*CONTAINERS, *TUPLE_OF.values())   # kinds whose tangents are inside (Duals)
OPEN = ("O", "U")   # kinds known only at run time
SHAPE_ONLY = {len, isinstance, type, id, callable, hasattr, iter, ops.contains, ops.not_contains}
REALS = (REAL, "N")


class JvpCodegen(Codegen):
    def __init__(self, fn: ir.Function, A, taylor: bool = False):
        super().__init__(fn, A)
        self.taylor = taylor
        self._used_top = set()       # no pullback reads anything
        self._read_ids = set()
        self.sure: set = set()       # values whose tangent is never None at run time
        self._parents = None         # region id -> the region holding it
        self.glb.update({"_F": jvp_dispatch.F, "_Fkw": jvp_dispatch.Fkw, "_zl": tangents.zero_like})
        self.glb.update(tangents.HELPERS)

    # ------------------------------------------------------------ values
    def act(self, op) -> bool:
        """Whether a value has a tangent (the function object's own are inside its cells)."""
        return isinstance(op, Var) and op.id != self.fn.params[0].id and self.A.active(op)

    def t(self, op) -> str:
        return f"t{op.id}" if self.act(op) and self.A.kind(op) not in STRUCTURES else "None"

    def dual_inside(self, op) -> bool:
        """Whether a value may hold Duals: it depends on an input (active or not: a tuple read
        only by a predicate still holds the values with their tangents)."""
        return isinstance(op, Var) and op.id in self.A.varied and self.A.kind(op) in STRUCTURES + OPEN

    def leaf(self, op) -> bool:
        return self.A.kind(op) in LEAF

    def packed(self, op) -> str:
        """The value with its tangent inside (for containers, attributes and open calls)."""
        if self.t(op) == "None":
            return self.v(op)
        return f"_ctx.pk({self.v(op)}, {self.t(op)})"

    # ------------------------------------------------------------ regions
    def fwd_region(self, r: ir.Region) -> List[str]:
        lines: List[str] = []
        for node in r.nodes:
            if isinstance(node, Stmt):
                lines += self.jvp_stmt(node)
            elif isinstance(node, If):
                lines.append(f"if {self.v(node.cond)}:")
                lines += indent(self.fwd_region(node.then) + self._merge(node.outs, node.then.yields) or ["pass"])
                els = self.fwd_region(node.orelse) + self._merge(node.outs, node.orelse.yields)
                if els:
                    lines.append("else:")
                    lines += indent(els)
                self._settle(node.outs, [node.then.yields, node.orelse.yields])
            elif isinstance(node, Loop):
                lines += self.jvp_loop(node)
            else:
                lines += self.jvp_try(node)
        return lines

    def _merge(self, outs, vals) -> List[str]:
        """Values and tangents of a region's outputs from its yields (a zero where the yield has
        none and the output has: a loop's sum starting at ``0.0``)."""
        lines = self._assign(outs, vals)
        pairs = []
        for o, v in zip(outs, vals):
            if self.t(o) == "None" or isinstance(v, Var) and v.id == o.id:
                continue
            if self.t(v) != "None":
                pairs.append((self.t(o), self.t(v)))
            elif (self.leaf(o) or self.A.kind(o) in ("M",)) and not self.taylor:
                pairs.append((self.t(o), f"_zl({self.v(v)})"))
            else:
                pairs.append((self.t(o), "None"))
        if pairs:
            lines.append(f"{', '.join(a for a, _ in pairs)} = {', '.join(b for _, b in pairs)}")
        return lines

    def _settle(self, outs, yield_lists) -> None:
        for i, o in enumerate(outs):
            srcs = [ys[i] for ys in yield_lists]
            if self.act(o) and all(not self.act(s) and self.leaf(o) or self.act(s) and s.id in self.sure
                                   for s in srcs):
                self.sure.add(o.id)

    def jvp_loop(self, L: Loop) -> List[str]:
        lines = self._merge(L.params, L.inits)
        *nexts, cont = L.body.yields
        # a loop value's tangent is sure if its initial one is and each trip keeps it so (optimistic,
        # then checked: the body is generated again if a trip's yield turned out unsure)
        before, unsure = set(self.sure), set()
        while True:
            self.sure = set(before)
            self._settle(L.params, [L.inits])
            self.sure -= unsure
            body = self.fwd_region(L.body)
            bad = {p.id for p, n in zip(L.params, nexts) if self.act(p) and p.id in self.sure and
                   not (self.act(n) and n.id in self.sure)}
            if not bad:
                break
            unsure |= bad
        if L.iterable is not None:
            it = L.item
            if self.act(L.iterable) or self.dual_inside(L.iterable):   # items may hold tangents (Duals, or a tensor's rows)
                t = self.t(it) if self.t(it) != "None" else "_"
                head = f"for {self.v(it)}, {t} in _ctx.titer({self.v(L.iterable)}, {self.t(L.iterable)}):"
            else:
                head = f"for {self.v(it)} in {self.v(L.iterable)}:"
        else:
            head = "while True:"
        lines.append(head)
        body += self._merge(L.params, nexts)
        if not (isinstance(cont, Const) and cont.value is True):
            body.append(f"if not {self.v(cont)}: break")
        lines += indent(body or ["pass"])
        lines += self._merge(L.outs, L.params)
        self._settle(L.outs, [L.params])
        return lines

    def jvp_try(self, T) -> List[str]:
        lines = ["try:"]
        lines += indent(self.fwd_region(T.body) + self._merge(T.outs, T.body.yields) or ["pass"])
        for typ, exc, h in T.handlers:
            lines.append(f"except {self.v(typ)} as _e:")
            body = [f"{self.v(exc)} = _e"] if exc is not None else []
            lines += indent(body + self.fwd_region(h) + self._merge(T.outs, h.yields) or ["pass"])
        return lines

    # ------------------------------------------------------------ statements
    def jvp_stmt(self, s: Stmt) -> List[str]:
        """A statement's primal and tangent lines, after the check of an in-place write it may make
        (any write, with tangents or not: a view read later with a tangent sees it)."""
        written = self._written(s)
        return (self._apart_check(s, written[0]) if written is not None else []) + \
            self._in_mode(s, self._jvp_stmt(s)) + self.global_type_check(s)

    def _jvp_stmt(self, s: Stmt) -> List[str]:
        r = self.A.rule.get(id(s))
        where = f"  # {basename(s.loc[0])}:{s.loc[1]}" if s.loc else ""
        out = self.v(s.out) if s.out is not None else None
        active_in = [o for o in s.operands() if self.act(o)]
        self._refuse_out(s, r)
        if isinstance(s.fn, Const) and s.fn.value in ops.REWRITES:
            return self._rewrite(s, out, where)
        if self.A.cut(s):   # under torch.no_grad(): no tangent (``_in_mode`` for calls dispatched at run time)
            return self._plain(s, out, where, values=True) + self.detach(s) + self._none(s)
        if r is not None and r.inplace and r.params:
            self._inplace_ok(s, self.A.bind(s, r).get(r.params[0]))   # (also where no operand has a tangent)
        if r is not None and not self._structural(s, r):
            bound = self.A.bind(s, r)
            if any(self.act(o) and self.A.kind(o) in OPEN for o in active_in):
                return self._open_call(s, out, where)   # kinds known at run time
            if not any(self.act(o) for p in tangents.diff_params(r) for o in _ops(bound.get(p))):
                # no argument with a tangent: the primal alone, on values (what was read from a
                # structure holding Duals, or such a structure, without them)
                if not any(self.dual_inside(o) for o in s.operands()):
                    return self._fwd_stmt(s) + self._none(s)
                if self._structural(s, r):
                    return self._fwd_stmt(s) + ([f"{out} = _ctx.pv({out})"] if out else []) + self._none(s)
                return self._plain(s, out, where, values=True) + self._none(s)
            if self.taylor:   # every rule call through rules/taylor.py, at run time
                return self._open_call(s, out, where)
            return self._rule(s, r, bound, out, where)
        mode = self._grad_mode(s, out, where)
        if mode is not None:
            return mode + self._none(s)
        if r is None and isinstance(s.fn, Const) and TABLE.is_nondiff(s.fn.value) or \
                r is None and self.A.effectful(s) is False or not active_in and not self.act(s.out):
            return self._plain(s, out, where) + self._none(s)
        if isinstance(s.fn, Const) and s.fn.value in (getattr, setattr):
            if len(s.args) >= 2 and isinstance(s.args[1], Const) and s.args[1].value == "cell_contents":
                return self._structural_call(s, None, out, where)   # a closure cell: no property there
            return self._open_call(s, out, where)   # a tensor's (``x.T``), a property's, a field's
        if r is not None or isinstance(s.fn, Const) and s.fn.value in jvp_dispatch.STRUCTURAL:
            return self._structural_call(s, r, out, where)
        return self._open_call(s, out, where)

    def _rewrite(self, s: Stmt, out, where) -> List[str]:
        """``Names.write_back`` in forward mode: outside state holds values, not tangents, so a
        tangent written into it in place would be lost to its later reads: refused at run time."""
        lines = self._plain(s, out, where, values=True)
        if self.t(s.args[2]) == "None" or out is None:
            return lines
        return lines + [f"{self.glob(write_checks.refuse_tangent_in_place, 'tanplace')}({out}, "
                        f"{self.t(s.args[2])}, {s.loc!r})"]

    def _none(self, s: Stmt) -> List[str]:
        """A value the analysis counts active whose call took no tangent: a zero tangent."""
        return [f"{self.t(s.out)} = None"] if s.out is not None and self.t(s.out) != "None" else []

    def _plain(self, s: Stmt, out, where, values: bool = False) -> List[str]:
        """A call with no tangent in or out: as the user wrote it, on values (a structure that may
        hold Duals is passed without them, except to functions that only look at its shape)."""
        if self.A.rule.get(id(s)) is not None and not values:
            return self._fwd_stmt(s)
        f = s.fn.value if isinstance(s.fn, Const) else None
        code = self._call_text(s, lambda op: self._value(op, f))
        return [f"{out} = {code}{where}" if out else code + where]

    def _call_text(self, s: Stmt, code) -> str:
        """The statement's call as Python, each operand written by ``code`` (values, packed, ...)."""
        method = isinstance(s.fn, Const) and s.fn.value is ops.call_method
        parts = [code(a) for a in (s.args[2:] if method else s.args)]
        if s.star is not None:
            parts.append("*" + code(s.star))
        parts += [f"{k}={code(v)}" for k, v in s.kwargs]
        if s.dstar is not None:
            parts.append("**" + code(s.dstar))
        if method:
            return f"{code(s.args[0])}.{s.args[1].value}({', '.join(parts)})"
        return f"{self.v(s.fn)}({', '.join(parts)})"

    def _value(self, op, f) -> str:
        if self.dual_inside(op) and f not in SHAPE_ONLY:
            return f"_ctx.vo({self.v(op)})"
        return self.v(op)

    def _structural(self, s: Stmt, r: Rule) -> bool:
        """Whether a rule's call only moves values (containers, attributes, cells): then it is
        called with the tangents inside (Duals) and its result split."""
        bound = self.A.bind(s, r)
        return jvp_dispatch.structural(r, [self.A.kind(o) in STRUCTURES for p in tangents.diff_params(r)
                                           for o in _ops(bound.get(p)) if self.act(o)])

    def _structural_call(self, s: Stmt, r, out, where) -> List[str]:
        code = self._call_text(s, self.packed)
        if out is None:
            return [code + where]
        lines = [f"{out} = {code}{where}"]
        if self.t(s.out) != "None":
            lines.append(f"{out}, {self.t(s.out)} = _ctx.up({out})")
        elif self.A.kind(s.out) not in STRUCTURES and any(self.t(o) != "None" or self.dual_inside(o)
                                                          for o in s.operands()):
            lines.append(f"{out} = _ctx.pv({out})")   # read from a structure holding Duals: the value alone
        return lines

    def _open_call(self, s: Stmt, out, where) -> List[str]:
        """A call resolved at run time: its tangent comes back with it."""
        tgt = f"{out or '_'}, {self.t(s.out) if s.out is not None and self.t(s.out) != 'None' else '_'}"
        argv = [self.packed(a) for a in s.args]
        written = self._written(s)
        pre, post = self._call_write_guards(s, written[0] if written is not None else None)
        if written is not None and written[1] is not None and self.order.dead_view(s, written[0]):
            # (``base[key] += v`` on a container's item: written in place, followed through the slot)
            base = self.A.defs[written[0].id].args[0]
            bound = sorted(vid for vid in self.A.K if self._before(vid, s))
            pre = [f"{self.glob(write_checks.check_item_alone, 'alone')}"
                   f"({self._item_holders(s, written[0], base, bound)})"] + pre
        if s.kwargs or s.star is not None or s.dstar is not None:
            pos = self.packed(s.star) if s.star is not None else "(" + "".join(a + ", " for a in argv) + ")"
            kw = "{" + ", ".join(f"{k!r}: {self.packed(v)}" for k, v in s.kwargs) + "}"
            if s.dstar is not None:
                kw = f"{{**{kw}, **{self.packed(s.dstar)}}}"
            return pre + [f"{tgt} = _Fkw(_ctx, {self.v(s.fn)}, {pos}, {kw}){where}"] + post
        return pre + [f"{tgt} = _F(_ctx, {self.v(s.fn)}{''.join(', ' + a for a in argv)}){where}"] + post

    def _rule(self, s: Stmt, r: Rule, bound: dict, out, where) -> List[str]:
        """A rule inlined: the primal as reverse mode's forward emits it, then the tangent terms."""
        params = tangents.diff_params(r)
        # every operand real (not only those with tangents: ``1j * y``): the pullback read forwards as is
        real = all(self.A.kind(o) in REALS if isinstance(o, Var) else not isinstance(o.value, complex)
                   for o in s.args + [v for _, v in s.kwargs])
        terms = {p: tangents.term(r, p, complex_ok=not real) for p in params
                 if any(self.act(o) for o in _ops(bound.get(p)))}
        if any(e is None for e in terms.values()):
            return self._open_call(s, out, where)   # no term in the table: the dispatcher's fallback
        seqs = [p for p in terms if isinstance(bound.get(p), Var) and self.A.kind(bound[p]) in STRUCTURES]
        pre: List[str] = []
        m = self.rule_mapping(s, r, bound, None, set())
        for p in seqs:   # a sequence argument (torch.stack([a, b])): its items' tangents, taken apart
            pre.append(f"{m[p]}_p, {m[p]}_t = _ctx.sp({m[p]})")
        primal = self._call_with(s, out, where, {bound[p].id: f"{m[p]}_p" for p in seqs}) if seqs else None
        old = None
        if r.inplace:
            first = bound.get(r.params[0])
            if any(tangents.reads_old(e, r.params[0], r) for e in terms.values()):
                old = "_o"
                pre.append(f"_o = _copy({self.v(first)})")
        lines = pre + (primal if primal is not None else self._fwd_stmt(s))
        if out is None or not self.act(s.out):   # (a tangent nothing reads)
            return lines
        codes, sure = [], True
        for p, e in terms.items():
            mp = dict(m)
            op = bound[p]
            if isinstance(op, list):
                dp = "(" + "".join(self.t(o) + ", " for o in op) + ")"
                ok = False
            elif p in seqs:
                mp[p] = f"{m[p]}_p"
                dp, ok = f"{m[p]}_t", False
            else:
                dp, ok = self.t(op), op.id in self.sure
            if old is not None:   # the written tensor's old value (also where it is another argument too)
                mp.update({q: old for q, o in bound.items() if isinstance(o, Var) and o.id == first.id})
            mp[tangents.tname(r, p)] = dp
            code = self.subst(e, mp, {**r.ns, "_fn": r.fn, "_call": tangents.call_leaving_defaults,
                                      "_D": r.defaults, "_names": tuple(r.params)})
            if not ok:
                code = f"({code} if {dp} is not None else None)"
            sure = sure and ok and not r.maybe_none
            codes.append(code)
        if len(codes) == 1:
            total = codes[0]
        elif sure and real:
            total = " + ".join(codes)
        else:
            total = codes[0]
            for c in codes[1:]:
                total = f"_tadd({total}, {c})"
        if r.elementwise and self.A.kind(s.out) in (TENSOR, ARRAY) and not self._same_shapes(s, bound, terms):
            total = f"_bcast({total}, {out})"
        if self.A.kind(s.out) in STRUCTURES:   # several results (sort, split):
            return lines + [f"{out} = _ctx.pack_tree({out}, {total})"]     # each with its tangent inside
        tout = f"t{s.out.id}"
        if self.A.kind(s.out) in OPEN:   # one result or several: known at run time
            return lines + [f"{out}, {tout} = _ctx.up(_ctx.pack_tree({out}, {total}))"]
        if sure:
            self.sure.add(s.out.id)
        return lines + [f"{tout} = {total}"]

    def _same_shapes(self, s: Stmt, bound, terms) -> bool:
        return all(not isinstance(bound[p], list) and self.A.kind(bound[p]) == self.A.kind(s.out)
                   and self.A.same_shape(bound[p], s.out) for p in terms)

    def _call_with(self, s: Stmt, out, where, repl: Dict[int, str]) -> List[str]:
        """The call as written, with the operands in ``repl`` (by value id) replaced."""
        code = self._call_text(s, lambda op: repl.get(op.id, self.v(op)) if isinstance(op, Var) else self.v(op))
        return [f"{out} = {code}{where}" if out else code + where]

    def _apart_check(self, s: Stmt, first) -> List[str]:
        """At run time, before an in-place write: the tensors made before it and read after it must
        not share its memory (aliases the analysis cannot see: a callee's result, a container's item)."""
        if not isinstance(first, Var) or self.order.dead_view(s, first):   # (a copy is written: see _fwd_rule)
            return []
        later = [vid for vid, k in self.A.K.items() if k in (TENSOR, ARRAY, "O", "M") and vid != first.id and
                 vid in self.A.varied and vid in self.A.useful and self._before(vid, s) and
                 self.order.used_after(vid, s)]   # (values with tangents: a constant's none goes stale)
        names = "".join(f"v{vid}, " for vid in sorted(later))
        held = self._holder_check(s, first)   # cells, lists and dicts holding it, read again
        if not later:
            return held
        return held + [f"{self.glob(write_checks.check_apart, 'apart')}({self.v(first)}, ({names}), {s.loc!r})"]

    def _before(self, vid: int, s: Stmt) -> bool:
        d = self.A.defs.get(vid)
        if d is None:
            return any(p.id == vid for p in self.fn.params)
        return d is not s and id(d) in self.order.pos and self.order.before(d, s) and \
            self.scopes.value_region.get(vid) in self._enclosing(s)

    def _enclosing(self, s: Stmt) -> set:
        """The regions holding ``s`` (a value defined in one of them is bound where ``s`` runs)."""
        if self._parents is None:
            self._parents = {}
            for node in [self.fn.body, *ir.walk(self.fn.body)]:
                subs = [node] if isinstance(node, ir.Region) else ir.subregions(node)
                for sub in subs:
                    for n in sub.nodes:
                        for inner in ir.subregions(n):
                            self._parents[id(inner)] = id(sub)
        out, reg = set(), self.scopes.node_region.get(id(s))
        while reg is not None:
            out.add(reg)
            reg = self._parents.get(reg)
        return out

    def _inplace_ok(self, s: Stmt, first) -> None:
        """An in-place write gives the written name a new tangent; another name that shares the
        tensor's memory (a view) and is read afterwards would keep the old one: refused."""
        if not isinstance(first, Var):
            return
        varied = self.A.varied
        changes = any(isinstance(a, Var) and a.id in varied for a in s.args)   # (else only a varied old value)
        # ``y = x; y *= 2``, then reading ``x``
        if self.A.K.get(first.id) == TENSOR and self.order.used_after(first.id, s) and \
                (changes or first.id in varied) and not self.order.dead_view(s, first):
            raise errors.LiftError(
                "forward mode cannot follow this in-place write: the tensor it changes is read again "
                "afterwards under another name (an alias, as after `y = x`); write into a copy "
                "(`y = x.clone()`) or use the new value's name", s.loc)
        root = self.A.root_of(first)
        for vid, other in [(root, root), *self.A.root.items()]:   # (the base too: ``b.diagonal().copy_(x)``)
            # (``_before``: bound where ``s`` runs; not another branch's value, not a merge after it)
            if other == root and vid != first.id and self._before(vid, s) and self.order.used_after(vid, s) and \
                    self.A.K.get(vid) == TENSOR and (changes or vid in varied) and not self.order.dead_view(s, first):
                raise errors.LiftError(
                    "forward mode cannot follow this in-place write: another name views the tensor "
                    "written and is read afterwards; write into a copy (`y = y.clone()`) or through "
                    "the tensor's own name", s.loc)

    # ------------------------------------------------------------ whole function
    def tangent_params(self) -> tuple:
        """Positions (among the arguments) of the parameters whose tangents the function takes."""
        return tuple(i for i, p in enumerate(self.fn.params[1:]) if self.t(p) != "None")

    def generate(self, qualname: str, loc) -> str:
        fn = self.fn
        params = [self.v(p) for p in fn.params]
        tparams = [self.t(p) for p in fn.params[1:] if self.t(p) != "None"]
        for p in fn.params[1:]:
            if self.act(p) and self.leaf(p):
                self.sure.add(p.id)
        body = self.fwd_region(fn.body)
        ret = fn.ret
        body.append(f"return {self.v(ret)}, {self.t(ret)}")
        lines = [f"def fwd(_ctx, {', '.join(params + tparams)}):"] + indent(body)
        return "\n".join(lines) + "\n"


def _ops(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def generate(fn: ir.Function, A, qualname: str, taylor: bool = False):
    cg = JvpCodegen(fn, A, taylor)
    src = cg.generate(qualname, (fn.file, fn.line))
    return src, cg.glb, cg.tangent_params()
