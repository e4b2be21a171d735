"""First-call (cold) times in a fresh process:
``python -m benchmarks.coldprobe THREADS SPEC [SPEC ...]``, SPEC ``lines:N:R`` or ``deriv3:R``.

``hessian:METHOD:R``: ``tz.hessian(f, x, method=METHOD)`` (``forward``: forward over reverse,
``reverse``: reverse over reverse) of R fresh ``f(x) = (sin(x) * x * c).sum() + (x @ x) ** 2`` (x of
size 4, float64; new source each), the first and second call of each, checked against
``torch.autograd.functional.hessian`` to 1e-10.
``lines:N:R``: R fresh generated straight-line functions of N source lines
(``benchmarks.programs.straight_line_source``, registered with ``linecache``, a new
name and new constants each time, so nothing is cached), the time of the first and of
the second ``tz.gradient`` call of each.
``deriv3:R``: ``tz.derivative`` nested three times on R fresh ``lambda x: x * math.sin(x)``
(new source each), the first and second call of each; the first of them is the first
nested derivative of the process.

Before the specs, a throwaway 10-line function's gradient pays the process's one-time
costs (lazy imports), reported as ``warmup``. Prints one JSON line when each timed call
starts (``event: start``, wall-clock ``time.time()``, so a parent that kills a call can
bound it from below) and one per spec with the figures.
"""
import json
import linecache
import math
import sys
import time
import traceback


def _register(src: str, name: str, ns: dict):
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    exec(compile(src, name, "exec"), ns)  # noqa: S102 - our own generated source


def fresh_straight(lines: int, tag: str):
    from benchmarks.programs import straight_line_source
    ns = {"math": math}
    _register(straight_line_source(lines, tag), f"<tz-bench-straight-{tag}>", ns)
    return ns[f"straight_{tag}"]


def fresh_xsin(tag: str, c: float):
    ns = {"math": math}
    _register(f"f_{tag} = lambda x: x * math.sin(x) * {c!r}\n", f"<tz-bench-xsin-{tag}>", ns)
    return ns[f"f_{tag}"]


def fresh_hess(tag: str, c: float):
    import torch
    ns = {"torch": torch}
    _register(f"def h_{tag}(x):\n    return (torch.sin(x) * x * {c!r}).sum() + (x @ x) ** 2\n",
              f"<tz-bench-hess-{tag}>", ns)
    return ns[f"h_{tag}"]


def _transform_clock():
    """Wraps ``pipeline.transform`` to add up the time spent in transforms (the compile time)."""
    from torchzygote.ad import cache, pipeline
    spent, depth = [0.0], [0]
    inner = pipeline.transform

    def timed(*a, **k):   # (the outermost transforms' time: a transform asks for its callees')
        depth[0] += 1
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                spent[0] += time.perf_counter() - t0
    cache.pipeline.transform = timed   # (the cache calls it through the module)
    return spent


def run_hessian(tz, method: str, repeats: int, spec: str) -> dict:
    import torch
    firsts, seconds, compiles, check = [], [], [], None
    spent = _transform_clock()
    x = torch.tensor([0.3, -0.7, 1.1, 0.2], dtype=torch.float64)
    for r in range(repeats):
        f = fresh_hess(f"{method}_r{r}_{time.time_ns()}", 1.0 + r * 1e-3)
        _emit({"spec": spec, "event": "start", "repeat": r, "wall": time.time()})
        spent[0] = 0.0
        t0 = time.perf_counter()
        H = tz.hessian(f, x, method=method)
        t1 = time.perf_counter()
        compiles.append(spent[0])
        tz.hessian(f, x, method=method)
        t2 = time.perf_counter()
        firsts.append(t1 - t0)
        seconds.append(t2 - t1)
        if r == 0:
            ref = torch.autograd.functional.hessian(f, x)
            err = float((H - ref).abs().max())
            check = f"max |H - torch| {err:.1e} ({'ok' if err <= 1e-10 else 'MISMATCH'})"
    return {"spec": spec, "firsts_s": firsts, "seconds_s": seconds, "compiles_s": compiles, "check": check}


def _emit(d):
    print(json.dumps(d), flush=True)


def run_lines(tz, n: int, repeats: int, spec: str) -> dict:
    firsts, seconds, check = [], [], None
    for r in range(repeats):
        f = fresh_straight(n, f"n{n}_r{r}_{time.time_ns()}")
        _emit({"spec": spec, "event": "start", "repeat": r, "wall": time.time()})
        t0 = time.perf_counter()
        g1 = tz.gradient(f, 0.7, 0.3)
        t1 = time.perf_counter()
        tz.gradient(f, 0.7, 0.3)
        t2 = time.perf_counter()
        firsts.append(t1 - t0)
        seconds.append(t2 - t1)
        if r == 0:
            h = 1e-6
            fd = (f(0.7 + h, 0.3) - f(0.7 - h, 0.3)) / (2 * h)
            ok = abs(g1[0] - fd) <= 1e-5 * max(1.0, abs(fd))
            check = f"d/dx {g1[0]:.6g} vs central difference {fd:.6g} ({'ok' if ok else 'MISMATCH'})"
    return {"spec": spec, "lines": n, "firsts_s": firsts, "seconds_s": seconds, "check": check}


def run_deriv3(tz, repeats: int, spec: str) -> dict:
    firsts, seconds, check = [], [], None
    for r in range(repeats):
        c = 1.0 + r * 1e-3
        f = fresh_xsin(f"r{r}_{time.time_ns()}", c)
        d3 = tz.derivative(tz.derivative(tz.derivative(f)))
        _emit({"spec": spec, "event": "start", "repeat": r, "wall": time.time()})
        t0 = time.perf_counter()
        v = d3(0.7)
        t1 = time.perf_counter()
        d3(0.7)
        t2 = time.perf_counter()
        firsts.append(t1 - t0)
        seconds.append(t2 - t1)
        if r == 0:
            exact = c * (-3 * math.sin(0.7) - 0.7 * math.cos(0.7))   # (x sin x)''' = -3 sin x - x cos x
            ok = abs(v - exact) <= 1e-9 * abs(exact)
            check = f"f'''(0.7) {v:.10g} vs exact {exact:.10g} ({'ok' if ok else 'MISMATCH'})"
    return {"spec": spec, "firsts_s": firsts, "seconds_s": seconds, "check": check}


def main(argv):
    threads = int(argv[0])
    import torch
    torch.set_num_threads(threads)
    import torchzygote as tz
    t0 = time.perf_counter()
    tz.gradient(fresh_straight(10, "warmup"), 0.7, 0.3)
    _emit({"warmup_s": time.perf_counter() - t0})
    for spec in argv[1:]:
        kind, *nums = spec.split(":")
        try:
            if kind == "lines":
                out = run_lines(tz, int(nums[0]), int(nums[1]), spec)
            elif kind == "deriv3":
                out = run_deriv3(tz, int(nums[0]), spec)
            elif kind == "hessian":
                out = run_hessian(tz, nums[0], int(nums[1]), spec)
            else:
                raise ValueError(f"unknown spec {spec!r}")
        except Exception as e:  # noqa: BLE001
            out = {"spec": spec, "error": f"{type(e).__name__}: {e}"[:300],
                   "traceback": traceback.format_exc()[-4000:]}
        _emit(out)


if __name__ == "__main__":
    main(sys.argv[1:])
