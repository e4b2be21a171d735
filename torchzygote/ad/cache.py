"""The transform cache: one compiled forward per (code object, argument kinds, tensor ranks,
which tensors are floating-point); the transform itself is ``pipeline.transform``.

Each entry records the globals the transform resolved as constants (modules,
functions, classes) and the rule-table version; a redefined function has a new
code object and a rebound global fails its guard, so both are seen at once
(no ``refresh()``). Lookups take no lock; transforms are serialised.
"""
from __future__ import annotations

import threading
import types
from typing import Callable, Dict, List, Optional, Tuple

import torch

from . import pipeline
from ..frontend.bound import ABSENT, same
from ..rules.registry import TABLE, select
from ..rules.registry import OBJECT
from ..values.kinds import KIND_OF_TYPE, kind_of
from .dispatch import PACKAGE, VARFLAGS, torch_internal
from .module_facts import check as check_fact, compile_guards

_lock = threading.RLock()


class _TypeIs:
    """An ``Entry.attrs`` guard on a module attribute's type, not its value (data the code reads
    when it runs, specialised on its kind: ``expressions.module_attr``)."""

    __slots__ = ("t",)

    def __init__(self, t: type):
        self.t = t

    def holds(self, v) -> bool:
        return type(v) is self.t


class Entry:
    __slots__ = ("guards", "cells", "attrs", "types", "fwd", "version", "ret", "src", "deps",
                 "unguarded", "code", "nargs", "arg_guards", "fits")

    def __init__(self, guards, types_, fwd, version, ir_fn, src, analysis, deps=(), cells=(), attrs=()):
        self.guards, self.types, self.fwd, self.version = guards, types_, fwd, version
        self.cells = cells  # (closure index, value): cells resolved as constants
        self.attrs = attrs  # (a module's __dict__, name, value): module attributes resolved as constants
        # what callers specialise on: the kind, rank and floating-point-ness of the result (None: not
        # lifted). The IR and the analysis are not kept: a transform's objects were a quarter of the
        # heap after a triple derivative, and made Python's full collections run (``inspect`` redoes them)
        self.ret = None if analysis is None else \
            (analysis.kind(ir_fn.ret), analysis.rank(ir_fn.ret), analysis.is_float(ir_fn.ret))
        self.src = src
        self.deps = deps   # (callee entry, callee): the kinds and ranks the callees returned
        self.unguarded = not guards and not types_ and not deps and not cells and not attrs
        self.code = None   # the code object it was made for (set by entry_for): keeps _by_type's ids valid
        self.nargs = -1    # its positional parameters, where a call passes exactly them (no *args, **kw, keyword-only)
        # what it assumed of its module arguments' fields ((position, path, fact): module_facts.compile_guards)
        self.arg_guards = analysis.mods.entry_guards() if analysis is not None else ()
        self.fits = compile_guards(self.arg_guards) if self.arg_guards else None

    def valid(self, f: types.FunctionType) -> bool:
        """Whether this transform still holds for ``f`` (a function of the entry's code):
        the rule tables, the globals and closure cells it resolved, the types of the data
        globals it specialised on, and its callees' entries are as they were."""
        if self.version != TABLE.version:
            return False
        if self.unguarded:
            return True
        for e, callee in self.deps:
            if not e.valid(callee):
                return False
        g = f.__globals__
        for name, val in self.guards:
            if g.get(name, ABSENT) is not val:
                return False
        for name, t in self.types:
            if type(g.get(name, ABSENT)) is not t:
                return False
        for d, name, val in self.attrs:
            now = d.get(name, ABSENT)
            if now is not val and (not val.holds(now) if type(val) is _TypeIs else not same(now, val)):
                return False
        if self.cells:
            cl = f.__closure__
            for i, val in self.cells:
                try:
                    if cl[i].cell_contents is not val:
                        return False
                except ValueError:
                    return False
        return True


def _own(e: Entry, code) -> None:
    e.code = code
    if not code.co_flags & VARFLAGS and not code.co_kwonlyargcount:
        e.nargs = code.co_argcount


_cache: Dict[Tuple, List[Entry]] = {}
_PER_KEY = 8   # transforms kept per (code, kinds): closures of one code over different cells


def kinds_of(args) -> tuple:
    return tuple(KIND_OF_TYPE.get(type(a)) or kind_of(a) for a in args)


def ranks_of(args) -> tuple:
    """Tensor arguments' ranks (None for other arguments): transforms specialise on them,
    so 0-d tensors and the items of vectors have shapes known when the code is made."""
    return tuple([a.dim() if isinstance(a, torch.Tensor) else None for a in args])


def floats_of(args) -> tuple:
    """True for each floating-point or complex tensor argument, None for any other: transforms
    specialise on it (rules that give None gradients only to integer and bool tensors need no
    None checks for these). None rather than False: what a caller's analysis knows of its
    callee's arguments is True or unknown, and makes the same key."""
    return tuple([True if isinstance(a, torch.Tensor) and (a.dtype.is_floating_point or a.dtype.is_complex)
                  else None for a in args])


def ranks_dtypes(args) -> tuple:
    """Tensor arguments' ranks and dtypes (None for other arguments), for ``_by_type``'s key:
    they decide ``ranks_of`` and ``floats_of`` (one pass over the arguments)."""
    return tuple([(a.dim(), a.dtype) if isinstance(a, torch.Tensor) else None for a in args])


_in_progress: set = set()
_deps_stack: List[list] = []   # per transform in progress: the callee entries its analysis used
_modes: List[str] = []         # per transform in progress: its mode (callees are asked in the same mode)


def return_kind(f: types.FunctionType, kinds: tuple, ranks: tuple, floats: tuple,
                examples: Optional[tuple] = None) -> tuple:
    """The kind, rank and floating-point-ness ``f`` returns for arguments of these kinds, ranks and floats (callers
    specialise on them; ``examples``: module arguments whose fields it may specialise on), and the
    guards on those arguments they hold under (``Entry.arg_guards``: the caller's guards too);
    unknown while ``f`` is itself being transformed (recursion); and the entry (None where unknown)."""
    if _own_code(f):
        return OBJECT, None, False, (), None
    mode = _modes[-1] if _modes else "reverse"
    examples = _examples_for(f, examples)
    key = _key(f.__code__, kinds, ranks, floats, frozenset(), mode, examples)
    if key in _in_progress:
        return OBJECT, None, False, (), None
    e = entry_for(f, kinds, ranks=ranks, floats=floats, mode=mode, examples=examples)
    if e.ret is None:
        return OBJECT, None, False, (), None
    if _deps_stack:
        _deps_stack[-1].append((e, f))   # the caller's transform depends on it
    return (*e.ret, e.arg_guards, e)


def entry(f: types.FunctionType, args, consts: frozenset = frozenset()) -> Entry:
    return entry_for(f, kinds_of(args), consts, ranks_of(args), floats_of(args), examples=args)


def _key(code, kinds, ranks, floats, consts, mode, examples) -> tuple:
    """The cache's key; transforms specialised on module arguments (reverse mode) have keys of
    their own, and each entry there holds the guards it needs (``Entry.arg_guards``)."""
    key = (code, kinds, ranks, floats) if not consts else (code, kinds, ranks, floats, consts)
    if mode != "reverse":
        return key + (mode,)
    return key + ("modules",) if _specialises(examples) else key




def _own_code(f: types.FunctionType) -> bool:
    """Whether ``f`` is one of torchzygote's own functions (lifted by nested differentiation only)."""
    return f.__code__.co_filename.startswith(PACKAGE)


def _examples_for(f: types.FunctionType, examples):
    """The arguments ``f``'s transform may specialise on: none for torchzygote's own functions
    (lifted by nested differentiation: ``gradient(f, x)`` inside a derivative would otherwise be
    transformed anew for every function ``f`` it is given, at every level of the nest)."""
    return None if examples is None or _own_code(f) else examples


def _specialises(examples) -> bool:
    """Whether some argument is a module or a function (``analysis_modules`` specialises on them)."""
    return examples is not None and any(isinstance(x, _Module) or type(x) is types.FunctionType for x in examples)


def entry_for(f: types.FunctionType, kinds: tuple, consts: frozenset = frozenset(),
              ranks: Optional[tuple] = None, floats: Optional[tuple] = None, mode: str = "reverse",
              examples: Optional[tuple] = None, registered: bool = False) -> Entry:
    """The transform of ``f`` for arguments of these kinds (and tensor ranks, None where
    unknown; floats: True for floating-point or complex tensors, None where not or unknown);
    parameters in ``consts`` (positions) are constants: no gradient is computed for them.
    ``examples`` (argument values, or None): in reverse mode, the fields of module arguments
    are specialised on (``analysis_modules``), and an entry serves arguments that fit its guards.
    ``registered``: lift ``f`` even though the rule table has an entry for it (a dispatcher's
    own fallback: ``nested_reverse``)."""
    ranks = ranks or (None,) * len(kinds)
    floats = floats or (None,) * len(kinds)
    examples = _examples_for(f, examples)
    key = _key(f.__code__, kinds, ranks, floats, consts, mode, examples)
    spec = len(key) > 4 and key[-1] == "modules"
    if registered:
        key += ("registered",)
    examples = examples if spec else None
    g = f.__globals__
    for e in _cache.get(key, ()):
        if e.valid(f) and (e.fits is None or e.fits(examples)):
            return e
    with _lock:
        for e in _cache.get(key, ()):
            if e.valid(f) and (e.fits is None or e.fits(examples)):
                return e
        # (forward mode lifts what its dispatcher sends here, whatever reverse mode's entries)
        if not registered and (mode == "reverse" and (TABLE.adjoint(f) or TABLE.dispatcher(f)) or torch_internal(f) or
                               select(f, kinds)):
            e = Entry((), (), None, TABLE.version, None, "", None)
            _own(e, f.__code__)
            _cache[key] = [e]
            return e
        _in_progress.add(key)
        _deps_stack.append([])
        _modes.append(mode)
        try:
            t = pipeline.transform(f, kinds, consts, ranks, return_kind if mode == "reverse" else None, floats, mode,
                                   examples)
        finally:
            _in_progress.discard(key)
            _modes.pop()
            deps = tuple(_deps_stack.pop())
        fn_ir, guards = t.ir, t.guards
        gl = tuple((n, v) for n, v in guards.items() if isinstance(n, str))
        cells = tuple((i, v) for i, v in guards.items() if isinstance(i, int))
        attrs = tuple((k[0].__dict__, k[1], v) for k, v in guards.items() if type(k) is tuple)
        types_ = tuple((n, tp) for n, tp in fn_ir.global_types.items() if isinstance(n, str))
        # module data specialised on its type (``module_attr``): checked as a folded attribute is
        attrs += tuple((k[0].__dict__, k[1], _TypeIs(tp)) for k, tp in fn_ir.global_types.items() if type(k) is tuple)
        e = Entry(gl, types_, t.fwd, TABLE.version, fn_ir, t.src, t.analysis, deps, cells, attrs)
        _own(e, f.__code__)
        # entries for other closures of the same code (other cell contents) stay, a few of them
        lst = [x for x in _cache.get(key, ()) if x.version == TABLE.version][1 - _PER_KEY:]
        _cache[key] = lst + [e]
        return e


_by_type: Dict[Tuple, Entry] = {}   # (id(code), argument types[, ranks, dtypes]) -> entry, where types decide kinds
# keyed by the code's id, not the code: a code object's hash is computed anew at each lookup (its name,
# bytecode, constants, names...), a fifth of a small function's warm gradient call. The id stays the
# code's as long as the entry lives: the entry holds the code (Entry.code)


def type_key(code, args) -> tuple:
    """``_by_type``'s key for ``code`` called with ``args``: the code's id and the arguments'
    types, and the tensors' ranks and dtypes where there are tensors (api.gradient inlines it
    for one and two arguments)."""
    n = len(args)   # one and two arguments spelled out: no map object on the hot path
    if n == 1:
        a = args[0]
        t = type(a)
        return (id(code), t) if t is not _Tensor and t is not _Parameter else (id(code), t, a.dim(), a.dtype)
    if n == 2:
        a, b = args
        ta, tb = type(a), type(b)
        if ta is not _Tensor and ta is not _Parameter and tb is not _Tensor and tb is not _Parameter:
            return (id(code), ta, tb)
        return (id(code), ta, tb, a.dim() if isinstance(a, _Tensor) else None,
                b.dim() if isinstance(b, _Tensor) else None, a.dtype if isinstance(a, _Tensor) else None,
                b.dtype if isinstance(b, _Tensor) else None)
    key = (id(code), *map(type, args))
    if _Tensor in key or _Parameter in key:
        key += ranks_dtypes(args)
    return key


def forward(f: types.FunctionType, args, consts: frozenset = frozenset()) -> Optional[Callable]:
    """The compiled forward of ``f`` for these arguments' kinds (no gradients for the positions
    in ``consts``), or None for a function that is not lifted (it has a rule, or is torch's own
    and runs under torch autograd). The common case (arguments whose kind their type decides)
    is one dict lookup."""
    key = type_key(f.__code__, args)
    if consts:
        key = (key, consts)
    e = _by_type.get(key)
    if e is not None and (e.unguarded and e.version == TABLE.version or e.valid(f)) and \
            (e.fits is None or e.fits(args)):
        return e.fwd
    e = entry(f, args, consts)
    # only an entry that holds this very code: one made for an equal code (the same source
    # compiled again) would leave the key's id free for a later, different code
    if e.code is f.__code__ and all(_kind_by_type(type(a)) for a in args):
        _by_type[key] = e
    return e.fwd


def _kind_by_type(t: type) -> bool:
    """Whether an argument's type alone decides its kind (and whether it has a rank):
    not for tuples (their items decide) nor tensor subclasses (their ranks are not in
    the key)."""
    return t in KIND_OF_TYPE or not (t is tuple or issubclass(t, torch.Tensor))


_Tensor, _Parameter, _Module = torch.Tensor, torch.nn.Parameter, torch.nn.Module


def jvp_entry(f: types.FunctionType, args, consts: frozenset, mode: str) -> Entry:
    """The forward-mode transform of ``f`` for these argument values (``consts``: positions
    without a tangent)."""
    return entry_for(f, kinds_of(args), consts, ranks_of(args), floats_of(args), mode)


from . import dispatch as _dispatch  # noqa: E402
from . import jvp_dispatch as _jvp_dispatch  # noqa: E402

_dispatch.forward = forward
_jvp_dispatch.entry_for = jvp_entry
from ..rules.registry import nondiff as _nondiff  # noqa: E402

_nondiff(forward, kinds_of, jvp_entry, check_fact)   # (generated code's checks: no gradient)
