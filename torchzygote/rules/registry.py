"""The rule table: one declaration per primitive, the derivative as plain code.

A rule is a signature and one pullback expression per differentiable
parameter, written in terms of the parameters, ``dy`` (the output's
gradient), ``y`` (the output), ``ctx`` (the gradient context) and ``needs``
(which parameters' gradients this pullback computes, one bool per parameter: a
kernel that computes several at once computes only those). Codegen inlines
the expressions into the generated pullback; ``closure_form`` builds the same
rule as a ``(y, back)`` function for calls resolved at run time.
"""
from __future__ import annotations

import ast
import builtins
import itertools
import linecache
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .patterns import (ANY, KINDS, Pattern, RuleConflict, _UNIVERSE, given, many, order, pattern,  # noqa: F401
                       patterns, some)   # (declarations import the pattern forms from here)
# the kinds of values (values/kinds.py), re-exported: the rule modules name them from here
from ..values.algebra import unbroadcast
from ..values.kinds import (ARRAY, COMPLEX, CONTAINERS, DICT, LIST, MIXED, NONDIFF, NUMERIC, OBJECT,  # noqa: F401
                            REAL, TENSOR, TUPLE, TUPLE_OF, UNDEFINED, base, item_kind, promote, tuple_kind)
from ..values.versions import check_versions, copy_value, saved_versions


@dataclass
class Rule:
    fn: Callable
    params: List[str]
    defaults: Dict[str, object]
    vararg: Optional[str]
    grads: Dict[str, str]              # param -> pullback expression
    ns: dict                           # names the expressions refer to
    fwd: Optional[str] = None          # forward template (operators), else a call
    out: object = "promote"            # output kind: a kind, "promote", or a function of arg kinds
    kinds: Optional[Tuple[Pattern, ...]] = None   # declared argument kinds (None: any, decided per call)
    broadcast: bool = True             # grads of tensor args are summed back to their shape
    maybe_none: bool = False           # pullback expressions may return None
    effect: bool = False               # pullback must run without an output gradient (mutation)
    inplace: bool = False              # mutates its first argument (a tensor) and returns it
    view: bool = False                 # the result may share memory with the first argument
    elementwise: bool = False          # a tensor result has the broadcast shape of the tensor arguments
    # gradients given where these parameters' arguments are all floating-point or complex tensors
    # (maybe_none only for integer and bool tensors, which have no gradient; read from the helpers)
    given_for_floats: Tuple[str, ...] = ()
    keeps_float: bool = False          # a tensor result is floating-point or complex where the arguments are
    reads_sequence: bool = False       # the function only reads its first argument's items, keeping no reference
    kwonly: Tuple[str, ...] = ()       # parameters after ``*``: the closure form passes them by keyword
    omit_defaults: bool = False        # the closure form calls ``fn`` leaving out values equal to defaults
    # forward mode (rules/tangents.py): param -> tangent term, in terms of the parameters, ``y`` and
    # ``d<param>`` (the parameter's tangent; ``d_<param>`` where ``d<param>`` is a parameter's name);
    # terms not given are derived from ``linear`` or ``elementwise``
    jvp: Dict[str, str] = field(default_factory=dict)
    linear: bool = False               # linear in its one differentiable parameter: the tangent is the same call
    # only moves values (containers, attributes, cells, globals): under torch.no_grad() it still
    # passes gradients, as moving a tensor is no operation to torch autograd (``Analysis.cut``)
    moves: bool = False
    name: str = ""
    _closure: Optional[Callable] = field(default=None, repr=False)
    _tangent: Optional[Callable] = field(default=None, repr=False)
    _terms: dict = field(default_factory=dict, repr=False)    # (param, complex_ok) -> tangent term

    @property
    def patterns(self) -> Tuple[Pattern, ...]:
        return self.kinds if self.kinds is not None else (pattern(ANY),)

    @property
    def max_positional(self) -> float:
        return float("inf") if self.vararg else len(self.params)

    @property
    def required(self) -> int:
        return len([p for p in self.params if p not in self.defaults])

    def accepts(self, kinds: Sequence[str]) -> bool:
        """Whether these positional argument kinds are in this variant's set (its patterns, as
        many arguments as its signature takes): the set specificity compares."""
        return len(kinds) <= self.max_positional and any(p.matches(kinds) for p in self.patterns)

    def applies(self, kinds: Sequence[str], nkw: int = 0) -> bool:
        """Whether this variant takes ``len(kinds)`` positional arguments of these kinds."""
        return len(kinds) + nkw >= self.required and self.accepts(kinds)

    def describe(self) -> str:
        return f"{self.name}({', '.join(self.params)}) for kinds {' or '.join(map(str, self.patterns))}"

    def out_kind(self, kinds: Sequence[str]) -> str:
        if callable(self.out):
            return self.out(kinds)
        if self.out == "promote":
            return promote(kinds)
        return self.out


@dataclass
class Table:
    """Every callable with an entry of its own: a declared rule (variants by argument kinds), a
    run-time dispatcher, a user rule (``@adjoint``), or no gradient. Dispatch asks in this order:
    dispatcher, user rule, rule, nondiff; a user rule is not inlined, so it wins over a rule."""
    rules: Dict[object, List[Rule]] = field(default_factory=dict)   # most specific variant first
    # fn -> handler(ctx, args, kw, kwargs) -> (y, back): operators, getattr, call_method, lifted stand-ins
    dispatchers: dict = field(default_factory=dict)
    adjoints: dict = field(default_factory=dict)        # fn -> rule(*args, **kw) -> (y, pullback): @adjoint
    nondiff: set = field(default_factory=set)
    nondiff_kinds: dict = field(default_factory=dict)   # nondiff function -> kind of its result
    # functions that only read their first argument's items -> that parameter's name
    sequence_readers: dict = field(default_factory=dict)
    # forward mode: fn -> handler(ctx, args, kw) -> (y, tangent), arguments packed (values with
    # tangents as Duals): the API's own functions and user forward rules (``register_jvp``)
    jvps: dict = field(default_factory=dict)
    version: int = 0

    def lookup(self, fn) -> Optional[List[Rule]]:
        """``fn``'s variants, most specific first."""
        if _unordered:
            settle()
        try:
            return self.rules.get(fn)
        except TypeError:  # unhashable callable
            return None

    def is_nondiff(self, fn) -> bool:
        try:
            return fn in self.nondiff
        except TypeError:
            return False

    def dispatcher(self, fn) -> Optional[Callable]:
        try:
            return self.dispatchers.get(fn)
        except TypeError:  # unhashable callable
            return None

    def adjoint(self, fn) -> Optional[Callable]:
        try:
            return self.adjoints.get(fn)
        except TypeError:
            return None

    def jvp(self, fn) -> Optional[Callable]:
        try:
            return self.jvps.get(fn)
        except TypeError:
            return None

    def has_entry(self, fn) -> bool:
        """Whether ``fn`` has an entry of its own (then ``Jkw`` dispatches it)."""
        return self.dispatcher(fn) is not None or self.adjoint(fn) is not None or self.is_nondiff(fn) \
            or bool(self.lookup(fn))


TABLE = Table()


def _default(node: ast.AST, ns: dict):
    """A default in a rule's signature: a literal, or a name in the rule's namespace (``np._NoValue``)."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        value = _resolve(node, ns)
        if value is None:
            raise ValueError(f"default {ast.unparse(node)!r} is neither a literal nor a name in the rule's ns")
        return value


def _signature(spec: str, ns: dict):
    node = ast.parse(f"lambda {spec}: 0", mode="eval").body
    a = node.args
    names = [x.arg for x in a.posonlyargs + a.args]
    defaults = {}
    for name, d in zip(names[len(names) - len(a.defaults):], a.defaults):
        defaults[name] = _default(d, ns)
    for k, d in zip(a.kwonlyargs, a.kw_defaults):
        names.append(k.arg)
        if d is not None:
            defaults[k.arg] = _default(d, ns)
    return names, defaults, a.vararg.arg if a.vararg else None


def grad(fn, params: str, /, *, ns: Optional[dict] = None, fwd: Optional[str] = None, out="promote",
         kinds=None, broadcast: bool = True, maybe_none: bool = False, effect: bool = False,
         inplace: bool = False, view: bool = False, elementwise: bool = False, omit_defaults: bool = False,
         given_for_floats: str = "", keeps_float: bool = False, reads_sequence: bool = False,
         jvp: Optional[Dict[str, str]] = None, linear: bool = False, moves: bool = False, **grads: str) -> Rule:
    """Register the derivative of ``fn``; keyword arguments name a parameter's pullback.

    ``kinds``: the argument kinds this variant is for (a pattern, or a list of them), None for any
    (decided per call); ``fwd``: a template for the call (else ``fn`` is called); ``out``: the result's
    kind; ``broadcast``: tensor gradients are summed back to their argument's shape; ``maybe_none``:
    expressions may give None; ``given_for_floats`` (``"a, b"``): they give these parameters' gradients
    (for a ``dy`` that is not None) wherever these parameters' arguments are all floating-point or
    complex tensors (their helpers return None for integer and bool tensors only); ``keeps_float``: a
    tensor result is floating-point or complex where every argument is such a tensor or a number
    (arithmetic: no dtype argument, no comparison); ``effect``: the pullback runs without an output
    gradient (mutation);
    ``inplace``: writes into its first argument; ``view``: the result may share its first argument's
    memory; ``elementwise``: a tensor result has the tensor arguments' broadcast shape;
    ``omit_defaults``: the closure form calls ``fn`` as a user would, leaving out arguments equal to
    their defaults and passing what follows by keyword (torch's overloads).

    Forward mode reads the same entry: ``jvp={param: term}`` gives a parameter's tangent term (in
    terms of the parameters, ``y`` and ``d<param>``, its tangent); ``linear``: ``fn`` is linear in
    its one differentiable parameter, whose tangent is the same call on the tangent; elementwise
    rules derive their terms from the pullback expressions (``rules/tangents.py``). ``moves``: it
    only moves values (``Rule.moves``)."""
    names, defaults, vararg = _signature(params, ns or {})
    kwonly = tuple(k.arg for k in ast.parse(f"lambda {params}: 0", mode="eval").body.args.kwonlyargs)
    reserved = {"y", "dy", "ctx", "needs"} & set(names + [vararg])
    if reserved:   # the pullback expressions' own names: a parameter so named would be shadowed silently
        raise ValueError(f"rule for {fn}: parameters may not be named {sorted(reserved)} (the result, its "
                         f"gradient, the context and the computed gradients in pullback expressions); rename them")
    if vararg and kwonly:   # bind_rule and the analysis bind positional arguments to params in order
        raise ValueError(f"rule for {fn}: keyword-only parameters after *{vararg} are not supported; write "
                         f"a forward template that passes them by keyword")
    given = tuple(p.strip() for p in given_for_floats.split(",") if p.strip())
    for p in (*grads, *given):
        if p not in names and p != vararg:
            raise ValueError(f"rule for {fn}: {p!r} is not a parameter ({params})")
    if given and not maybe_none:
        raise ValueError(f"rule for {fn}: given_for_floats narrows maybe_none, which it does not declare")
    if callable(kinds):
        raise TypeError(f"rule for {fn}: kinds is a pattern such as ('T', 'R|N', ...), not a predicate")
    for p in jvp or {}:
        if p not in names and p != vararg:
            raise ValueError(f"rule for {fn}: jvp names {p!r}, which is not a parameter ({params})")
    if linear and len(grads) != 1:
        raise ValueError(f"rule for {fn}: linear is for functions of one differentiable parameter "
                         f"(it has {sorted(grads)}); give jvp terms instead")
    rule = Rule(fn, names, defaults, vararg, grads, ns or {}, fwd, out,
                None if kinds is None else patterns(kinds), broadcast, maybe_none, effect,
                inplace, view, elementwise,
                name=getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn)),
                kwonly=kwonly, omit_defaults=omit_defaults, given_for_floats=given, keeps_float=keeps_float,
                reads_sequence=reads_sequence, jvp=dict(jvp or {}), linear=linear, moves=moves)
    TABLE.rules.setdefault(fn, []).append(rule)
    if reads_sequence:   # a list display passed straight to it is built as a tuple (frontend)
        TABLE.sequence_readers[fn] = names[0]
    if len(TABLE.rules[fn]) > 1:
        _unordered.add(fn)
        if not _batch:
            settle()
    TABLE.version += 1
    return rule


_unordered: set = set()   # functions given a variant since their variants were last ordered
_batch = [True]           # while the rule tables import, variants are ordered (and checked) once at the end


def settle() -> None:
    """Order the variants of the functions registered to since the last call, most specific first,
    checking that each is chosen for some call and no two are ambiguous (RuleConflict)."""
    while _unordered:
        fn = _unordered.pop()
        TABLE.rules[fn] = order(fn, TABLE.rules[fn])


def end_batch() -> None:
    """The rule tables are imported: check their variants now, and each later one as it comes."""
    _batch.clear()
    settle()


def register_dispatch(fn, handler: Callable) -> Callable:
    """Give ``fn`` a run-time dispatcher ``handler(ctx, args, kw, kwargs) -> (y, back)``: for calls
    whose handling depends on the values (operators on objects, attribute reads, lifted stand-ins)."""
    TABLE.dispatchers[fn] = handler
    TABLE.version += 1
    return handler


def register_jvp(fn, handler: Callable) -> Callable:
    """Give ``fn`` a forward-mode rule ``handler(ctx, args, kw) -> (y, tangent)`` (arguments packed:
    a value with a tangent is a ``Dual``), used before any other entry in forward mode."""
    TABLE.jvps[fn] = handler
    TABLE.version += 1
    return handler


def register_adjoint(fn, rule: Callable) -> Callable:
    """Give ``fn`` a rule ``rule(*args, **kw) -> (y, pullback)`` (``@adjoint``, and the library's own
    rules written that way). It is called at run time, never inlined, and wins over a declared rule."""
    TABLE.adjoints[fn] = rule
    TABLE.version += 1
    return rule


def nondiff(*fns, out: str = NONDIFF) -> None:
    """Functions whose results carry no gradient (``len``, comparisons, ``round``...);
    ``out`` is the kind of their result (``TENSOR`` for ``torch.zeros``: a constant
    tensor that may still be written into)."""
    for f in fns:
        TABLE.nondiff.add(f)
        if out != NONDIFF:
            TABLE.nondiff_kinds[f] = out
    TABLE.version += 1


_selected: Dict[tuple, Optional[Rule]] = {}


def moves(rule: Rule, first_kind: Optional[str]) -> bool:
    """Whether ``rule``, applied to a first argument of ``first_kind``, only moves values
    (``Rule.moves``): a tensor's or a number's attribute (``x.T``, ``z.real``) is computed."""
    return rule.moves and not (rule.fn is getattr and first_kind in (TENSOR, ARRAY, REAL, COMPLEX))


def select(fn, kinds: Sequence[str], nkw: int = 0) -> Optional[Rule]:
    """The most specific variant of ``fn``'s rule that applies to these argument kinds (memoised:
    run-time dispatch asks the same question on every call)."""
    try:
        key = (fn, tuple(kinds), nkw, TABLE.version)
        hit = _selected.get(key, _selected)
    except TypeError:
        key, hit = None, _selected
    if hit is not _selected:
        return hit
    ks = [k if k in _UNIVERSE else "?" for k in kinds]
    found = next((r for r in TABLE.lookup(fn) or () if r.applies(ks, nkw)), None)
    if key is not None:
        _selected[key] = found
    return found


# ----------------------------------------------------------------- what a pullback reads

META_ARGS: Dict[Callable, Tuple[int, ...]] = {}   # helper -> arguments it reads only the metadata of
_META_ATTRS = {"shape", "dtype", "device", "ndim", "dim", "size", "numel", "is_complex", "is_floating_point"}
_META_BUILTINS = (type, isinstance, hasattr, len, id)


def reads_metadata(fn: Callable, *positions: int) -> Callable:
    """Declare that ``fn`` looks only at the shape, dtype, device, type or identity of the
    arguments at ``positions``: a pullback that passes a tensor there needs no guard against
    later in-place writes (they keep all of these)."""
    META_ARGS[fn] = positions
    return fn


def _resolve(node: ast.AST, ns: dict):
    if isinstance(node, ast.Name):
        return ns.get(node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, ns)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def reads_value(expr: str, name: str, ns: dict) -> bool:
    """Whether pullback expression ``expr`` reads the value of parameter ``name``, not just
    its metadata (``x.shape``, ``type(x)``, ``sum_back(dy, x, dim, keepdim)``)."""
    if not re.search(rf"\b{name}\b", expr):
        return False
    tree = ast.parse(expr, mode="eval")
    parent = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == name):
            continue
        up = parent.get(id(node))
        if isinstance(up, ast.Attribute) and up.attr in _META_ATTRS:
            continue
        if isinstance(up, ast.Call) and node in up.args:
            fn = _resolve(up.func, ns)
            try:
                meta = fn in _META_BUILTINS or up.args.index(node) in META_ARGS.get(fn, ())
            except TypeError:   # an unhashable callee
                meta = False
            if meta:
                continue
        return True
    return False


_VALUE_PARAMS: Dict[Tuple[int, str], frozenset] = {}


def value_params(rule: Rule, p: str) -> frozenset:
    """The names (parameters, ``y``) whose values parameter ``p``'s pullback expression reads
    (``reads_value``), once per rule and parameter."""
    key = (id(rule), p)
    found = _VALUE_PARAMS.get(key)
    if found is None:
        e = rule.grads[p]
        found = _VALUE_PARAMS[key] = frozenset(q for q in [*rule.params, rule.vararg, "y"]
                                               if q and reads_value(e, q, rule.ns))
    return found


# ----------------------------------------------------------------- closure form

_counter = itertools.count()


def closure_form(rule: Rule) -> Callable:
    """``J(ctx, *args) -> (y, back)`` for a rule, generated from its expressions.

    Used when the callee or the argument kinds are only known at run time.
    The pullback sums tensor gradients back to each argument's shape.
    """
    if rule._closure is not None:
        return rule._closure
    ps = list(rule.params) + ([rule.vararg] if rule.vararg else [])
    env = dict(rule.ns)
    # ``needs`` in a pullback expression: which parameters' gradients are computed (here all that have one)
    env.update({"_fn": rule.fn, "_ub": unbroadcast, "_D": rule.defaults,
                "needs": tuple(p in rule.grads for p in rule.params)})
    head = ", ".join(f"{p}=_D[{p!r}]" if p in rule.defaults else p for p in rule.params)
    if rule.vararg:
        head += (", " if head else "") + f"*{rule.vararg}"
    if rule.fwd is None and rule.omit_defaults:
        env.update(_call=call_leaving_defaults, _names=tuple(rule.params))
        call = (f"_call(_fn, _names, {len(rule.params) - len(rule.kwonly)}, _D, "
                f"({', '.join(rule.params)}{',' if rule.params else ''}), {rule.vararg or '()'})")
    else:
        call = rule.fwd or "_fn({})".format(", ".join([p for p in rule.params if p not in rule.kwonly] + (
        [f"*{rule.vararg}"] if rule.vararg else []) + [f"{k}={k}" for k in rule.kwonly]))
    pre = ""
    if rule.inplace:  # the pullback reads the old value of the tensor the op overwrites
        p0 = rule.params[0]
        call = re.sub(rf"\b{p0}\b", "_obj", call)
        pre = f"    _obj = {p0}\n    {p0} = _copy(_obj)\n"
        # ``y.mul_(y)``: an argument that is the written tensor itself is read by the pullback as
        # its old value too (the copy), not as the overwritten object
        pre += "".join(f"    if {q} is _obj: {q} = {p0}\n" for q in rule.params[1:]
                       if q not in rule.kwonly and any(re.search(rf"\b{q}\b", e) for e in rule.grads.values()))
    outs = []
    for p in ps:
        e = rule.grads.get(p)
        if e is None:
            outs.append("None")
        elif p == rule.vararg:
            outs.append(f"*({e})")
        else:
            outs.append(f"_ub({e}, {p})" if rule.broadcast else f"({e})")
    nb = len(rule.params)
    ret = f"({', '.join(outs)},)" if outs else "()"
    nargs = f"{nb} + len({rule.vararg})" if rule.vararg else f"{nb}"
    if rule.vararg and rule.vararg not in rule.grads:
        ret = f"({', '.join(outs[:nb])}{',' if nb else ''}) + (None,) * len({rule.vararg})"
    # tensors and arrays the pullback reads: a tensor written in place later is an error at pullback
    # time (its version changed), an array is read from the copy kept here
    read = [] if rule.effect else [  # effect rules (containers, attributes) use identities, not values
        p for p in rule.params if any(reads_value(e, p, rule.ns) for e in rule.grads.values())
        and not (rule.inplace and p == rule.params[0])]
    env.update({"_saved": saved_versions, "_check": check_versions, "_copy": copy_value})
    reads_y = any(re.search(r"\by\b", e) for e in rule.grads.values())
    if reads_y and not rule.inplace and not rule.effect and (rule.out in (TENSOR, ARRAY) or callable(rule.out)):
        read.append("y")   # the result (a tensor or an array), which later code may write in place
    save = f"    _vs = _saved(({', '.join(read)},))\n" if read else ""
    check = f"        {', '.join(read)}, = _check(_vs, {rule.name!r})\n" if read else ""
    if rule.inplace and reads_y:
        # the result is the written tensor, which later writes may change again: keep a copy
        save += "    _y0 = _copy(y)\n"
        check += "        y = _y0\n"
    src = (f"def J_{_name(rule)}(ctx, {head}):\n" + pre +
           f"    y = {call}\n" + save +
           "    def back(dy):\n" + check
           + ("" if rule.effect else f"        if dy is None:\n            return (None,) * ({nargs})\n") +
           f"        return {ret}\n"
           f"    return y, back\n")
    fname = f"<torchzygote rule {rule.name} #{next(_counter)}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    exec(compile(src, fname, "exec"), env)
    rule._closure = env[f"J_{_name(rule)}"]
    return rule._closure


def call_leaving_defaults(fn, names, npos, defaults, vals, var):
    """Call ``fn`` with a rule's bound values as the user could have: values equal
    to their defaults are left out, and what follows a left-out one, or a
    keyword-only parameter, goes by keyword."""
    args, kw, skipped = [], {}, False
    for i, (n, v) in enumerate(zip(names, vals)):
        if n in defaults:
            d = defaults[n]
            if v is d or (type(v) is type(d) and v == d):   # (defaults are literals, never tensors)
                skipped = True
                continue
        if i < npos and not skipped:
            args.append(v)
        else:
            kw[n] = v
    if var and not kw and not skipped:
        args += list(var)
    elif var:
        kw = {**kw}
        args += list(var)
    return fn(*args, **kw)


def _name(rule: Rule) -> str:
    return "".join(c if c.isalnum() else "_" for c in rule.name)


# dispatch itself carries no gradient: a transform of the runtime (nested AD) calls these as they are
nondiff(select, closure_form)
