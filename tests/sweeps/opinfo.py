"""OpInfo differential sweep: torchzygote's gradient against torch autograd over
PyTorch's operator database (issue 10, "Trust: never silently wrong").

For every OpInfo with ``supports_autograd`` (float64 on CPU; complex128 too with
``--complex``), each of its first N sample inputs is wrapped in a generated
Python function of the sample's differentiable tensors (the input and tensor
positional arguments, including tensors inside list arguments; everything else
is a closure constant). The function returns a weighted sum of the op's floating
outputs (fixed seeded weights per output; ``real(sum(w * out))`` for complex
outputs), and is differentiated by ``torchzygote.gradient`` and by
``torch.autograd.grad``. Each sample, and each op by its worst sample, is

    match       every gradient allclose (float64: rtol 1e-7, atol 1e-9 x scale)
    clear       torchzygote raised one of its own errors (torchzygote.errors)
    internal    torchzygote raised anything else
    mismatch    a wrong number (the worst outcome)

Samples whose reference itself fails (torch cannot differentiate them) or which
have no differentiable input or output are skipped; an op with every sample
skipped is reported as skipped, not counted.

    python -m tests.sweeps.opinfo [--ops name,...] [--limit-samples N] [--complex] [--verbose]
"""
from __future__ import annotations

import argparse
import itertools
import linecache
import signal
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch

import torchzygote as tz
from torchzygote.errors import TorchZygoteError

MATCH, CLEAR, INTERNAL, MISMATCH, SKIPPED = "match", "clear error", "internal error", "mismatch", "skipped"
# an op's status is its worst sample's; a wrong number is worse than any error
_RANK = {SKIPPED: 0, MATCH: 1, CLEAR: 2, INTERNAL: 3, MISMATCH: 4}

RTOL = {torch.float64: 1e-7, torch.complex128: 1e-7}
ATOL = {torch.float64: 1e-9, torch.complex128: 1e-9}


def load_op_db():
    """``op_db`` (needs the ``expecttest`` package, a test dependency of torch's internals)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.testing._internal.common_methods_invocations import op_db
    return op_db


def op_id(op) -> str:
    return op.name + ("." + op.variant_test_name if op.variant_test_name else "")


def autograd_ops(names: Optional[List[str]] = None, dtype=torch.float64) -> list:
    """OpInfos with ``supports_autograd`` whose backward supports ``dtype`` on CPU
    (in op_db order; ``names`` selects by ``op_id`` or by plain name)."""
    ops = [op for op in load_op_db() if op.supports_autograd]
    if names is not None:
        want = set(names)
        ops = [op for op in ops if op_id(op) in want or op.name in want]
    return [op for op in ops if dtype in op.supported_backward_dtypes("cpu") and dtype in op.supported_dtypes("cpu")]


def op_samples(op, dtype, limit: Optional[int] = None) -> list:
    """The op's first ``limit`` sample inputs, deterministically (seeded by the op's name)."""
    torch.manual_seed(zlib.crc32(op_id(op).encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = op.sample_inputs("cpu", dtype, requires_grad=False)
        return list(itertools.islice(it, limit) if limit is not None else it)


# ------------------------------------------------------------------ the generated function

def _diff(x) -> bool:
    return isinstance(x, torch.Tensor) and (x.dtype.is_floating_point or x.dtype.is_complex)


def _has_diff(x) -> bool:
    return _diff(x) or type(x) in (list, tuple) and any(_has_diff(e) for e in x)


class _Builder:
    def __init__(self, const=()):
        self.const_idx = set(const)   # differentiable tensors (by discovery order) kept constant
        self.seen = 0
        self.params: List[str] = []
        self.tensors: List[torch.Tensor] = []
        self.globs: Dict[str, Any] = {"torch": torch}

    def const(self, v) -> str:
        name = f"C{len(self.globs)}"
        self.globs[name] = v
        return name

    def arg(self, x, differentiable=True) -> str:
        """Source text for ``x``: a parameter for each differentiable tensor, constants otherwise."""
        if differentiable and _diff(x):
            self.seen += 1
            if self.seen - 1 in self.const_idx:
                return self.const(x)
            name = f"t{len(self.params)}"
            self.params.append(name)
            self.tensors.append(x)
            return name
        if differentiable and type(x) in (list, tuple) and _has_diff(x):
            parts = [self.arg(e) for e in x]
            if type(x) is list:
                return "[" + ", ".join(parts) + "]"
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        return self.const(x)


def _out_paths(y, path="out") -> List[tuple]:
    """(source path, tensor) for each floating tensor in an op's output."""
    if _diff(y):
        return [(path, y)]
    if isinstance(y, (tuple, list)):
        return [p for i, e in enumerate(y) for p in _out_paths(e, f"{path}[{i}]")]
    return []


_counter = itertools.count()
_DEFAULT_PROC = []


def _is_default_proc(proc) -> bool:
    """Whether ``proc`` is SampleInput's default ``lambda x: x``."""
    if not _DEFAULT_PROC:
        from torch.testing._internal.opinfo.core import SampleInput
        _DEFAULT_PROC.append(SampleInput(torch.zeros(1)).output_process_fn_grad.__code__)
    return getattr(proc, "__code__", None) is _DEFAULT_PROC[0]


@dataclass
class Case:
    fn: Any                    # the generated function of the differentiable tensors
    tensors: List[torch.Tensor]
    source: str
    n_diff: int = 0            # differentiable tensors met (parameters and constants)


def build_case(op, sample, seed: int = 0, const=()) -> Optional[Case]:
    """The generated ``f(t0, t1, ...)`` for one sample, or None when it has no
    differentiable input or output; ``const``: indices of differentiable tensors
    (in the order met) to keep as constants."""
    b = _Builder(const)
    pre = ""
    parts = [b.arg(sample.input)] + [b.arg(a) for a in sample.args]
    parts += [f"{k}={b.arg(v, differentiable=False)}" for k, v in sample.kwargs.items()]
    if not b.params:
        return None
    b.globs["OP"] = op.op
    proc = sample.output_process_fn_grad
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = op.op(sample.input, *sample.args, **sample.kwargs)
        probe = raw if _is_default_proc(proc) else proc(raw)
    call = f"OP({', '.join(parts)})"
    if not _is_default_proc(proc):
        b.globs["PROC"] = proc
        if isinstance(raw, tuple) and type(raw) is not tuple:
            # a structseq (torch.return_types.*) handed to a torch-internal Python function is
            # not seen as holding tensors by torchzygote's runtime (``_has_tensor``), which then
            # drops its gradient silently: a runtime bug, reported separately; pass a plain tuple
            elems = ", ".join(f"o[{i}]" for i in range(len(raw)))
            call = f"PROC(({elems},))"
            pre = f"    o = OP({', '.join(parts)})\n"
        else:
            call = f"PROC({call})"
    outs = _out_paths(probe)
    if not outs:
        return None
    gen = torch.Generator().manual_seed(seed)
    terms = []
    for i, (path, y) in enumerate(outs):
        w = torch.randn(y.shape, generator=gen, dtype=torch.float64)
        if y.is_complex():
            w = torch.complex(w, torch.randn(y.shape, generator=gen, dtype=torch.float64)).to(y.dtype)
            b.globs[f"W{i}"] = w
            terms.append(f"torch.real({path} * W{i}).sum()")
        else:
            b.globs[f"W{i}"] = w.to(y.dtype)
            terms.append(f"({path} * W{i}).sum()")
    src = (f"def f({', '.join(b.params)}):\n" + pre +
           f"    out = {call}\n"
           f"    return {' + '.join(terms)}\n")
    filename = f"<tz-opinfo-{next(_counter)}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    exec(compile(src, filename, "exec"), b.globs)
    return Case(b.globs["f"], b.tensors, src, b.seen)


# ------------------------------------------------------------------ classification

@dataclass
class SampleResult:
    index: int
    status: str
    message: str = ""


@dataclass
class OpResult:
    name: str
    dtype: torch.dtype
    samples: List[SampleResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return max((s.status for s in self.samples), key=_RANK.get, default=SKIPPED)


def _fresh(ts, requires_grad=False):
    return [t.detach().clone().requires_grad_(requires_grad) for t in ts]


def reference_grads(case: Case, seed: int):
    """torch autograd's gradient of the case's function (zeros where unused)."""
    xs = _fresh(case.tensors, True)
    torch.manual_seed(seed)
    with torch.enable_grad():
        y = case.fn(*xs)
        if not (isinstance(y, torch.Tensor) and y.requires_grad):
            return [torch.zeros_like(x) for x in xs]
        gs = torch.autograd.grad(y, xs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(xs, gs)]


def _short(e: BaseException, n=160) -> str:
    msg = f"{type(e).__name__}: {e}".replace("\n", " | ")
    return msg if len(msg) <= n else msg[:n - 3] + "..."


def _dense(t):
    return t.to_dense() if isinstance(t, torch.Tensor) and t.layout != torch.strided else t


def compare(got, want, dtype) -> Optional[str]:
    """None when ``got`` matches ``want`` (one gradient per tensor), else what differs."""
    if not isinstance(got, tuple) or len(got) != len(want):
        return f"gradient {type(got).__name__} of length {len(got) if hasattr(got, '__len__') else '?'}, " \
               f"want {len(want)} entries"
    rtol, atol = RTOL.get(dtype, 1e-5), ATOL.get(dtype, 1e-7)
    for i, (g, w) in enumerate(zip(got, want)):
        w = _dense(w)
        if g is None:
            g = torch.zeros_like(w)
        if not isinstance(g, torch.Tensor):
            return f"t{i}: gradient is a {type(g).__name__}, want a tensor"
        g = _dense(g)
        if g.shape != w.shape:
            return f"t{i}: gradient shape {tuple(g.shape)}, want {tuple(w.shape)}"
        if g.dtype != w.dtype and not (g.is_complex() == w.is_complex()):
            return f"t{i}: gradient dtype {g.dtype}, want {w.dtype}"
        g = g.to(w.dtype)
        scale = max(1.0, float(w.abs().max())) if w.numel() else 1.0
        if not torch.allclose(g, w, rtol=rtol, atol=atol * scale, equal_nan=True):
            err = (g - w).abs().nan_to_num(float("inf"))
            k = int(err.reshape(-1).argmax()) if err.numel() else 0
            return (f"t{i} {tuple(w.shape)}: max abs diff {float(err.max()):.3g} "
                    f"(got {g.reshape(-1)[k].item():.6g}, want {w.reshape(-1)[k].item():.6g})")
    return None


class _Timeout(Exception):
    pass


def check_sample(op, sample, dtype, index: int = 0) -> SampleResult:
    """Differentiate one sample both ways and classify the result."""
    seed = zlib.crc32(f"{op_id(op)}/{index}".encode())
    try:
        case = build_case(op, sample, seed)
    except Exception as e:  # the op itself fails on this sample: not ours to judge
        return SampleResult(index, SKIPPED, "probe failed: " + _short(e))
    if case is None:
        return SampleResult(index, SKIPPED, "no differentiable input or output")
    try:
        want = reference_grads(case, seed)
    except Exception as e:
        if "not differentiable with respect to argument" not in str(e):
            return SampleResult(index, SKIPPED, "torch autograd failed: " + _short(e))
        # torch refuses some argument (a target, running statistics): keep those constant
        refused = []
        for k in range(case.n_diff):
            try:
                reference_grads(build_case(op, sample, seed, [j for j in range(case.n_diff) if j != k]), seed)
            except Exception:
                refused.append(k)
        try:
            case = build_case(op, sample, seed, refused)
            if case is None:
                return SampleResult(index, SKIPPED, "no input torch can differentiate")
            want = reference_grads(case, seed)
        except Exception as e2:
            return SampleResult(index, SKIPPED, "torch autograd failed: " + _short(e2))
    try:
        torch.manual_seed(seed)
        got = tz.gradient(case.fn, *_fresh(case.tensors))
    except _Timeout:
        raise
    except TorchZygoteError as e:
        return SampleResult(index, CLEAR, _short(e))
    except Exception as e:
        return SampleResult(index, INTERNAL, _short(e))
    try:
        diff = compare(got, want, dtype)
    except Exception as e:
        return SampleResult(index, INTERNAL, "comparing the gradients failed: " + _short(e))
    if diff is not None:
        return SampleResult(index, MISMATCH, diff)
    return SampleResult(index, MATCH)


def check_op(op, dtype=torch.float64, limit: Optional[int] = None, timeout_s: int = 120) -> OpResult:
    """Every sample of one op (up to ``limit``), with a time limit for the whole op."""
    res = OpResult(op_id(op), dtype)
    t0 = time.perf_counter()
    use_alarm = hasattr(signal, "SIGALRM") and timeout_s and \
        __import__("threading").current_thread() is __import__("threading").main_thread()

    def on_alarm(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    if use_alarm:
        signal.alarm(timeout_s)
    try:
        try:
            samples = op_samples(op, dtype, limit)
        except _Timeout:
            raise
        except Exception as e:
            res.samples.append(SampleResult(-1, SKIPPED, "sample_inputs failed: " + _short(e)))
            samples = []
        for i, s in enumerate(samples):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res.samples.append(check_sample(op, s, dtype, i))
    except _Timeout:
        res.samples.append(SampleResult(len(res.samples), INTERNAL, f"timed out after {timeout_s} s"))
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    res.seconds = time.perf_counter() - t0
    return res


def summarize(results: List[OpResult]) -> Dict[str, int]:
    counts = {k: 0 for k in (MATCH, MISMATCH, CLEAR, INTERNAL, SKIPPED)}
    for r in results:
        counts[r.status] += 1
    return counts


def report(results: List[OpResult], label: str, out=sys.stdout, verbose=False) -> Dict[str, int]:
    c = summarize(results)
    total = len(results) - c[SKIPPED]
    pct = 100.0 * c[MATCH] / total if total else 0.0
    print(f"[{label}] ops total {total} (+{c[SKIPPED]} skipped: no sample torch can differentiate), "
          f"match {c[MATCH]}, mismatch {c[MISMATCH]}, clear error {c[CLEAR]}, "
          f"internal error {c[INTERNAL]}, {pct:.1f}% match", file=out)
    for r in results:
        bad = [s for s in r.samples if s.status in (MISMATCH, INTERNAL)]
        if verbose:
            bad = [s for s in r.samples if s.status != MATCH]
        for s in bad:
            print(f"  {s.status:14s} {r.name} [{label}] sample {s.index}: {s.message}", file=out)
    return c


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.sweeps.opinfo", description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", help="comma-separated op names (OpInfo name or name.variant)")
    p.add_argument("--limit-samples", type=int, default=None, help="first N samples per op (default: all)")
    p.add_argument("--complex", action="store_true", help="also run complex128 where supported")
    p.add_argument("--verbose", action="store_true", help="per-op progress and every non-match")
    p.add_argument("--timeout", type=int, default=120, help="seconds per op (default 120)")
    a = p.parse_args(argv)
    names = a.ops.split(",") if a.ops else None
    dtypes = [torch.float64] + ([torch.complex128] if a.complex else [])
    all_counts = {}
    t0 = time.perf_counter()
    for dtype in dtypes:
        label = str(dtype).replace("torch.", "")
        results = []
        for op in autograd_ops(names, dtype):
            r = check_op(op, dtype, a.limit_samples, a.timeout)
            results.append(r)
            if a.verbose:
                print(f"{r.status:14s} {r.name} [{label}] {len(r.samples)} samples {r.seconds:.2f} s", flush=True)
        all_counts[label] = report(results, label, verbose=a.verbose)
    print(f"samples per op: {a.limit_samples or 'all'}; {time.perf_counter() - t0:.0f} s")
    return 0 if all(c[MISMATCH] == 0 and c[INTERNAL] == 0 for c in all_counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
