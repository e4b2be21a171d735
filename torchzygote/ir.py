"""A small structured SSA IR.

Values are assigned once. Control flow is kept as structured regions (``If``,
``Loop``, ``Try``) whose merges are explicit outputs, the way MLIR's ``scf``
dialect does it; early exits (``return``/``break``/``continue`` inside
compound statements) are lowered by the frontend to flag variables and guards.
Keeping the structure makes the adjoint a structured program too (the adjoint
of a loop is a loop), which is what lets codegen emit plain Python ``for`` and
``while`` loops.

The same IR is shown as basic blocks with block arguments (``print`` /
``to_blocks``), in the style of Zygote's ``@code_ir``, and its control-flow
graph is available as a networkx ``DiGraph`` (``cfg``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Tuple, Union

from .frontend.ops import OP_SYMBOLS, closure_cell   # printing (ops is a leaf module)


class Undefined:
    """The value of a variable read before Python would have bound it."""

    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "UNDEF"


UNDEF = Undefined()


class Var:
    __slots__ = ("id", "hint")

    def __init__(self, id: int, hint: str = ""):
        self.id = id
        self.hint = hint

    def __repr__(self) -> str:
        return f"%{self.id}"


@dataclass(frozen=True)
class Const:
    value: Any

    def __repr__(self) -> str:
        v = self.value
        if isinstance(v, (int, float, complex, str, bool, type(None), slice)) or v is UNDEF or \
                type(v) is tuple and len(repr(v)) < 40:
            return repr(v)
        return getattr(v, "__qualname__", None) or getattr(v, "__name__", None) or type(v).__name__

    def __hash__(self):
        return id(self.value)

    def __eq__(self, other):
        return isinstance(other, Const) and other.value is self.value


Operand = Union[Var, Const]
# in a transform's ``consts`` (the positions of constant parameters): the function runs under
# ``torch.no_grad()``, called from such a block (``Analysis.cut``, ``Context.no_grad``)
NO_GRAD = "no_grad"
Loc = Tuple[str, int]


@dataclass(eq=False)
class Stmt:
    """``out = fn(*args, *star, **kwargs, **dstar)``; every operation is a call. ``grad``: the
    grad mode a ``with`` block of the function sets around it (False under ``torch.no_grad()``,
    True under ``torch.enable_grad()``), None where it is the caller's (``analysis.Analysis.cut``)."""

    out: Optional[Var]
    fn: Operand
    args: List[Operand]
    kwargs: List[Tuple[str, Operand]] = field(default_factory=list)
    star: Optional[Operand] = None
    dstar: Optional[Operand] = None
    loc: Optional[Loc] = None
    grad: Optional[bool] = None

    def operands(self) -> List[Operand]:
        ops = [self.fn, *self.args, *(v for _, v in self.kwargs)]
        return ops + [o for o in (self.star, self.dstar) if o is not None]


@dataclass(eq=False)
class Region:
    """A straight sequence of nodes; ``yields`` feeds the parent's merge."""

    nodes: List["Node"] = field(default_factory=list)
    yields: List[Operand] = field(default_factory=list)


@dataclass(eq=False)
class If:
    cond: Operand
    then: Region
    orelse: Region
    outs: List[Var]
    loc: Optional[Loc] = None


@dataclass(eq=False)
class Loop:
    """A do-while loop: each trip runs ``body`` with ``params`` bound, whose
    yields are ``[*next_values, cont]``; it repeats while ``cont`` is true and
    ``outs`` take the last ``next_values``. With ``iterable`` set, trips are
    driven by Python's iterator protocol and ``item`` is bound each trip."""

    params: List[Var]
    inits: List[Operand]
    body: Region
    outs: List[Var]
    iterable: Optional[Operand] = None
    item: Optional[Var] = None
    loc: Optional[Loc] = None


@dataclass(eq=False)
class Try:
    """``try: body except (types) as exc: handler``; every region yields values
    for ``outs``. The frontend lowers ``else`` and ``finally`` to code after
    the statement."""

    body: Region
    handlers: List[Tuple[Operand, Optional[Var], Region]]
    outs: List[Var]
    loc: Optional[Loc] = None
    rethrows: bool = False   # a ``finally`` block's: its handler runs the block and raises again


Node = Union[Stmt, If, Loop, Try]


@dataclass(eq=False)
class Function:
    name: str
    params: List[Var]          # positional-or-keyword params, then *args, then kw-only, then **kwargs
    param_names: List[str]
    body: Region               # yields [return value]
    file: str = "<unknown>"
    line: int = 0
    global_types: dict = field(default_factory=dict)   # data globals read -> their type when lifted
    freevars: tuple = ()                                # names of the closure's cells, by index

    @property
    def ret(self) -> Operand:
        return self.body.yields[0]

    def __repr__(self) -> str:
        return format_blocks(self)


class VarFactory:
    def __init__(self):
        self._ids = itertools.count(1)

    def __call__(self, hint: str = "") -> Var:
        return Var(next(self._ids), hint)


def walk(region: Region) -> Iterator[Node]:
    """Every node of a region, depth first, parents before children."""
    for node in region.nodes:
        yield node
        for sub in subregions(node):
            yield from walk(sub)


def subregions(node: Node) -> List[Region]:
    if isinstance(node, If):
        return [node.then, node.orelse]
    if isinstance(node, Loop):
        return [node.body]
    if isinstance(node, Try):
        return [node.body, *(h for _, _, h in node.handlers)]
    return []


def defined_vars(node: Node) -> List[Var]:
    """Variables a node binds in its parent's region."""
    if isinstance(node, Stmt):
        return [node.out] if node.out is not None else []
    return list(node.outs)


def used_operands(node: Node) -> List[Operand]:
    """Operands a node reads in its parent's region (not those of its children)."""
    if isinstance(node, Stmt):
        return node.operands()
    if isinstance(node, If):
        return [node.cond]
    if isinstance(node, Loop):
        return list(node.inits) + ([node.iterable] if node.iterable is not None else [])
    return [t for t, _, _ in node.handlers]


def use_counts(fn: "Function") -> dict:
    """How many times each variable is read (operands and region yields)."""
    uses: dict = {}
    for node in walk(fn.body):
        for op in used_operands(node):
            if isinstance(op, Var):
                uses[op.id] = uses.get(op.id, 0) + 1
        for sub in subregions(node):
            for op in sub.yields:
                if isinstance(op, Var):
                    uses[op.id] = uses.get(op.id, 0) + 1
    for op in fn.body.yields:
        if isinstance(op, Var):
            uses[op.id] = uses.get(op.id, 0) + 1
    return uses


def literal_tuples(fn: "Function", build_list, build_tuple, readers) -> None:
    """A list display read once, at once, as the first argument of a function that only reads
    its items (``torch.stack([a, b])``), is built as a tuple: no one can see the difference, and
    a tuple has no identity, so its gradient is a plain value. "At once": the read is the next
    statement, so no in-place write of an item comes between (``L = [y]; y += x;
    torch.stack(L)`` stacks the written ``y``, whose gradient a tuple of the old one would lose)."""
    uses = use_counts(fn)

    def visit(region: Region) -> None:
        nodes = region.nodes
        for i, node in enumerate(nodes):
            for sub in subregions(node):
                visit(sub)
            if not (isinstance(node, Stmt) and isinstance(node.fn, Const) and node.fn.value is build_list
                    and node.out is not None and uses.get(node.out.id) == 1 and i + 1 < len(nodes)):
                continue
            reader = nodes[i + 1]
            if isinstance(reader, Stmt) and isinstance(reader.fn, Const) and reader.args and \
                    isinstance(reader.args[0], Var) and reader.args[0].id == node.out.id:
                try:
                    reads = reader.fn.value in readers
                except TypeError:
                    reads = False
                if reads:
                    node.fn = Const(build_tuple)

    visit(fn.body)


def prune_loops(fn: "Function") -> None:
    """Drop loop parameters nothing reads (a loop variable not used after the loop,
    a name assigned but never read): fewer values to carry and to save."""
    while True:
        uses = use_counts(fn)
        changed = False
        for node in walk(fn.body):
            if not isinstance(node, Loop):
                continue
            nexts, cont = node.body.yields[:-1], node.body.yields[-1]
            keep = []
            for k, (p, o, nxt) in enumerate(zip(node.params, node.outs, nexts)):
                own = 1 if isinstance(nxt, Var) and nxt.id == p.id else 0
                keep.append(uses.get(p.id, 0) - own > 0 or uses.get(o.id, 0) > 0)
            if all(keep):
                continue
            node.params = [p for p, k in zip(node.params, keep) if k]
            node.inits = [i for i, k in zip(node.inits, keep) if k]
            node.outs = [o for o, k in zip(node.outs, keep) if k]
            node.body.yields = [n for n, k in zip(nexts, keep) if k] + [cont]
            changed = True
        if not changed:
            return


# ---------------------------------------------------------------- verification

class IRError(Exception):
    pass


def verify(fn: Function) -> None:
    """Check single assignment, def-before-use (by scope) and merge arities."""
    seen: set = set()

    def define(v: Var):
        if v.id in seen:
            raise IRError(f"{v} assigned twice in {fn.name}")
        seen.add(v.id)

    def check(op, scope):
        if isinstance(op, Var) and op.id not in scope:
            raise IRError(f"{op} used before definition in {fn.name}")

    def region(r: Region, scope: set, n_yields: int):
        scope = set(scope)
        for node in r.nodes:
            for op in used_operands(node):
                check(op, scope)
            if isinstance(node, If):
                region(node.then, scope, len(node.outs))
                region(node.orelse, scope, len(node.outs))
            elif isinstance(node, Loop):
                if len(node.params) != len(node.inits) or len(node.outs) != len(node.params):
                    raise IRError(f"loop arity mismatch in {fn.name}")
                inner = set(scope)
                for p in node.params + ([node.item] if node.item else []):
                    define(p)
                    inner.add(p.id)
                region(node.body, inner, len(node.params) + 1)
            elif isinstance(node, Try):
                region(node.body, scope, len(node.outs))
                for _, exc, h in node.handlers:
                    inner = set(scope)
                    if exc is not None:
                        define(exc)
                        inner.add(exc.id)
                    region(h, inner, len(node.outs))
            for v in defined_vars(node):
                define(v)
                scope.add(v.id)
        if len(r.yields) != n_yields:
            raise IRError(f"region yields {len(r.yields)} values, expected {n_yields} in {fn.name}")
        for op in r.yields:
            check(op, scope)

    for p in fn.params:
        define(p)
    region(fn.body, {p.id for p in fn.params}, 1)


# ---------------------------------------------------------------- block view

@dataclass
class Block:
    id: int
    args: List[Var]
    lines: List[str]
    succ: List[int]


def _fmt_call(s: Stmt) -> str:
    sym = OP_SYMBOLS.get(s.fn.value) if isinstance(s.fn, Const) else None
    if sym and len(s.args) == 2 and not s.kwargs:
        body = f"{s.args[0]!r} {sym} {s.args[1]!r}"
    elif sym and len(s.args) == 1 and not s.kwargs:
        body = f"{sym}{s.args[0]!r}"
    else:
        parts = [repr(a) for a in s.args] + [f"{k}={v!r}" for k, v in s.kwargs]
        if s.star is not None:
            parts.append(f"*{s.star!r}")
        if s.dstar is not None:
            parts.append(f"**{s.dstar!r}")
        body = f"{s.fn!r}({', '.join(parts)})"
    return f"{s.out!r} = {body}" if s.out is not None else body


def _args(ops) -> str:
    return "(" + ", ".join(repr(o) for o in ops) + ")" if ops else ""


class _BlockView:
    """Builds the block view of one function: each region is emitted into the current block,
    and ``If``/``Loop``/``Try`` end it with branches to blocks of their own."""

    def __init__(self, fn: Function):
        self.fn = fn
        self.blocks: List[Block] = []
        self.cells: dict = {}   # closure_cell results -> the free variable's name (printed @name)

    def new(self, args=()) -> Block:
        b = Block(len(self.blocks) + 1, list(args), [], [])
        self.blocks.append(b)
        return b

    def place(self, b: Block) -> None:
        """Number a block made earlier (a join or loop exit) after those its regions made."""
        b.id = len(self.blocks) + 1
        self.blocks.append(b)

    @staticmethod
    def br(src: Block, dst: Block, ops=(), unless=None):
        if unless is None:
            src.lines.append(f"br {dst.id} {_args(ops)}".rstrip())
        else:
            src.lines.append(f"br {dst.id} {_args(ops)} unless {unless!r}".replace("  ", " "))
        src.succ.append(dst.id)

    def region(self, r: Region, cur: Block) -> Block:
        """Emit a region starting in ``cur``; return the block it ends in."""
        for node in r.nodes:
            if isinstance(node, Stmt):
                self.stmt(node, cur)
            elif isinstance(node, If):
                cur = self.if_(node, cur)
            elif isinstance(node, Loop):
                cur = self.loop(node, cur)
            elif isinstance(node, Try):
                cur = self.try_(node, cur)
        return cur

    def stmt(self, node: Stmt, cur: Block) -> None:
        fv = node.fn.value if isinstance(node.fn, Const) else None
        if fv is closure_cell and isinstance(node.args[1], Const) and self.fn.freevars:
            self.cells[node.out.id] = self.fn.freevars[node.args[1].value]
            return
        if fv is getattr and isinstance(node.args[0], Var) and node.args[0].id in self.cells \
                and node.args[1] == Const("cell_contents"):
            cur.lines.append(f"{node.out!r} = @{self.cells[node.args[0].id]}")
            return
        cur.lines.append(_fmt_call(node))

    def if_(self, node: If, cur: Block) -> Block:
        then_b, else_b = self.new(), self.new()
        join = Block(0, node.outs, [], [])
        self.br(cur, else_b, unless=node.cond)
        self.br(cur, then_b)
        ends = [(self.region(node.then, then_b), node.then.yields),
                (self.region(node.orelse, else_b), node.orelse.yields)]
        self.place(join)
        for end, ys in ends:
            self.br(end, join, ys)
        return join

    def loop(self, node: Loop, cur: Block) -> Block:
        if node.iterable is not None:
            it = f"%it{len(self.blocks) + 1}"
            cur.lines.append(f"{it} = iterate({node.iterable!r})")
        head = self.new(node.params)
        self.br(cur, head, node.inits)
        exit_b = Block(0, node.outs, [], [])
        body_b = head
        if node.iterable is not None:
            head.lines.append(f"{node.item!r} = next({it})")
            body_b = self.new()
        end = self.region(node.body, body_b)
        *nexts, cont = node.body.yields
        self.place(exit_b)
        if node.iterable is not None:
            head.lines.insert(0, f"br {exit_b.id} {_args(node.params)} if exhausted({it})")
            head.succ.append(exit_b.id)
            self.br(head, body_b)
        self.br(end, exit_b, nexts, unless=cont)
        self.br(end, head, nexts)
        return exit_b

    def try_(self, node: Try, cur: Block) -> Block:
        body_b = self.new()
        self.br(cur, body_b)
        join = Block(0, node.outs, [], [])
        ends = [(self.region(node.body, body_b), node.body.yields)]
        for t, exc, h in node.handlers:
            hb = self.new([exc] if exc else [])
            hb.lines.insert(0, f"catch {t!r}")
            body_b.succ.append(hb.id)
            ends.append((self.region(h, hb), h.yields))
        self.place(join)
        for end, ys in ends:
            self.br(end, join, ys)
        return join


def to_blocks(fn: Function) -> List[Block]:
    """Flatten the structured IR into basic blocks with block arguments."""
    view = _BlockView(fn)
    entry = view.new(fn.params)
    last = view.region(fn.body, entry)
    last.lines.append(f"return {fn.ret!r}")
    return view.blocks


def format_blocks(fn: Function) -> str:
    out = []
    for b in to_blocks(fn):
        out.append(f"{b.id}:" + (" " + _args(b.args) if b.args else ""))
        out.extend("  " + ln for ln in b.lines)
    return "\n".join(out)


def cfg(fn: Function):
    """The control-flow graph of the block view as a networkx DiGraph."""
    import networkx as nx
    g = nx.DiGraph()
    for b in to_blocks(fn):
        g.add_node(b.id, args=b.args, lines=b.lines)
        for s in b.succ:
            g.add_edge(b.id, s)
    return g


# ---------------------------------------------------------------- region dataflow

def all_vars(fn: Function) -> List[Var]:
    """Every variable of ``fn`` in program order: parameters, then what each node binds
    (a loop's parameters and item, a handler's exception, before the region they scope)."""
    out = list(fn.params)
    for node in walk(fn.body):
        out += scoped_vars(node)
        out += defined_vars(node)
    return out


def scoped_vars(node: Node) -> List[Var]:
    """Variables a node binds inside its own regions (loop parameters and item, caught
    exceptions)."""
    return [v for v, _ in scoped_bindings(node)]


def scoped_bindings(node: Node) -> List[Tuple[Var, Region]]:
    """Each variable a node binds inside one of its regions, with that region: a loop's
    parameters and item in its body, a handler's exception in the handler."""
    if isinstance(node, Loop):
        return [(v, node.body) for v in node.params + ([node.item] if node.item is not None else [])]
    if isinstance(node, Try):
        return [(exc, h) for _, exc, h in node.handlers if exc is not None]
    return []


def defs_in(region: Region) -> Iterator[int]:
    """Ids of every value bound inside ``region``, nested regions included."""
    for node in walk(region):
        for v in defined_vars(node) + scoped_vars(node):
            yield v.id


def merges(node: Node) -> List[Tuple[Var, List[Operand]]]:
    """A region node's merges: each value it binds with the operands that flow into it
    (a branch's result from each branch's yield, a loop parameter from its initial value and
    the body's next value, a loop's result from its parameter, a loop's item from the
    iterable). Dataflow over regions (activity, what a use keeps alive) walks these edges."""
    if isinstance(node, If):
        return [(o, [a, b]) for o, a, b in zip(node.outs, node.then.yields, node.orelse.yields)]
    if isinstance(node, Try):
        regs = [node.body] + [h for _, _, h in node.handlers]
        return [(o, [r.yields[i] for r in regs]) for i, o in enumerate(node.outs)]
    if isinstance(node, Loop):
        out = [(p, [i, n]) for p, i, n in zip(node.params, node.inits, node.body.yields)]
        out += [(o, [p]) for o, p in zip(node.outs, node.params)]
        if node.item is not None:
            out.append((node.item, [node.iterable]))
        return out
    return []
