"""Values a pullback reads later, and whether they were written in place since: a tensor's
version counter, a copy of a NumPy array (arrays have no version counter)."""
from __future__ import annotations

import torch

from ..errors import GradientError

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None


def saved_versions(values) -> tuple:
    """A rule's saved inputs, each with what tells its value at pullback time: a tensor's
    version counter, a copy of a NumPy array (arrays have no version counter), else None."""
    return tuple([(v, v._version) if isinstance(v, torch.Tensor) else
                  (v, v.copy()) if np is not None and isinstance(v, np.ndarray) else (v, None) for v in values])


def check_versions(saved, name) -> tuple:
    """The saved inputs as the rule saw them: a tensor written in place since is an error (its
    old value is gone), an array's copy stands in for it (whatever was written into it since)."""
    out = []
    for v, ver in saved:
        if isinstance(v, torch.Tensor):
            if v._version != ver:
                raise GradientError(
                    f"a tensor (shape {tuple(v.shape)}) that the gradient of {name} reads was written in place "
                    f"after {name} used it (through another name, a view, a list or an object), so its old "
                    f"value is gone: write into a copy (`y = y.clone()` before the in-place write). Where this is a "
                    f"second derivative (reverse over reverse) of code that writes in place, hessian(..., "
                    f"method='forward') follows the writes")
            out.append(v)
        else:
            out.append(v if ver is None else ver)
    return tuple(out)


def changed(v, saved) -> bool:
    """Whether tensor or array ``v`` was written in place since ``saved`` (a version or a copy)."""
    if isinstance(v, torch.Tensor):
        return v._version != saved
    return not np.array_equal(v, saved, equal_nan=v.dtype.kind in "fc")


def _what(v) -> str:
    return f"a tensor (shape {tuple(v.shape)})" if isinstance(v, torch.Tensor) else f"an array (shape {v.shape})"


def _copy_hint(v) -> str:
    return "`y = y.clone()`" if isinstance(v, torch.Tensor) else "`y = y.copy()`"


def copy_value(v):
    """A copy of a tensor or an array (the old value of an in-place write); other values as they are."""
    if isinstance(v, torch.Tensor):
        return v.clone()
    return v.copy() if np is not None and isinstance(v, np.ndarray) else v


def guard_reads(f, reads, args, res):
    """``res = (y, back)`` with a pullback that first checks that the tensor and array arguments
    it reads were not written in place after the call (torch's version counters, which views
    share with their base; a copy of an array): otherwise it would silently compute with the
    new values."""
    y, back = res
    saved = saved_reads(reads, args, y)
    if not saved:
        return res

    def checked(dy):
        check_reads(f, saved)
        return back(dy)
    return y, checked


def saved_reads(reads, args, y) -> list:
    """The tensors and arrays at positions ``reads`` of ``args`` (-1: the result ``y``), each with
    what tells whether it is written in place later (``check_reads``)."""
    return [(i, a, a._version if isinstance(a, torch.Tensor) else a.copy()) for i in reads
            if isinstance(a := (args[i] if i >= 0 else y), torch.Tensor) or
            np is not None and isinstance(a, np.ndarray)]


def check_reads(f, saved) -> None:
    """A clear error if a value ``saved_reads`` saved for ``f``'s pullback was written in place since."""
    for i, a, v in saved:
        if changed(a, v):
            code = getattr(f, "__code__", None)
            name = getattr(f, "__qualname__", repr(f))
            what = f"argument {i + 1} of {name}" if i >= 0 else f"the result of {name}"
            raise GradientError(
                f"{what} ({_what(a)}) was written in place "
                f"after the call, and {name}'s gradient reads its old value: write into a copy "
                f"({_copy_hint(a)} before the in-place write) or pass a copy to {name}",
                (code.co_filename, code.co_firstlineno) if code else None)
