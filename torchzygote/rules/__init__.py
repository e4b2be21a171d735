"""The rule tables, one module per domain; importing this package registers them all."""
from . import containers, pylib, scalar  # noqa: F401
from ..ad import runtime as _rt
from ..frontend import ops as _ops
from .registry import nondiff as _nondiff

_rt.SPECIAL[_ops.call_method] = _rt.call_method
for _builtin, _stand_in in pylib.LIFT_AS.items():
    _rt.SPECIAL[_builtin] = _rt.lift_as(_stand_in)
_nondiff(*pylib.NONDIFF_HELPERS)
