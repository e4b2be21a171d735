"""torchzygote: source-to-source automatic differentiation for Python, built on PyTorch."""
from . import rules  # noqa: F401  (registers the rule tables)
from .ad import cache as _cache, handlers as _handlers, nested_reverse as _nested  # noqa: F401  (the dispatch cases)
from .api import (Grads, Params, WithGradient, adjoint, checkpoint, derivative, dropgrad, forwarddiff, gradient,
                  hook, ignore, nestlevel, nograd, pullback, withgradient)
from .bridges import call_torch, to_torch
from .values.record import Record
from .values.structures import register_structure
from .calculus import diaghessian, hessian, jacobian
from .forward import D, Dual, jvp, jvp_rule, pushforward, taylor
from .calculus import hvp
from .errors import GradientError, GradientMismatchError, LiftError, NoRuleError, TorchZygoteError
from .check import GradientCheckWarning, gradcheck, set_check
from .export import gradient_graph
from .inspect import code_adjoint, code_analysis, code_ir
from .optim import update

__all__ = ["gradient", "withgradient", "pullback", "derivative", "Params", "Grads", "adjoint",
           "nograd", "dropgrad", "ignore", "hook", "checkpoint", "forwarddiff", "call_torch", "to_torch",
           "nestlevel", "code_ir", "code_analysis", "gradient_graph",
           "code_adjoint", "Record", "WithGradient", "TorchZygoteError", "LiftError",
           "NoRuleError", "GradientError", "update", "gradcheck", "set_check", "GradientMismatchError",
           "GradientCheckWarning", "register_structure", "jvp", "pushforward", "D", "Dual", "hvp", "jvp_rule", "taylor"]
__version__ = "0.1.0"
