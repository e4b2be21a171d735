"""A fixed, fast sample of the OpInfo differential sweep (tests/sweeps/opinfo.py):
torchzygote's gradient against torch autograd on ~100 diverse torch ops, a few
sample inputs each, in float64 (and complex128 for a few). Every op must match;
a wrong number or an internal error fails. The full sweep:
``python -m tests.sweeps.opinfo --limit-samples 4 --complex``."""
import functools

import pytest

pytest.importorskip("expecttest")  # torch.testing._internal needs it

import torch  # noqa: E402

from sweeps import opinfo as S  # noqa: E402

SAMPLES_PER_OP = 3

FLOAT64_OPS = [
    # unary elementwise
    "sin", "cos", "tan", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "tanh", "sigmoid", "abs", "neg",
    "reciprocal", "erf", "erfinv", "lgamma", "digamma", "asin", "acosh", "atan", "sinc", "frac", "trunc",
    "nn.functional.logsigmoid", "special.i0e", "xlogy",
    # binary, ternary, broadcasting
    "add", "sub", "mul", "div.no_rounding_mode", "pow", "atan2", "maximum", "minimum", "fmod", "remainder",
    "hypot", "where", "clamp", "lerp", "addcmul", "addcdiv", "float_power", "copysign",
    # reductions and scans
    "sum", "mean", "prod", "amax", "amin", "max.reduction_with_dim", "min.reduction_no_dim", "std", "var",
    "logsumexp", "norm", "norm.nuc", "cumsum", "cumprod", "cummax", "linalg.vector_norm", "linalg.norm",
    "sort", "topk", "kthvalue", "median",
    # shapes, views and indexing
    "reshape", "permute", "transpose", "squeeze", "unsqueeze", "expand", "flatten", "cat", "stack", "split",
    "chunk", "unbind", "narrow", "select", "index_select", "gather", "scatter_add", "index_add",
    "take_along_dim", "masked_fill", "flip", "roll", "repeat", "tril", "triu", "diagonal", "diag_embed",
    "__getitem__", "index_put", "masked_select", "as_strided",
    # linear algebra
    "matmul", "mm", "bmm", "mv", "dot", "outer", "einsum", "addmm", "baddbmm", "linalg.solve", "linalg.inv",
    "linalg.det", "linalg.slogdet", "linalg.cholesky", "linalg.qr", "linalg.eigh", "linalg.svd", "linalg.pinv",
    "cross", "trace", "kron", "cdist",
    # torch.nn.functional
    "nn.functional.relu", "nn.functional.gelu", "nn.functional.silu", "nn.functional.softplus",
    "nn.functional.elu", "nn.functional.leaky_relu", "nn.functional.hardtanh", "softmax", "log_softmax",
    "nn.functional.linear", "nn.functional.conv1d", "nn.functional.conv2d", "nn.functional.conv_transpose2d",
    "nn.functional.max_pool2d", "nn.functional.avg_pool2d", "nn.functional.layer_norm",
    "nn.functional.batch_norm", "nn.functional.group_norm", "nn.functional.embedding",
    "nn.functional.cross_entropy", "nn.functional.nll_loss", "nn.functional.mse_loss", "nn.functional.l1_loss",
    "nn.functional.smooth_l1_loss", "nn.functional.binary_cross_entropy_with_logits", "nn.functional.kl_div",
    "nn.functional.dropout", "nn.functional.pad.constant", "nn.functional.cosine_similarity",
    "nn.functional.interpolate.bilinear", "nn.functional.scaled_dot_product_attention",
]

COMPLEX_OPS = ["mul", "div.no_rounding_mode", "exp", "log", "abs", "sgn", "real", "acos", "pow", "matmul", "mm",
               "addmm", "outer", "nn.functional.linear", "linalg.det", "linalg.inv", "cumprod", "logsumexp",
               "sum", "prod", "nn.functional.conv2d", "tanh", "sqrt", "reciprocal"]


@functools.lru_cache(maxsize=None)
def _ops(dtype):
    return {S.op_id(op): op for op in S.autograd_ops(None, dtype)}


def _check(name, dtype):
    op = _ops(dtype).get(name)
    assert op is not None, f"{name} is not an autograd OpInfo supporting {dtype} (renamed upstream?)"
    res = S.check_op(op, dtype, SAMPLES_PER_OP, timeout_s=0)  # (conftest's per-test alarm holds SIGALRM)
    bad = [s for s in res.samples if s.status in (S.MISMATCH, S.INTERNAL)]
    assert not bad, "\n".join(f"{name} [{dtype}] sample {s.index}: {s.status}: {s.message}" for s in bad)
    assert res.status != S.SKIPPED, f"{name}: every sample skipped: {[s.message for s in res.samples]}"


@pytest.mark.parametrize("name", FLOAT64_OPS)
def test_opinfo_float64(name):
    _check(name, torch.float64)


@pytest.mark.parametrize("name", COMPLEX_OPS)
def test_opinfo_complex128(name):
    _check(name, torch.complex128)
