"""A dataclass whose ``__init__`` dataclasses generated (it has no source to lift) but that has a
``__post_init__``: the generated ``__init__``'s assignments are done here, as it does them, and only
``__post_init__`` is differentiated (``dispatch.construct``, ``jvp_dispatch.construct``). Plain Python
over the class's field records, so that nested differentiation lifts it too."""
from __future__ import annotations

import dataclasses
from typing import Any, List, Tuple

_FIELD = getattr(dataclasses, "_FIELD", None)
_INITVAR = getattr(dataclasses, "_FIELD_INITVAR", None)


def generated_init(cls) -> bool:
    """Whether ``cls`` is a dataclass with a ``__post_init__`` whose ``__init__`` dataclasses wrote."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and hasattr(cls, "__post_init__")):
        return False
    code = getattr(cls.__init__, "__code__", None)
    return code is not None and code.co_filename == "<string>"


def assign_fields(cls, args, kw) -> Tuple[Any, list, List[str], List[str]]:
    """A new ``cls`` with its fields set from ``args`` and ``kw`` as the generated ``__init__`` sets them
    (defaults, default factories, fields without ``init``); the values of its ``InitVar`` pseudo-fields
    (``__post_init__``'s arguments); each positional argument's name; the ``InitVar`` names."""
    fields = [f for f in cls.__dataclass_fields__.values() if f._field_type is _FIELD or f._field_type is _INITVAR]
    params = [f for f in fields if f.init]
    positional = [f.name for f in params if not getattr(f, "kw_only", False)]
    if len(args) > len(positional):
        raise TypeError(f"{cls.__qualname__}.__init__() takes {len(positional)} positional arguments "
                        f"but {len(args)} were given")
    given = dict(zip(positional, args))
    for k in kw:
        if k in given or all(f.name != k for f in params):
            raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected or repeated keyword argument {k!r}")
        given[k] = kw[k]
    obj = cls.__new__(cls)
    initvals = []
    for f in fields:
        if f.init and f.name in given:
            v = given[f.name]
        elif f.default_factory is not dataclasses.MISSING:
            v = f.default_factory()
        elif f.default is not dataclasses.MISSING:
            v = f.default
        elif f.init:
            raise TypeError(f"{cls.__qualname__}.__init__() missing the argument {f.name!r}")
        else:
            continue
        if f._field_type is _INITVAR:
            initvals.append(v)
        else:
            object.__setattr__(obj, f.name, v)   # (as the generated code does, for frozen classes too)
    return obj, initvals, positional[:len(args)], [f.name for f in fields if f._field_type is _INITVAR]
