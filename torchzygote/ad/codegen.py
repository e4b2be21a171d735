"""Generate the forward pass and its pullback as Python source.

For a function ``f`` this emits ``fwd(ctx, f, *args) -> (y, back)``. Rules
are inlined as expressions (no closure or tuple per operation); other calls
go through ``J`` at run time. Values the pullback needs are captured by the
closure, or, inside loops, pushed once per region execution as one tuple on a
single stack: regions run to their end (the frontend lowered early exits), so
the pullback pops in exactly the reverse order. A loop whose body alone saves
values pushes them on a list of its own instead (one item per trip, walked
backwards; an inner loop's list is itself saved by its outer trip), and a
``while`` loop that tests first breaks out before its trip (``exit_tests``).
Loops stay loops: a loop's adjoint runs its body's adjoint as many times as
the forward loop ran. A function of Python numbers alone says so to the API
(``numbers_only``: no context, no grad mode).

The forward's text is ``codegen_forward.py``, the pullback's ``codegen_pullback.py``, the
guards of in-place writes ``codegen_guards.py``; this module holds what they share (names,
globals, rule substitution) and puts the function together. The facts it reads are the
analysis stage's (``Analysis``: kinds, activity, order and liveness, scopes).
"""
from __future__ import annotations

import ast
import math
import operator
import re
import types
from typing import Dict, List, Optional, Set, Tuple

from .. import ir
from ..frontend import ops
from ..ir import Const, Loop, Stmt, Var
from ..rules.registry import COMPLEX, NONDIFF, REAL, TENSOR, Rule
from ..values import algebra
from ..rules import container_backs
from . import dispatch
from . import templates
from .analysis import Analysis
from .codegen_forward import Forward
from .codegen_guards import WriteGuards
from .codegen_pullback import MAYBE, SET, UNSET, Pullback, drop_copies
from .naming import Names, words
from .templates import indent


class Codegen(Forward, Pullback, WriteGuards):
    """One function's forward and pullback as Python source: the names, globals and
    rule substitution the three halves share, and the whole function (``generate``)."""

    def __init__(self, fn: ir.Function, A: Analysis):
        self.fn, self.A = fn, A
        self.glb: dict = {"_J": dispatch.J, "_Jkw": dispatch.Jkw, "_accum": algebra.accum,
                          "_ub": algebra.unbroadcast, "_UNDEF": ir.UNDEF, "_item_back": container_backs.item_back,
                          "_gather_back": container_backs.gather_back,
                          "_acc_slots": _acc_slots, "_kt": algebra.number_tensor}
        self._gnames: Dict[int, str] = {}
        self.saves: Dict[int, Dict[str, None]] = {}
        self.own: Dict[int, str] = {}   # loop body region -> the list of its own its trips push on (not _st)
        self.tests = exit_tests(fn, A)   # id(If) -> its loop, for loops that test their exit first
        self._merged = {id(t.then): id(L.body) for t, L in self.tests.values()}
        self._alias: Dict[int, str] = {}   # forward only: a loop's next value -> its parameter's name
        self._early: Set[int] = set()     # loop bodies that push their values first
        self._progress: Dict[int, str] = {}   # statement -> the flag it sets in a try body (``fwd_try``)
        self._made: Optional[set] = None   # statements that make a list or a dict (``Forward._counted``)
        self.pure = True
        self._gathered: Set[int] = set()   # loops over a tensor whose rows' gradients are joined after the trips
        self._live: List[int] = [p.id for p in fn.params]   # values that may be tensors, defined so far, in scope
        self._in_branch: Set[int] = set()   # of those, values a branch defines (unbound if it did not run)
        self._loop_bodies: Optional[dict] = None   # id(a loop's body) -> the loop (``_written_roots``)
        self._init_none: Set[int] = set()   # branch values a write guard reads: bound to None first
        self._value_reads: Set[int] = set()   # values whose contents (not metadata) the pullback reads
        self._members: Optional[Dict[int, List[int]]] = None   # analysis roots -> their values (guards)
        self.order, self.scopes = A.order, A.scopes
        self.names = Names(fn)

    # ------------------------------------------------------------ names
    def glob(self, value, hint="k") -> str:
        name = self._gnames.get(id(value))
        if name is None:
            base = "".join(c if c.isalnum() else "_" for c in hint)[:24]
            name = self._gnames[id(value)] = f"_{base}_{len(self._gnames)}"
            self.glb[name] = value
        return name

    def lit(self, value) -> str:
        t = type(value)
        if t in (int, bool, str) or value is None:
            return repr(value)
        if t is float and math.isfinite(value):
            return repr(value)
        if value is ir.UNDEF:
            return "_UNDEF"
        return self.glob(value, getattr(value, "__name__", None) or t.__name__)

    def v(self, op) -> str:
        return (self._alias.get(op.id) or f"v{op.id}") if isinstance(op, Var) else self.lit(op.value)

    def nid(self, node) -> int:
        """A stable number for a node (names of counters and pullbacks): its place in program order."""
        return self.order.pos[id(node)]

    def d(self, key) -> str:
        """The adjoint's name of a value (a Var, or a key of the pullback's states)."""
        return self.names.adjoint(key.id if isinstance(key, Var) else key)

    def use(self, op, node=None):
        """The pullback reads primal value ``op`` (or, given ``node``, the name ``op`` that
        node binds: its pullback, its trip counter, its taken branch): inside a loop, it is
        saved once per trip."""
        if isinstance(op, str):
            name, reg = op, self.scopes.node_region.get(id(node))
        elif isinstance(op, Var):
            name, reg = f"v{op.id}", self.scopes.value_region.get(op.id)
        else:
            return
        if reg in self.scopes.in_loop:
            self.saves.setdefault(self._merged.get(reg, reg), {})[name] = None

    # ------------------------------------------------------------ expressions
    def subst(self, expr: str, mapping: Dict[str, str], ns: dict) -> str:
        """``expr`` with its operand names replaced by code and its namespace's names by
        globals of the generated module."""
        t = templates.template(expr)
        out = [t.head]
        for name, rest, near_is in t.slots:
            code = mapping.get(name)
            if code is None:
                code = self.glob(ns[name], name) if name in ns else name
            elif near_is and templates.is_literal(code):  # `-0.5 is not None` is a SyntaxWarning
                code = self.glob(ast.literal_eval(code), "k")
            elif not templates.atomic(code) or rest[:1] == "." and code[0].isdigit():  # (2).conj()
                code = f"({code})"
            out.append(code)
            out.append(rest)
        return "".join(out).strip()

    def rule_mapping(self, s: Stmt, r: Rule, bound: dict, dy: Optional[str], names: set) -> Dict[str, str]:
        m = {}
        for p, op in bound.items():
            if isinstance(op, list):
                m[p] = "(" + "".join(self.v(o) + ", " for o in op) + ")"
                if p in names:
                    for o in op:
                        self.use(o)
            else:
                m[p] = self.v(op)
                if p in names:
                    self.use(op)
        if dy is not None:
            m["dy"] = dy
        if s.out is not None:
            m["y"] = self.v(s.out)
            if "y" in names:
                self.use(s.out)
        m["ctx"] = "_ctx"
        if "needs" in names:
            m["needs"] = self._needs
        for p, (num, ten) in self._number_operands(s, r, bound).items():
            m[p] = f"_kt({self.v(num)}, {self.v(ten)})"
            if p in names:
                self.use(ten)
        return m

    def _number_operands(self, s: Stmt, r: Rule, bound: dict) -> dict:
        """``{param: (number, tensor)}`` for arithmetic between a tensor and a constant
        number (a literal or a global): the number is used as a cached 0-d tensor."""
        if r.fn not in _TENSOR_NUMBER_OPS or r.fwd is None:
            return {}
        a, b = bound.get("a"), bound.get("b")
        if a is None or b is None or isinstance(a, list) or isinstance(b, list):
            return {}
        ka, kb = self.A.kind(a), self.A.kind(b)
        if ka == TENSOR and kb == REAL and self._constant_number(b):
            return {"b": (b, a)}
        if kb == TENSOR and ka == REAL and self._constant_number(a) and r.fn is not operator.truediv:
            return {"a": (a, b)}   # not ``c / x``: torch computes it as ``x.reciprocal() * c``
        return {}

    def _constant_number(self, op) -> bool:
        if isinstance(op, Const):
            return type(op.value) in (int, float)
        d = self.A.defs.get(op.id)
        return d is not None and isinstance(d.fn, Const) and d.fn.value is ops.get_global and \
            isinstance(d.args[1], Const) and self.fn.global_types.get(d.args[1].value) in (int, float)

    # ------------------------------------------------------------ whole function
    def generate(self, qualname: str, loc) -> str:
        fn = self.fn
        S: dict = {}
        ret = fn.ret
        rev: List[str] = []
        ret_active = self.A.active(ret)
        # a pure pullback can return early on a zero gradient: then the output's adjoint is
        # set, else it may be None. The analysis predicts whether it is pure (A.pure); the
        # pass confirms it (a wrong prediction would cost a second pass)
        first = SET if ret_active and self.A.pure else MAYBE
        if ret_active:
            S[ret.id] = first
        rev = self.rev_region(fn.body, S)   # effects (mutation) may need a pullback even so
        if ret_active and self.pure != (first == SET):
            S = {ret.id: SET if self.pure else MAYBE}
            self.saves, self.own = {}, {}
            rev = self.rev_region(fn.body, S)
        self._rev_text = "\n".join(ln for ln in rev if not ln.lstrip().startswith("#"))
        self._used_top = words(self._rev_text)
        self._read_ids = None
        self.has_stack = any(v for k, v in self.saves.items() if k not in self.own)
        params = [self.v(p) for p in fn.params]
        nres = len(fn.params) - 1
        lines = [f"def fwd(_ctx, {', '.join(params)}):"]
        body: List[str] = []
        if self.has_stack:
            body.append("_st = []")
        region = self.fwd_region(fn.body)
        body += [f"v{vid} = None" for vid in sorted(self._init_none)] + region
        grads = [self.d(p) if S.get(p.id, UNSET) != UNSET else "None" for p in fn.params[1:]]
        if self.pure and (not ret_active or all(g == "None" for g in grads)):
            body.append(f"return {self.v(ret)}, _nothing{nres}")
            self.glb[f"_nothing{nres}"] = _nothing(nres)
        else:
            dret = self.d(ret) if isinstance(ret, Var) else "_dy"
            back = [f"def back({dret}):"]
            bb = []
            if self.pure:
                bb += [f"if {dret} is None:", f"    return {(None,) * nres!r}"]
            if self.has_stack:
                bb.append("_i = len(_st)")
            bb += rev
            bb.append(f"return ({''.join(g + ', ' for g in grads)})")
            back += indent(drop_copies(bb))
            body += back
            body.append(f"return {self.v(ret)}, back")
            if len(body) > _LONG_BODY:
                # CPython (3.11) inserts one MAKE_CELL per value the pullback reads into the
                # function's first basic block, moving the whole block each time: for
                # straight-line code compile time grew with (cells x lines). A branch first
                # ends that block (compile of a 4,000-line function's forward 540 -> 220 ms).
                body.insert(0, "if _ctx is None: pass")
        lines += indent(body)
        text = "\n".join(inline_temporaries(lines)) + "\n"
        if len(re.findall(r"\b_ctx\b", text)) == 1 and numbers_only(fn, self.A):
            self.glb["_numbers_only"] = True   # (api.gradient runs it without a context or grad mode)
        return text


_LONG_BODY = 200   # forward lines past which the first basic block is ended early (see generate)
_TENSOR_NUMBER_OPS = (operator.add, operator.sub, operator.mul, operator.truediv)


def exit_tests(fn: ir.Function, A: Analysis) -> Dict[int, tuple]:
    """The ``while`` loops that test their condition first: a loop whose body ends in
    ``if c: <trip> else: <nothing>`` and repeats while ``c``, where the trip that finds ``c``
    false changes nothing and has no pullback (the statements before the test have no
    effect). Their forward breaks out before the trip and their pullback runs the trips
    that ran, without saving or testing ``c``. ``id(If) -> (the If, its loop)``."""
    out = {}
    for L in ir.walk(fn.body):
        if not isinstance(L, Loop) or L.iterable is not None or not L.body.nodes:
            continue
        *pre, t = L.body.nodes
        *nexts, cont = L.body.yields
        if not (isinstance(t, ir.If) and isinstance(t.cond, Var) and isinstance(cont, Var) and
                cont.id == t.cond.id and not t.orelse.nodes):
            continue
        if any(not isinstance(s, Stmt) or A.effectful(s) for s in pre):
            continue
        exit_val = {o.id: y for o, y in zip(t.outs, t.orelse.yields)}
        if all(isinstance(n, Var) and (n.id == p.id or isinstance(exit_val.get(n.id), Var) and
                                       exit_val[n.id].id == p.id) for p, n in zip(L.params, nexts)):
            out[id(t)] = (t, L)
    return out


_TEMP = re.compile(r"( *)([vd]\w*) = (.+?)((?:  # .*)?)")
_NAME = re.compile(r"[A-Za-z_]\w*")
_LEAD = r"(?:\d+\.?\d*(?:e-?\d+)?|\w+) *(?:[-+*/%@]|//|\*\*) *"   # a name or number and an operator
_FIRST = tuple(re.compile(rf"{lead}\(*{call}\(*(\w+)\b") for lead in ("", _LEAD) for call in ("", r"\w+\("))


def _first_read(expr: str, name: str):
    """Where ``name`` stands first in ``expr``, after at most a name or a number and an
    operator, and a function's name (``v7 + 1.0``, ``c * f(v7)``); None if it does not. A few
    fixed patterns tried in turn: a pattern per name was most of a long function's transform."""
    for p in _FIRST:
        m = p.match(expr)
        if m is not None and m.group(1) == name:
            return m
    return None


def inline_temporaries(lines: List[str]) -> List[str]:
    """The lines with each temporary that only the next statement reads (once, first, after
    at most a name or a number and an operator, and a function's name: ``v8 = v7 + 1.0``,
    ``dlog = dsin * c``, ``v9 = f(v8)``)
    written into it instead (``v8 = (v4 * v4) + 1.0``): one store and load less, and the
    same operations in the same order. Both lines must come from the same source line."""
    counts: Dict[str, int] = {}
    for ln in lines:
        for name in _NAME.findall(ln):
            counts[name] = counts.get(name, 0) + 1
    out: List[Optional[str]] = list(lines)
    for i in range(len(out) - 1):
        a = _TEMP.fullmatch(out[i]) if out[i] is not None and "'" not in out[i] and '"' not in out[i] else None
        b = _TEMP.fullmatch(out[i + 1]) if a is not None and counts.get(a.group(2)) == 2 else None
        if b is None or a.group(1) != b.group(1) or a.group(4) != b.group(4) or "'" in out[i + 1] or \
                '"' in out[i + 1]:
            continue
        name, expr = a.group(2), b.group(3)
        m = _first_read(expr, name)
        if m is None:
            continue
        out[i + 1] = f"{b.group(1)}{b.group(2)} = {expr[:m.start(1)]}({a.group(3)}){expr[m.end(1):]}{b.group(4)}"
        out[i] = None
    return [ln for ln in out if ln is not None]


_NUMBER_MODULES = frozenset({"builtins", "math", "cmath", "_operator"})


def numbers_only(fn: ir.Function, A: Analysis) -> bool:
    """Whether ``fn`` computes with Python numbers alone: every value (but the function
    itself) a number or never differentiable, every call an inlined rule or a builtin of
    Python's own number modules. No tensor is made or touched, so torch's grad mode does
    not matter to it."""
    if any(A.kind(v) not in (REAL, COMPLEX, NONDIFF) for v in ir.all_vars(fn) if v is not fn.params[0]):
        return False
    for s in ir.walk(fn.body):
        if not isinstance(s, Stmt):
            continue
        r = A.rule.get(id(s))
        f = r.fn if r is not None and r.fwd is not None else s.fn.value if isinstance(s.fn, Const) else None
        if getattr(f, "__module__", None) not in _NUMBER_MODULES or \
                not isinstance(f, (type, types.BuiltinFunctionType)):
            return False
    return True


def _nothing(n):
    none = (None,) * n
    return lambda dy: none


def _acc_slots(ctx, d, g, passed):
    """``f(**d)``'s keyword gradients ``g`` into ``d``'s slot, but those of Params among the
    values ``passed`` (credited: a dict kept outside would keep them)."""
    if isinstance(g, dict):
        slot = ctx.slot(d)
        for k, v in g.items():
            v = ctx.credit(passed.get(k), v)
            if v is not None:
                slot[k] = algebra.accum(slot.get(k), v)


def generate(fn: ir.Function, A: Analysis, qualname: str) -> Tuple[str, dict, tuple]:
    """The forward's source, the globals it runs with, and the positions of the arguments
    whose memory its pullback reads."""
    cg = Codegen(fn, A)
    src = cg.generate(qualname, (fn.file, fn.line))
    return src, cg.glb, cg.reads_params()


