"""What torch.func's transforms see of a torchzygote gradient call made inside them."""
from __future__ import annotations

from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

from .errors import GradientError


def refuse_inside_torch_grad(key) -> None:
    """Under ``torch.func.grad``/``jacrev``/``vjp`` a gradient call's results would be constants to
    torch (torchzygote's code runs with torch's autograd off), which would report zeros; ``to_torch``
    makes the call an op torch differentiates. (``vmap`` and ``jvp`` see through it: allowed.)"""
    if any(i.key() == TransformType.Grad for i in retrieve_all_functorch_interpreters()):
        name = getattr(key, "co_name", None) or getattr(key, "__name__", "f")
        raise GradientError(
            f"torchzygote's gradient of {name!r} is called inside a torch.func transform that differentiates "
            f"it (torch.func.grad, jacrev or vjp): torch would see its result as a constant and report a zero "
            f"derivative. Wrap the function that calls torchzygote in tz.to_torch so that torch differentiates "
            f"through it, e.g. torch.func.grad(tz.to_torch(lambda x: tz.gradient(f, x)[0].sum()))")
