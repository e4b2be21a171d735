"""The rule tables, one module per domain; importing this package registers them all."""
from . import containers, inplace, pylib, scalar, tensor, numpy_rules  # noqa: F401
from . import numpy_ufuncs, numpy_reduce, numpy_shape, numpy_linalg  # noqa: F401
from .registry import nondiff as _nondiff

_nondiff(*pylib.NONDIFF_HELPERS)

import torch as _torch

from .registry import TABLE as _TABLE

# tensor factories: constant tensors (no gradient), which code may still write into
_makers = [getattr(_torch, _n) for _n in ("zeros", "ones", "empty", "full", "zeros_like", "ones_like",
                                          "empty_like", "full_like", "arange", "linspace", "logspace", "eye",
                                          "rand", "randn", "randint", "rand_like", "randn_like", "tensor",
                                          "as_tensor", "from_numpy")]
_nondiff(*[_f for _f in _makers if not _TABLE.lookup(_f)], out="T")

from .registry import end_batch as _end_batch

_end_batch()   # the tables are in: order every rule's variants, most specific first, and check them
