"""Reading an ``nn.Module``'s fields: which reads are plain (torch's own lookup of the instance
dict and the module's registries, nothing of the class's own on the way), and such a read
without the cost of ``getattr``."""
from __future__ import annotations

import torch

_Module = torch.nn.Module


def plain_field(m, name: str) -> bool:
    """Whether ``m.name`` reads a field of module ``m`` as the run-time dispatcher reads it
    (``handlers.getattr_dispatch``): no class in its MRO defines ``name`` (a property,
    descriptor or method) and attribute lookup is ``nn.Module``'s own."""
    cls = type(m)
    if not isinstance(m, _Module) or cls.__getattribute__ is not object.__getattribute__ or \
            cls.__getattr__ is not _Module.__getattr__:
        return False
    return not any(name in k.__dict__ for k in cls.__mro__)


_REGISTRIES = ("_parameters", "_buffers", "_modules")
_NO = object()
_PLAIN: dict = {}   # (class, name) -> plain_field: decided once per class and name


def plain(m, name: str) -> bool:
    """``plain_field``, decided once per class and name."""
    key = (type(m), name)
    found = _PLAIN.get(key)
    if found is None:
        found = _PLAIN[key] = plain_field(m, name)
    return found


def read_field(m, name: str):
    """``getattr(m, name)``, faster where it reads a plain field of a module (``plain_field``):
    the instance's dict, then its parameters, buffers and submodules, the order Python's lookup
    and ``Module.__getattr__`` take; ``getattr`` costs about 1 us there (a failed lookup, then
    torch's ``__getattr__`` in Python), which guards and specialised code pay per field read."""
    if plain(m, name):
        d = m.__dict__
        v = d.get(name, _NO)
        if v is not _NO:
            return v
        for reg in _REGISTRIES:
            r = d.get(reg)
            if r is not None and name in r:
                return r[name]
    return getattr(m, name)
