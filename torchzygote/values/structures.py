"""One registry of structure types (like JAX's ``tree_util``): how each kind of structure is taken
apart into its children and put together again. Adding gradients (``accum``), materialising them
(``materialize``), seeding an output's slots, ``update`` and the torch fallback all walk
structures through it, so a new structure type is registered once, here or with
:func:`register_structure`.

A structure's children are a tuple (by position: tuples, lists) or a dict (by name: dicts,
``Record``, objects' fields). Names are the keys or attribute names through which differentiated
code reads the children, which is where their gradients are collected.
"""
from __future__ import annotations

import dataclasses
import functools
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch

from .kinds import VALUE_TYPES, has_identity
from .record import Record

Children = Union[tuple, dict]


@dataclass(frozen=True)
class Structure:
    """How one type of structure is taken apart and rebuilt.

    ``flatten(x) -> (children, aux)``; ``unflatten(aux, children)`` builds a new one (None: it
    cannot be built anew, as an arbitrary object); ``gradient(aux, grads)`` the gradient a user
    sees from its children's gradients; ``setter(x, key, child)`` puts a child back in place (None:
    immutable, rebuilt with ``unflatten``). ``mirrors_slot``: its slot in the gradient context,
    not its final state, gives its keys (lists and dicts, whose mutations the pullback undoes)."""
    flatten: Callable[[Any], Tuple[Children, Any]]
    unflatten: Optional[Callable[[Any, Children], Any]]
    gradient: Callable[[Any, Children], Any]
    setter: Optional[Callable[[Any, Any, Any], None]] = None
    mirrors_slot: bool = False


def _object_fields(obj) -> list:
    names = list(vars(obj)) if hasattr(obj, "__dict__") else []
    for cls in type(obj).__mro__:
        for s in getattr(cls, "__slots__", ()):
            if s not in ("__dict__", "__weakref__") and s not in names:
                names.append(s)
    return names


def _module_fields(m) -> list:
    return list(m._parameters) + list(m._buffers) + list(m._modules) + \
        [k for k in vars(m) if not k.startswith("_") and k != "training"]


def _fields(obj, names) -> dict:
    out = {}
    for n in names:
        try:
            out[n] = getattr(obj, n)
        except AttributeError:
            continue
    return out


def _set_field(obj, name, value) -> None:
    old = getattr(obj, name, None)
    if isinstance(obj, torch.nn.Module) and isinstance(old, torch.nn.Parameter):
        with torch.no_grad():   # a module keeps its Parameter objects (optimisers hold them)
            old.copy_(value)
    else:
        setattr(obj, name, value)


def _frozen(x) -> bool:
    return dataclasses.is_dataclass(x) and getattr(getattr(type(x), "__dataclass_params__", None), "frozen", False)


def _replace(obj, fields: dict):
    """A frozen dataclass with new fields, built as the dataclass machinery does (``__init__``);
    changed fields outside ``__init__`` are written after."""
    init = {f.name for f in dataclasses.fields(obj) if f.init}
    out = dataclasses.replace(obj, **{k: v for k, v in fields.items() if k in init})
    for k, v in fields.items():
        if k not in init and v is not getattr(obj, k, None):
            object.__setattr__(out, k, v)
    return out


def _cells(fn) -> dict:
    """A closure's cells by variable name (empty ones left out)."""
    return {name: c for name, c in zip(fn.__code__.co_freevars, fn.__closure__ or ()) if _cell(c)}


def _function_fields(fn) -> dict:
    """What a function holds that may carry gradient: its cells by variable name, and its
    defaults (``__defaults__``, a tuple; ``__kwdefaults__``, a dict)."""
    fields = _cells(fn)
    if fn.__defaults__ is not None:
        fields["__defaults__"] = fn.__defaults__
    if fn.__kwdefaults__ is not None:
        fields["__kwdefaults__"] = fn.__kwdefaults__
    return fields


def _cell(c) -> dict:
    try:
        return {"cell_contents": c.cell_contents}
    except ValueError:   # an empty cell
        return {}


def _set_item(x, key, value) -> None:
    x[key] = value


def _record_gradient(aux, grads):
    return Record(**grads)


TUPLE = Structure(lambda x: (x, None), lambda aux, c: tuple(c), lambda aux, g: tuple(g))
LIST = Structure(lambda x: (tuple(x), None), lambda aux, c: list(c), lambda aux, g: list(g), _set_item, True)
DICT = Structure(lambda x: (x if type(x) is dict else dict(x), None), lambda aux, c: dict(c),   # (OrderedDict too)
                 lambda aux, g: {k: v for k, v in g.items() if v is not None}, _set_item, True)
RECORD = Structure(lambda r: (r._fields, None), _record_gradient, _record_gradient)
NAMED_TUPLE = Structure(lambda x: (dict(zip(x._fields, x)), type(x)), lambda t, c: t(**c), _record_gradient)
# torch.return_types and other tuple subclasses built from one sequence
TUPLE_LIKE = Structure(lambda x: (tuple(x), type(x)), lambda t, c: t(list(c)), lambda t, g: tuple(g))
CLOSURE = Structure(lambda f: (_function_fields(f), None), None, _record_gradient,
                    lambda f, key, v: setattr(f, key, v))   # (``update``: its defaults; cells are stepped in place)
CELL = Structure(lambda c: (_cell(c), None), None, lambda aux, g: g.get("cell_contents"),
                 lambda c, key, v: setattr(c, key, v))
METHOD = Structure(lambda m: ({"__self__": m.__self__}, None), None, _record_gradient)
MODULE_LIST = Structure(lambda m: (tuple(m), None), None, lambda aux, g: list(g))
MODULE = Structure(lambda m: (_fields(m, _module_fields(m)), None), None, _record_gradient, _set_field)
OBJECT = Structure(lambda o: (_fields(o, _object_fields(o)), None), None, _record_gradient, _set_field)
FROZEN_DATACLASS = Structure(lambda o: (_fields(o, _object_fields(o)), o), _replace, _record_gradient)

# a ``functools.partial``: its stored arguments' gradients are in its slot (``dispatch._partial_back``)
PARTIAL = Structure(lambda p: ({"func": p.func, "args": p.args, "keywords": p.keywords}, None), None,
                    _record_gradient)

STRUCTURES: Dict[type, Structure] = {tuple: TUPLE, list: LIST, dict: DICT, Record: RECORD,
                                     functools.partial: PARTIAL}


def register_structure(cls: type, flatten: Callable[[Any], Tuple[dict, Any]],
                       unflatten: Callable[[Any, dict], Any]) -> None:
    """Register a structure type once, for gradients, ``update`` and the torch fallback.

    ``flatten(obj) -> (fields, aux)`` gives its children as a dict ``{name: child}``, each name the
    attribute (or key) through which code reads that child; ``unflatten(aux, fields)`` builds a new
    ``cls`` from such a dict. The gradient of a ``cls`` then comes back as a ``cls`` (its fields
    the fields' gradients, ``None`` where a field has none), ``update`` steps each field and
    rebuilds the object when a field is a new value (a number), and torch ops without a rule that
    receive one see its tensors::

        tz.register_structure(Affine, lambda a: ({"w": a.w, "b": a.b}, None),
                              lambda aux, f: Affine(f["w"], f["b"]))
    """
    STRUCTURES[cls] = Structure(flatten, unflatten, unflatten)


def structure_of(x) -> Optional[Structure]:
    """``x``'s structure, or None for a leaf (a number, tensor, array, string, None, type, ...)."""
    s = STRUCTURES.get(type(x))
    if s is not None:
        return s
    if isinstance(x, tuple):
        return NAMED_TUPLE if hasattr(type(x), "_fields") else TUPLE_LIKE
    if isinstance(x, VALUE_TYPES):
        return None
    if isinstance(x, types.FunctionType):   # (cells or defaults: ``kinds.has_identity``)
        return CLOSURE if has_identity(x) else None
    if isinstance(x, types.CellType):
        return CELL
    if isinstance(x, types.MethodType):
        return METHOD
    if isinstance(x, (torch.nn.Sequential, torch.nn.ModuleList)) and not (x._parameters or x._buffers):
        return MODULE_LIST   # (one holding tensors of its own, a parametrization's list, is a module record)
    if isinstance(x, torch.nn.Module):
        return MODULE
    if isinstance(x, list):
        return LIST
    if isinstance(x, dict):
        return DICT
    return FROZEN_DATACLASS if _frozen(x) else OBJECT


def join(s: Structure, a, b, f: Callable[[Any, Any], Any]):
    """``a`` and ``b`` of one structure type ``s`` combined child by child with ``f`` (positional
    children pairwise, named ones over the union of names, ``f(x, None)`` standing for ``x``)."""
    ca, aux = s.flatten(a)
    cb = s.flatten(b)[0]
    if type(ca) is dict:
        out = dict(ca)
        for k, v in cb.items():
            out[k] = f(out.get(k), v)
        return s.unflatten(aux, out)
    return s.unflatten(aux, tuple([f(x, y) for x, y in zip(ca, cb)]))
