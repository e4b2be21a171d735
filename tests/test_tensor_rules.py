"""Every torch rule in the table, checked by ``torch.autograd.gradcheck`` (float64).

Each function or Tensor method with a rule needs an entry in SAMPLES (keyed by
its name; ``F.``/``linalg.``/``special.`` prefixes for those namespaces). For
each sample, a small function calling the op (``torch.name(...)`` and
``a.name(...)`` for methods, written as source so the transform inlines the
rule) is wrapped in an autograd.Function whose backward is torchzygote's
pullback, and gradcheck compares it with finite differences.
"""
import importlib.util
import itertools
import re
import sys

import pytest
import torch
import torch.nn.functional as F

import torchzygote as tz
from torchzygote.rules import fallback, tensor as trules
from torchzygote.rules.registry import TABLE

D = torch.float64
U = "unary"      # marker: default unary samples
B = "binary"     # marker: default broadcasting binary samples
SKIP = "skip"    # no CPU sample (cuda, half) or float32 casts (checked in test_tensors.py)

# spec: (call text with OP, [input specs]); input specs: shape tuple, ("pos", shape), ("unit", shape),
# ("spd", n), ("sq", n), ("int", shape, high) and ("bool", shape) (constants), ("num", value)
UNARY = [("OP(a)", [(3, 4)]), ("OP(a)", [()])]
BINARY = [("OP(a, b)", [(3, 4), (4,)]), ("OP(a, b)", [(), (2, 3)]), ("OP(a, b)", [(2, 1, 3), (4, 1)])]
POS = [("OP(a)", [("pos", (3, 4))]), ("OP(a)", [("pos", ())])]
UNIT = [("OP(a)", [("unit", (3, 4))]), ("OP(a)", [("unit", ())])]
RED = [("OP(a)", [(3, 4)]), ("OP(a, 1)", [(3, 4)]), ("OP(a, dim=0, keepdim=True)", [(3, 4)]), ("OP(a)", [()]),
       ("OP(a, (0, 2))", [(2, 3, 2)])]
SHAPE_ID = [("OP(a)", [(3, 4)])]

SAMPLES = {
    **{n: UNARY for n in ["sin", "cos", "exp", "expm1", "exp2", "tanh", "sigmoid", "sinh", "cosh", "atan", "asinh",
                          "erf", "erfc", "reciprocal", "square", "neg", "negative", "positive", "abs", "absolute",
                          "relu", "conj", "conj_physical", "real", "deg2rad", "rad2deg", "clone", "contiguous",
                          "sgn", "frac", "F.relu", "F.gelu", "F.silu", "F.softplus", "F.elu", "F.leaky_relu",
                          "F.logsigmoid", "F.tanh", "F.sigmoid", "F.hardtanh", "F.relu6", "special.expit",
                          "double", "ravel", "atleast_1d", "atleast_2d", "atleast_3d", "flatten"]},
    "tan": UNIT, "asin": UNIT, "acos": UNIT, "atanh": UNIT,
    "acosh": [("torch.acosh(a + 2)", [("pos", (3, 4))]), ("(a + 2).acosh()", [("pos", ())])],
    **{n: POS for n in ["log", "log2", "log10", "log1p", "sqrt", "rsqrt"]},
    "reciprocal": POS,
    "F.gelu": UNARY + [("OP(a, approximate='tanh')", [(3, 4)])],
    "F.softplus": UNARY + [("OP(a, beta=2.0, threshold=1.0)", [(3, 4)])],
    "F.leaky_relu": UNARY + [("OP(a, 0.2)", [(3, 4)])],
    "F.hardtanh": [("OP(a * 2)", [(3, 4)])],
    "F.relu6": [("OP(a * 4)", [(3, 4)])],
    "float": SKIP, "half": SKIP, "bfloat16": SKIP, "cuda": SKIP,
    "cpu": SHAPE_ID, "to": [("OP(a, torch.float64)", [(3,)]), ("OP(a, dtype=torch.float64)", [(3,)])],
    "type_as": [("OP(a, b)", [(3,), (2,)])],
    "item": [("OP(a) * b", [(), (3,)])],
    "tensor": [("OP([a.sum(), b.sum() * 2])", [(3,), (2,)])], "as_tensor": [("OP(a)", [(3,)])],
    "full_like": [("OP(a, b.sum())", [(3, 4), (2,)])],
    "full": [("OP((2, 3), a.sum(), dtype=torch.float64)", [(3,)])],
    "new_full": [("OP(a, (2, 3), b.sum())", [(3,), (2,)])],
    "clamp": [("OP(a, -0.5, 0.5)", [(3, 4)]), ("OP(a, min=b)", [(3, 4), (4,)]), ("OP(a, max=0.3)", [()]),
              ("OP(a, b, c)", [(3, 4), (4,), (3, 1)])],
    "clip": [("OP(a, -0.5, 0.5)", [(3, 4)])],
    "clamp_min": [("OP(a, 0.1)", [(3, 4)]), ("OP(a, b)", [(3, 4), (4,)])],
    "clamp_max": [("OP(a, 0.1)", [(3, 4)]), ("OP(a, b)", [(3, 4), (4,)])],
    "where": [("torch.where(a > 0, a, b)", [(3, 4), (4,)]), ("torch.where(a > 0, b, 0.0)", [(3, 4), ()])],
    "Tensor.where": [("a.where(a > 0, b)", [(3, 4), (4,)])],
    "maximum": BINARY, "minimum": BINARY, "fmax": BINARY, "fmin": BINARY,
    "pow": [("OP(a, 3)", [(3, 4)]), ("OP(a, b)", [("pos", (3, 4)), (4,)]), ("OP(a, 0.5)", [("pos", ())])],
    "float_power": [("OP(a, b)", [("pos", (3, 4)), (4,)])],
    "add": BINARY + [("OP(a, b, alpha=2)", [(3,), (3,)])], "sub": BINARY, "subtract": BINARY,
    "rsub": [("OP(a, b)", [(3,), (3,)])],
    "mul": BINARY, "multiply": BINARY, "div": [("OP(a, b)", [(3, 4), ("pos", (4,))])],
    "divide": [("OP(a, b)", [(3, 4), ("pos", (4,))])], "true_divide": [("OP(a, b)", [(3, 4), ("pos", (4,))])],
    "atan2": BINARY, "arctan2": BINARY, "hypot": BINARY,
    "remainder": [("OP(a, b)", [(3, 4), ("pos", (4,))])], "fmod": [("OP(a, b)", [(3, 4), ("pos", (4,))])],
    "lerp": [("OP(a, b, c)", [(3, 4), (4,), (3, 1)]), ("OP(a, b, 0.3)", [(3,), (3,)])],
    "addmm": [("OP(a, b, c)", [(2, 4), (2, 3), (3, 4)]), ("OP(a, b, c, beta=0.5, alpha=2)", [(4,), (2, 3), (3, 4)])],
    "masked_fill": [("OP(a, a > 0, b)", [(3, 4), ()]), ("OP(a, a > 0, 1.5)", [(3, 4)])],
    "xlogy": [("OP(a, b)", [(3, 4), ("pos", (4,))])],
    "sum": RED + [("OP(a, dtype=torch.float64)", [(3,)])], "nansum": RED, "mean": RED, "prod": RED[:4],
    "max": [("OP(a)", [(3, 4)]), ("OP(a, 1)[0]", [(3, 4)]), ("OP(a, dim=0, keepdim=True)[0]", [(3, 4)]),
            ("OP(a, b)", [(3, 4), (4,)])],
    "min": [("OP(a)", [(3, 4)]), ("OP(a, 1)[0]", [(3, 4)]), ("OP(a, b)", [(3, 4), (4,)])],
    "amax": [("OP(a)", [(3, 4)]), ("OP(a, 1)", [(3, 4)]), ("OP(a, (0, 1), True)", [(3, 4)])],
    "amin": [("OP(a)", [(3, 4)]), ("OP(a, 1)", [(3, 4)])],
    "norm": [("OP(a)", [(3, 4)]), ("OP(a, 1, 1)", [(3, 4)]), ("OP(a, dim=0, keepdim=True)", [(3, 4)]),
             ("OP(a, 3)", [(3, 4)]), ("OP(a, float('inf'))", [(3, 4)])],
    "linalg.vector_norm": [("OP(a)", [(3, 4)]), ("OP(a, 1, dim=1)", [(3, 4)]), ("OP(a, 3, dim=(0, 1))", [(3, 4)])],
    "linalg.norm": [("OP(a)", [(3,)]), ("OP(a)", [(3, 4)]), ("OP(a, 2)", [(3, 4)]), ("OP(a, dim=1)", [(3, 4)])],
    "logsumexp": [("OP(a, 1)", [(3, 4)]), ("OP(a, (0, 1), True)", [(3, 4)])],
    "cumsum": [("OP(a, 1)", [(3, 4)]), ("OP(a, 0)", [()])], "cumprod": [("OP(a, 1)", [(3, 4)])],
    "var": [("OP(a)", [(3, 4)]), ("OP(a, 1)", [(3, 4)]), ("OP(a, 0, keepdim=True, correction=0)", [(3, 4)])],
    "std": [("OP(a)", [(3, 4)]), ("OP(a, 1)", [(3, 4)]), ("OP(a, 0, unbiased=False)", [(3, 4)])],
    "trace": [("OP(a)", [(3, 3)])],
    "sort": [("OP(a, 1)[0]", [(3, 4)]), ("OP(a, descending=True)[0]", [(5,)])],
    "topk": [("OP(a, 2)[0]", [(3, 4)]), ("OP(a, 2, dim=0)[0]", [(3, 4)])],
    "matmul": [("OP(a, b)", [(3, 4), (4, 2)]), ("OP(a, b)", [(4,), (4,)]), ("OP(a, b)", [(2, 3, 4), (4,)]),
               ("OP(a, b)", [(4,), (2, 4, 3)]), ("OP(a, b)", [(2, 1, 3, 4), (5, 4, 2)])],
    "mm": [("OP(a, b)", [(3, 4), (4, 2)])], "bmm": [("OP(a, b)", [(2, 3, 4), (2, 4, 2)])],
    "mv": [("OP(a, b)", [(3, 4), (4,)])], "dot": [("OP(a, b)", [(4,), (4,)])],
    "outer": [("OP(a, b)", [(3,), (4,)])], "ger": [("OP(a, b)", [(3,), (4,)])],
    "einsum": [("torch.einsum('ij,jk->ik', a, b)", [(3, 4), (4, 2)]), ("torch.einsum('ii->i', a)", [(3, 3)]),
               ("torch.einsum('bij,bj->bi', a, b)", [(2, 3, 4), (2, 4)]), ("torch.einsum('i,j->', a, b)", [(3,), (2,)]),
               ("torch.einsum('...i,i->...', a, b)", [(2, 3), (3,)])],
    "linalg.solve": [("OP(a, b)", [("sq", 3), (3, 2)]), ("OP(a, b)", [("sq", 3), (3,)])],
    "linalg.inv": [("OP(a)", [("sq", 3)])], "inverse": [("OP(a)", [("sq", 3)])],
    "linalg.det": [("OP(a)", [("sq", 3)])], "det": [("OP(a)", [("sq", 3)])],
    "linalg.cholesky": [("OP(a @ a.mT + torch.eye(3, dtype=torch.float64))", [(3, 3)])],
    "reshape": [("OP(a, (4, 3))", [(3, 4)]), ("OP(a, (-1,))", [()])],
    "Tensor.reshape": [("a.reshape(4, 3)", [(3, 4)]), ("a.reshape((2, 6))", [(3, 4)])],
    "view": [("OP(a, 4, 3)", [(3, 4)])], "view_as": [("OP(a, b)", [(3, 4), (12,)])],
    "reshape_as": [("OP(a, b)", [(3, 4), (12,)])],
    "squeeze": [("OP(a)", [(3, 1, 4)]), ("OP(a, 1)", [(3, 1, 4)])], "unsqueeze": [("OP(a, 1)", [(3, 4)]), ("OP(a, 0)", [()])],
    "unflatten": [("OP(a, 1, (2, 2))", [(3, 4)])],
    "transpose": [("OP(a, 0, 1)", [(3, 4)])], "swapaxes": [("OP(a, 0, 1)", [(3, 4)])],
    "swapdims": [("OP(a, 0, 1)", [(3, 4)])], "t": [("OP(a)", [(3, 4)])], "adjoint": [("OP(a)", [(3, 4)])],
    "permute": [("OP(a, (2, 0, 1))", [(2, 3, 4)])], "Tensor.permute": [("a.permute(2, 0, 1)", [(2, 3, 4)])],
    "movedim": [("OP(a, 0, 2)", [(2, 3, 4)])],
    "expand": [("OP(a, 3, 4)", [(4,)]), ("OP(a, 2, 3)", [(1, 3)])], "expand_as": [("OP(a, b)", [(4,), (3, 4)])],
    "broadcast_to": [("OP(a, (3, 4))", [(4,)])],
    "flip": [("OP(a, (0,))", [(3, 4)])], "Tensor.flip": [("a.flip(0, 1)", [(3, 4)])],
    "roll": [("OP(a, 1, 0)", [(3, 4)]), ("OP(a, (1, 2), (0, 1))", [(3, 4)])],
    "tril": [("OP(a)", [(3, 3)]), ("OP(a, 1)", [(3, 4)])], "triu": [("OP(a)", [(3, 3)]), ("OP(a, -1)", [(3, 4)])],
    "diagonal": [("OP(a)", [(3, 4)]), ("OP(a, 1, 1, 2)", [(2, 3, 4)])], "diag": [("OP(a)", [(3,)]), ("OP(a)", [(3, 3)])],
    "diag_embed": [("OP(a)", [(2, 3)])], "narrow": [("OP(a, 1, 1, 2)", [(3, 4)])],
    "cat": [("torch.cat([a, b], 0)", [(2, 3), (1, 3)]), ("torch.cat((a, b), dim=-1)", [(2, 3), (2, 1)])],
    "concat": [("torch.concat([a, b])", [(2, 3), (1, 3)])], "concatenate": [("torch.concatenate([a, b])", [(2,), (3,)])],
    "stack": [("torch.stack([a, b], 1)", [(2, 3), (2, 3)]), ("torch.stack([a, b])", [(), ()])],
    "split": [("OP(a, 2)[1]", [(5, 2)]), ("OP(a, [1, 3], 1)[0]", [(2, 4)])],
    "chunk": [("OP(a, 2)[0]", [(4, 3)]), ("OP(a, 2, 1)[1]", [(3, 4)])], "unbind": [("OP(a, 1)[2]", [(2, 3)])],
    "gather": [("OP(a, 1, I0)", [(3, 4), ("int", (3, 2), 4)])],
    "take_along_dim": [("OP(a, I0, 1)", [(3, 4), ("int", (3, 2), 4)])],
    "index_select": [("OP(a, 0, I0)", [(3, 4), ("int", (5,), 3)])],
    "F.linear": [("OP(a, b)", [(3, 4), (2, 4)]), ("OP(a, b, c)", [(5, 3, 4), (2, 4), (2,)]), ("OP(a, b, c)", [(4,), (2, 4), (2,)])],
    "conv1d": [("OP(a, b, c, padding=1)", [(2, 3, 7), (4, 3, 3), (4,)]), ("OP(a, b, stride=2)", [(3, 7), (4, 3, 3)])],
    "conv2d": [("OP(a, b, c, padding=1, stride=2)", [(2, 2, 5, 5), (3, 2, 3, 3), (3,)]),
               # a constant input or weight: convolution_backward computes only the gradients needed
               ("OP(a, b, c, padding=1)", [("cpos", (2, 2, 5, 5)), (3, 2, 3, 3), (3,)]),
               ("OP(a, b, c)", [(2, 2, 5, 5), ("cpos", (3, 2, 3, 3)), (3,)]),
               ("OP(a, b, padding='same')", [(1, 2, 4, 4), (2, 2, 3, 3)]), ("OP(a, b, groups=2)", [(1, 4, 4, 4), (2, 2, 3, 3)])],
    "conv3d": [("OP(a, b)", [(1, 2, 4, 4, 4), (2, 2, 2, 2, 2)])],
    "F.softmax": [("OP(a, 1)", [(3, 4)]), ("OP(a, dim=0)", [(3, 4)])], "F.log_softmax": [("OP(a, -1)", [(3, 4)])],
    "softmax": [("OP(a, 1)", [(3, 4)])], "log_softmax": [("OP(a, 1)", [(3, 4)])],
    "F.cross_entropy": [("OP(a, I0)", [(4, 5), ("int", (4,), 5)]),
                        ("OP(a, I0, reduction='sum', label_smoothing=0.1)", [(4, 5), ("int", (4,), 5)]),
                        ("OP(a, I0, weight=c)", [(4, 5), ("int", (4,), 5), ("cpos", (5,))]),
                        ("OP(a, I0, reduction='none')", [(2, 5, 3), ("int", (2, 3), 5)]),
                        ("OP(a, b.softmax(1))", [(4, 5), (4, 5)]), ("OP(a, I0)", [(5,), ("int", (), 5)])],
    "F.mse_loss": [("OP(a, b)", [(3, 4), (3, 4)]), ("OP(a, b, reduction='sum')", [(3,), (3,)])],
    "F.layer_norm": [("OP(a, (4,))", [(3, 4)]), ("OP(a, (3, 4), b, c)", [(2, 3, 4), (3, 4), (3, 4)])],
    "F.dropout": [("OP(a, 0.5, False)", [(3, 4)]), ("OP(a, 0.0)", [(3,)])], "dropout": [("OP(a, 0.0, False)", [(3,)])],
    "F.embedding": [("OP(I0, a)", [(5, 3), ("int", (2, 4), 5)])],
    # in-place methods (rules/inplace.py): on a fresh copy, as user code would
    **{n + "_": [(f"a.clone().{n}_(b)", [(3, 4), (4,)])] for n in ("add", "sub", "mul")},
    "div_": [("a.clone().div_(b)", [(3, 4), ("pos", (4,))])], "pow_": [("a.clone().pow_(2)", [(3, 4)])],
    **{n + "_": [(f"a.clone().{n}_()", [(3, 4)])] for n in ("neg", "cos", "sin", "exp", "sigmoid", "tanh", "relu")},
    **{n + "_": [(f"a.abs().add(0.5).{n}_()", [(3, 4)])] for n in ("log", "sqrt")},
    "clamp_": [("a.clone().clamp_(-0.5, 0.5)", [(3, 4)])],
    "copy_": [("torch.zeros(3, 4, dtype=torch.float64).copy_(a) * b", [(3, 4), (4,)])],
    "fill_": [("a.clone().fill_(2.0) * a", [(3,)])],
    "argmax": SKIP, "argmin": SKIP, "argsort": SKIP,
}
SAMPLES["Tensor.where"] = SAMPLES["Tensor.where"]
for _n in ("sum", "mean", "prod", "nansum"):
    SAMPLES.setdefault(_n, RED)

# ops without a native rule: they go through the autograd fallback
FALLBACK_SAMPLES = [
    ("torch.hstack([a, b])", [(2, 3), (2, 2)]), ("F.pad(a, (1, 2))", [(3, 4)]), ("torch.kron(a, b)", [(2, 2), (2, 3)]),
    ("torch.cross(a, b, dim=0)", [(3,), (3,)]), ("torch.lgamma(a + 3)", [("pos", (3,))]),
    ("torch.linalg.slogdet(a)[1]", [("sq", 3)]), ("F.normalize(a, dim=1)", [(3, 4)]),
    ("torch.cdist(a, b)", [(3, 2), (4, 2)]), ("torch.logcumsumexp(a, 0)", [(4,)]), ("F.l1_loss(a, b)", [(3,), (3,)]),
]


def _path(f):
    """(kind, name) of a torch callable: ('fn', 'torch.sin') or ('method', 'sin')."""
    for prefix, mod in (("torch.", torch), ("F.", F), ("torch.linalg.", torch.linalg), ("torch.special.", torch.special)):
        for n, v in vars(mod).items():
            if v is f and not n.startswith("_"):
                return "fn", prefix + n
    for klass in (torch.Tensor, torch._C.TensorBase):
        for n, v in vars(klass).items():
            if v is f and not n.startswith("_"):
                return "method", n
    return None, None


def _key(kind, path):
    if kind == "method":
        return path
    return path.replace("torch.nn.functional.", "F.").replace("torch.linalg.", "linalg.") \
        .replace("torch.special.", "special.").replace("torch.", "")


def _make_input(spec, gen):
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        tag = spec[0]
        if tag == "pos":
            return torch.rand(spec[1], generator=gen, dtype=D) + 0.5, True
        if tag == "unit":
            return torch.rand(spec[1], generator=gen, dtype=D) * 1.6 - 0.8, True
        if tag == "sq":
            return torch.randn(spec[1], spec[1], generator=gen, dtype=D) + 3 * torch.eye(spec[1], dtype=D), True
        if tag == "cpos":  # a positive constant (torch has no gradient for it either)
            return torch.rand(spec[1], generator=gen, dtype=D) + 0.5, False
        if tag == "int":
            return torch.randint(0, spec[2], spec[1], generator=gen), False
    return torch.randn(spec, generator=gen, dtype=D), True


_MODULE_COUNTER = itertools.count()


def _compile(src_lines, consts, tmp_path):
    name = f"_tz_rules_{next(_MODULE_COUNTER)}"
    path = tmp_path / f"{name}.py"
    path.write_text("import torch\nimport torch.nn.functional as F\n" + "\n".join(src_lines) + "\n")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    mod.__dict__.update(consts)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


class _TZ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, f, *xs):
        y, back = tz.pullback(f, *xs)
        ctx.back, ctx.xs = back, xs
        return y.detach().clone() if isinstance(y, torch.Tensor) else torch.as_tensor(y, dtype=D)

    @staticmethod
    def backward(ctx, dy):
        g = ctx.back(dy)
        return (None,) + tuple(torch.zeros_like(x) if gi is None else torch.as_tensor(gi, dtype=x.dtype).reshape(x.shape)
                               for x, gi in zip(ctx.xs, g))


def _cases():
    """(key, call source, specs) for every sample of every rule-bearing torch callable."""
    seen, cases, missing = set(), [], []
    for f, rules in list(TABLE.rules.items()):
        if not any(r.grads for r in rules):
            continue
        kind, path = _path(f)
        if kind is None:
            continue
        key = _key(kind, path)
        alt = "Tensor." + path if kind == "method" else None
        spec = SAMPLES.get(alt) if alt in SAMPLES else SAMPLES.get(key)
        if spec is None:
            missing.append(path)
            continue
        if spec == SKIP:
            continue
        for call, shapes in spec:
            if "OP(" in call:
                if kind == "method":
                    src = re.sub(r"OP\((\w+)(, )?", lambda m: f"{m.group(1)}.{path}(", call, count=1)
                else:
                    src = call.replace("OP(", path + "(", 1)
            else:
                src = call
            if (src, str(shapes)) in seen:
                continue
            seen.add((src, str(shapes)))
            cases.append((path, src, shapes))
    return cases, missing


def _run_case(src, shapes, tmp_path, idx, fast=True):
    gen = torch.Generator().manual_seed(idx)
    names, consts, args = [], {}, []
    n_int = 0
    for i, s in enumerate(shapes):
        t, diff = _make_input(s, gen)
        if diff:
            names.append("abcdefg"[i])
            args.append(t.requires_grad_(True))
        else:
            consts[f"I{n_int}"] = t
            src_name = "abcdefg"[i]
            consts[src_name] = t
            n_int += 1
    mod = _compile([f"def f({', '.join(names)}):", f"    return {src}"], consts, tmp_path)
    return torch.autograd.gradcheck(lambda *xs: _TZ.apply(mod.f, *xs), tuple(args), eps=1e-6, atol=1e-5,
                                    rtol=1e-4, nondet_tol=0.0, fast_mode=fast)


CHUNKS = 6


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_tensor_rule_against_gradcheck(tmp_path, chunk):
    """The one generic test, run in chunks (each under the suite's per-test time limit)."""
    cases, missing = _cases()
    assert not missing, f"torch rules without a sample in SAMPLES: {sorted(set(missing))}"
    assert len(cases) > 300
    failures = []
    for i, (path, src, shapes) in enumerate(cases):
        if i % CHUNKS != chunk:
            continue
        try:
            _run_case(src, shapes, tmp_path, i)
        except Exception as e:  # collect them all
            failures.append(f"{path}: {src} {shapes}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    assert not failures, "\n".join(failures)


def test_fallback_ops_against_gradcheck(tmp_path):
    before = sum(fallback.FALLBACK_CALLS.values())
    failures = []
    for i, (src, shapes) in enumerate(FALLBACK_SAMPLES):
        try:
            _run_case(src, shapes, tmp_path, 1000 + i)
        except Exception as e:
            failures.append(f"{src}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    assert not failures, "\n".join(failures)
    assert sum(fallback.FALLBACK_CALLS.values()) > before


def test_native_rule_count():
    torch_native = {id(f) for f in trules.NATIVE}
    assert len(torch_native) >= 250
    # functions people use that must be native, not the fallback
    for f in (torch.sum, torch.Tensor.sum, torch.matmul, F.linear, F.conv2d, F.cross_entropy, torch.linalg.solve,
              torch.einsum, torch.cat, torch.Tensor.reshape, F.layer_norm, F.softmax, torch.logsumexp):
        assert id(f) in torch_native


def test_forward_builds_no_torch_graph():
    x = torch.randn(3, 4, dtype=D)
    w = torch.randn(4, 2, dtype=D)
    seen = []

    def f(x, w):
        y = torch.tanh(x @ w)
        z = torch.kron(y, y)  # fallback op
        seen.append(y.requires_grad or z.requires_grad or y.grad_fn is not None or z.grad_fn is not None)
        return z.sum()

    g = tz.gradient(f, x, w)
    assert seen == [False]
    assert g[0].grad_fn is None and not g[0].requires_grad


def test_integer_tensors_have_no_gradient():
    x = torch.randn(4, dtype=D)
    i = torch.tensor([0, 2, 2])
    g = tz.gradient(lambda x, i: x[i].sum() + x.gather(0, i).sum(), x, i)
    assert torch.allclose(g[0], torch.tensor([2.0, 0.0, 4.0, 0.0], dtype=D))
    assert g[1] is None


def _linear_1d_weight(x, w):
    return F.linear(x, w).sin().sum()


@pytest.mark.parametrize("shape", [(4, 3), (3,), (2, 4, 3)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_linear_with_a_one_dimensional_weight(shape, dtype):
    """``F.linear(x, w)`` with ``w`` of shape ``(k,)`` is ``x @ w`` (one output per row): its
    pullback crashed on the matrix products of a 2-D weight."""
    torch.manual_seed(16)
    x, w = torch.randn(*shape, dtype=dtype), torch.randn(3, dtype=dtype)
    f = _linear_1d_weight if dtype == torch.float64 else (lambda a, b: F.linear(a, b).abs().sum())
    xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    for g, t in zip(tz.gradient(f, x, w), torch.autograd.grad(f(xr, wr), (xr, wr))):
        torch.testing.assert_close(g, t)
