"""Bridges between torchzygote and torch autograd.

``call_torch(fn, *args)`` runs torch-autograd code inside differentiated code;
``to_torch(f)`` makes a torchzygote-differentiated function a torch autograd op.
Neither drops a gradient silently: what torch can see is differentiated (tensors
anywhere in the arguments, modules' parameters, values a closure captures, the
tensors of ``Params``), and a value that cannot be followed raises an error
naming it.
"""
from .torch_call import call_torch
from .torch_op import to_torch

__all__ = ["call_torch", "to_torch"]
