"""NumPy rules: linear algebra (batched), einsum, tensor products, fft, convolve/correlate.

Written with the table helpers of ``numpy_rules`` (``_r``): each rule applies to arrays, Python
numbers and NumPy scalars where NumPy does, and its backward uses only functions with rules, so it is
differentiable again.
"""
from __future__ import annotations
