"""The benchmark cases: each builds its contestants and goals and returns a ``Result``."""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

import torchzygote as tz

from . import programs as P
from .harness import Config, Contestant, Goal, Result, Row, short_error, timed_case

try:  # optional competitor
    import tangent  # type: ignore
    TANGENT_ERROR = None
except Exception as _e:  # noqa: BLE001
    tangent = None
    TANGENT_ERROR = "not installed" if isinstance(_e, ImportError) else short_error(_e)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # the example cases import examples.cartpole / examples.pkpd
    sys.path.insert(0, REPO)


def _installed(dist: str) -> Optional[str]:
    """The version of an installed distribution (without importing it), else None."""
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001
        return None


_JAX = None


def _jax():
    """jax (float64 enabled, one CPU thread like torch's) or raises ImportError; imported on
    first use only: importing it costs about a second."""
    global _JAX
    if _JAX is None:
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        jax.config.update("jax_enable_x64", True)
        _JAX = jax
    return _JAX


def _hips_autograd():
    import autograd  # HIPS autograd (pip install autograd); raises ImportError when absent
    import autograd.numpy as anp
    return autograd, anp

TZ = "torchzygote"
EAGER = "torch eager"
JAX_GRAD = "jax.grad"
JAX_JIT = "jax.jit(jax.grad)"
HIPS = "autograd (HIPS)"
FUNC = "torch.func.grad"
COMPILE = "torch.compile"
TANGENT = "tangent"
PRIMAL = "primal"


# ------------------------------------------------------------------ gradient checks

def _flat(v) -> List[torch.Tensor]:
    if v is None:
        return []
    if isinstance(v, (tuple, list)):
        out = []
        for x in v:
            out += _flat(x)
        return out
    if not isinstance(v, (torch.Tensor, int, float)) and hasattr(v, "__array__"):  # jax / numpy arrays
        v = torch.from_numpy(np.array(v, dtype=np.float64))
    if isinstance(v, (int, float)):  # torch.as_tensor would make a Python float float32
        v = torch.tensor(float(v), dtype=torch.float64)
    return [torch.as_tensor(v).detach().to("cpu", torch.float64).reshape(-1)]


def grad_check(ref: str, tol: float, proj: Optional[Dict[str, Callable]] = None):
    """Compare every contestant's gradient with ``ref``'s (after ``proj[name]``, which
    picks the entries comparable with the reference)."""
    proj = proj or {}

    def check(rows: Dict[str, Row]) -> str:
        if ref not in rows:
            return f"no reference ({ref} failed)"
        r = torch.cat(_flat(proj.get(ref, lambda v: v)(rows[ref].value)))
        scale = float(r.abs().max()) or 1.0
        parts = []
        for name, row in rows.items():
            if name == ref or row.role == "primal":
                continue
            try:
                g = torch.cat(_flat(proj.get(name, lambda v: v)(row.value)))
                err = float((g - r).abs().max()) / scale if g.shape == r.shape else float("inf")
            except Exception as e:  # noqa: BLE001
                parts.append(f"{name}: cannot compare ({short_error(e)})")
                continue
            parts.append(f"{name} {'ok' if err <= tol else 'MISMATCH'} ({err:.1e})")
        return f"gradients vs {ref} (max abs err / max |grad|, tol {tol:g}): " + "; ".join(parts)
    return check


def _dtype(cfg: Config, cpu=torch.float64):
    return torch.float32 if cfg.device.startswith("cuda") else cpu


def _tangent(cfg: Config, make: Callable, name=TANGENT, note="") -> List[Contestant]:
    if tangent is None or cfg.quick:  # --quick: tangent's transforms take up to a second each
        return []
    return [Contestant(name, make, note=note, quiet=True)]


SLOW_COMPILE = "inductor takes minutes on this unrolled loop (PK: 3.5 min at only 20 RK4 steps, 2 cores); " \
               "add --compile-slow"


def _compile(cfg: Config, fn: Callable, leaves: List[torch.Tensor], args_after, slow=False) -> List[Contestant]:
    """torch.compile of the forward; the backward is AOTAutograd's (``torch.autograd.grad``)."""
    if not cfg.compile or (slow and not cfg.compile_slow):
        return []

    def make():
        cf = torch.compile(fn)
        return lambda: torch.autograd.grad(cf(*leaves, *args_after), leaves)
    return [Contestant(COMPILE, make, note="setup = compile time", quiet=True)]


def _scalar_extras(cfg: Config, f_jax: Callable, f_hips: Callable, args, static=(),
                   hips_note="floats, autograd.numpy ops") -> List[Contestant]:
    """JAX (eager and jit, float64) and HIPS autograd on a scalar program, where installed.
    ``f_jax(np_module)`` / ``f_hips(np_module)`` give the program; ``static``: jit's static argnums."""
    cs = []
    if _installed("autograd"):
        def hips():
            autograd, anp = _hips_autograd()
            g = autograd.grad(f_hips(anp))
            return lambda: g(*args)
        cs.append(Contestant(HIPS, hips, note=hips_note))
    if _installed("jax") and not cfg.quick:  # --quick: importing jax and compiling take seconds
        def eager():
            jax = _jax()
            g = jax.grad(f_jax(jax.numpy))
            return lambda: g(*args)

        def jit():
            jax = _jax()
            g = jax.jit(jax.grad(f_jax(jax.numpy)), static_argnums=static)
            return lambda: g(*args).block_until_ready()
        cs += [Contestant(JAX_GRAD, eager, note="float64, not compiled"),
               Contestant(JAX_JIT, jit, note="float64, warm; setup = trace + XLA compile + first call")]
    return cs


def _leaves(*ts):
    return [t.detach().clone().requires_grad_(True) for t in ts]


# ------------------------------------------------------------------ scalar chain


def scalar_chain(cfg: Config) -> Result:
    x = 0.5
    dt = torch.float64
    xt = torch.tensor(x, dtype=dt, requires_grad=True)
    x0 = torch.tensor(x, dtype=dt)

    def tangent_float():
        return tangent.grad(P.chain_numpy)

    cs = [
        Contestant(PRIMAL, lambda: (lambda: P.chain_float(x)), role="primal", note="plain Python floats"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.chain_float, x)), role="tz", note="Python floats"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.chain_tensor(xt), xt)),
                   note="0-d float64 tensors"),
        Contestant(FUNC, lambda: (lambda g=torch.func.grad(P.chain_tensor): g(x0)), note="0-d float64 tensors"),
    ]
    cs += _compile(cfg, P.chain_tensor, [xt], ())
    if tangent is not None:
        cs += [Contestant("tangent (floats, numpy ops)", lambda: (lambda g=tangent_float(): g(x)), quiet=True),
               Contestant("tangent (0-d tensors)",
                          lambda: (lambda g=tangent.grad(P.chain_tensor): g(x0)), quiet=True)]
    cs += _scalar_extras(cfg, P.make_chain, P.make_chain, (x,))
    goals = [Goal(TZ, PRIMAL, "<", 4.0, "tz / primal < 4"),
             Goal(EAGER, TZ, ">=", 20.0, "eager / tz >= 20 (tz 20x faster)")]
    return timed_case(cfg, "scalar_chain", "scalar chain: 100 x  x = x + 0.01*sin(log(x*x + 1))  (600 ops)",
                      cs, goals, grad_check(EAGER, 1e-7))


FUNC_JVP = "torch.func.jvp"


def _tangent_check(ref: str, tol: float, pick: Dict[str, Callable]):
    """Compare every contestant's tangent (``pick[name](value)``) with ``ref``'s."""
    def check(rows: Dict[str, Row]) -> str:
        if ref not in rows:
            return f"no reference ({ref} failed)"
        r = torch.as_tensor(pick[ref](rows[ref].value), dtype=torch.float64).reshape(-1)
        parts = []
        for name, row in rows.items():
            if name == ref or row.role == "primal":
                continue
            g = torch.as_tensor(pick[name](row.value), dtype=torch.float64).reshape(-1)
            err = float((g - r).abs().max()) / (float(r.abs().max()) or 1.0)
            parts.append(f"{name} {'ok' if err <= tol else 'MISMATCH'} ({err:.1e})")
        return f"tangents vs {ref} (max abs err / max |tangent|, tol {tol:g}): " + "; ".join(parts)
    return check


def forward_chain(cfg: Config) -> Result:
    """Forward mode on the scalar chain: one jvp, against the primal and torch's forward AD."""
    x = 0.5
    x0, t0 = torch.tensor(x, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: P.chain_float(x)), role="primal", note="plain Python floats"),
        Contestant(TZ, lambda: (lambda: tz.jvp(P.chain_float, (x,), (1.0,))), role="tz", note="Python floats"),
        Contestant(FUNC_JVP, lambda: (lambda: torch.func.jvp(P.chain_tensor, (x0,), (t0,))),
                   note="0-d float64 tensors"),
    ]
    pick = {TZ: lambda v: v[1], FUNC_JVP: lambda v: v[1]}
    if _installed("jax") and not cfg.quick:
        def jit():
            jax = _jax()
            f = P.make_chain(jax.numpy)
            g = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,)))
            return lambda: g(x, 1.0)[1].block_until_ready()
        cs.append(Contestant("jax.jit(jax.jvp)", jit, note="float64, warm; setup = trace + XLA compile + first call"))
        pick["jax.jit(jax.jvp)"] = float
    goals = [Goal(TZ, PRIMAL, "<", 4.0, "tz jvp / primal < 4"),
             Goal(FUNC_JVP, TZ, ">=", 20.0, "torch.func.jvp / tz >= 20")]
    return timed_case(cfg, "forward_chain", "forward mode: jvp of the scalar chain (100 x  x = x + 0.01*sin(log(x*x + 1)))",
                      cs, goals, _tangent_check(FUNC_JVP, 1e-9, pick))


def forward_mlp(cfg: Config) -> Result:
    """Forward mode on the MLP loss: the derivative along a direction of the first layer's weights."""
    batch, width, (W1, *rest), X, Y = _mlp_data(cfg)
    V = torch.randn(width, width, generator=torch.Generator().manual_seed(2)).to(cfg.device, torch.float32)

    def loss(W):
        return P.mlp_loss(W, *rest, X, Y)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(P.mlp_loss, W1, *rest, X, Y)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: tz.jvp(loss, (W1,), (V,))), role="tz"),
        Contestant(FUNC_JVP, lambda: (lambda: torch.func.jvp(loss, (W1,), (V,)))),
    ]
    pick = {TZ: lambda v: v[1], FUNC_JVP: lambda v: v[1]}
    goals = [Goal(TZ, FUNC_JVP, "<", 1.1, "tz jvp / torch.func.jvp < 1.1")]
    return timed_case(cfg, "forward_mlp", f"forward mode: jvp of the MLP loss along W1 (batch {batch}, width {width}, "
                      f"float32)", cs, goals, _tangent_check(FUNC_JVP, 1e-4, pick))


# ------------------------------------------------------------------ pow loop


def pow_loop(cfg: Config) -> Result:
    x, n = 1.1, 30
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor(x, dtype=torch.float64)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: P.pow_loop(x, n)), role="primal", note="plain Python floats"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.pow_loop, x, n)), role="tz", note="Python floats"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.pow_loop(xt, n), xt)), note="0-d float64 tensor"),
        Contestant(FUNC, lambda: (lambda g=torch.func.grad(P.pow_loop): g(x0, n)), note="0-d float64 tensor"),
    ]
    cs += _compile(cfg, P.pow_loop, [xt], (n,))
    cs += _tangent(cfg, lambda: (lambda g=tangent.grad(P.pow_loop_float, wrt=(0,)): g(x, n)),
                   note="floats (r = 1.0)")
    cs += _scalar_extras(cfg, lambda m: P.pow_loop_float, lambda m: P.pow_loop_float, (x, n), static=(1,),
                         hips_note="floats (r = 1.0)")
    proj = {TZ: lambda v: v[0]}
    return timed_case(cfg, "pow_loop", "the seeds' pow loop: r = 1; while n > 0: n -= 1; r *= x   (n = 30)",
                      cs, [], grad_check(EAGER, 1e-7, proj),
                      notes=["no goal set: reported for comparison"])


# ------------------------------------------------------------------ CartPole


def cartpole(cfg: Config) -> Result:
    steps = 20 if cfg.quick else 200
    dev, dt = cfg.device, torch.float32
    g = torch.Generator().manual_seed(0)
    W1 = (torch.randn(32, 4, generator=g) * 0.5).to(dev, dt)
    b1 = (torch.randn(32, generator=g) * 0.1).to(dev, dt)
    W2 = (torch.randn(1, 32, generator=g) * 0.2).to(dev, dt)
    b2 = torch.zeros(1).to(dev, dt)
    s0 = torch.tensor([0.0, 0.0, 0.05, 0.0]).to(dev, dt)
    params = (W1, b1, W2, b2)
    leaves = _leaves(*params)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(P.cartpole_loss, *params, s0, steps)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.cartpole_loss, *params, s0, steps)), role="tz"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.cartpole_loss(*leaves, s0, steps), leaves))),
        Contestant(FUNC, lambda: (lambda gf=torch.func.grad(P.cartpole_loss, argnums=(0, 1, 2, 3)):
                                  gf(*params, s0, steps))),
    ]
    cs += _compile(cfg, P.cartpole_loss, leaves, (s0, steps), slow=True)
    cs += _tangent(cfg, lambda: (lambda gf=tangent.grad(P.cartpole_loss, wrt=(0, 1, 2, 3)): gf(*params, s0, steps)))
    proj = {TZ: lambda v: v[:4]}
    notes = [f"torch.compile skipped: {SLOW_COMPILE}"] if cfg.compile and not cfg.compile_slow else []
    return timed_case(cfg, "cartpole", f"CartPole rollout: {steps} Euler steps, MLP 4->32->1 tanh, float32, "
                      f"loss = sum theta^2", cs,
                      [Goal(TZ, EAGER, "<=", 0.7, "tz / eager <= 0.7")], grad_check(EAGER, 1e-3, proj), notes=notes)


def _no_grad(f, *args):
    with torch.no_grad():
        return f(*args)


# ------------------------------------------------------------------ PK ODE


def pk_observations(steps, ka=1.2, ke=0.25, V=10.0):
    """Synthetic data: the true model's concentrations (floats) with a fixed wiggle."""
    A, C, h = P.PK_DOSE, 0.0, P.PK_DT
    obs = []
    for i in range(steps):
        def rhs(A, C):
            return -ka * A, ka * A / V - ke * C
        k1 = rhs(A, C)
        k2 = rhs(A + 0.5 * h * k1[0], C + 0.5 * h * k1[1])
        k3 = rhs(A + 0.5 * h * k2[0], C + 0.5 * h * k2[1])
        k4 = rhs(A + h * k3[0], C + h * k3[1])
        A = A + h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        C = C + h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        obs.append(C * (1.0 + 0.05 * math.sin(3.0 * i)))
    return tuple(obs)


def pk_ode(cfg: Config, vector: bool) -> Result:
    steps = 20 if cfg.quick else 100
    dev, dt = cfg.device, _dtype(cfg)
    obs = pk_observations(steps)
    theta = [1.0, 0.3, 12.0]  # ka, ke, V: the starting guess
    if vector:
        p = torch.tensor(theta, dtype=dt, device=dev)
        params, f, rest = (p,), P.pk_loss_vec, (obs, steps)
        shape = "(3,) tensor"
    else:
        params = tuple(torch.tensor(v, dtype=dt, device=dev) for v in theta)
        f, rest = P.pk_loss, (obs, steps)
        shape = "three 0-d tensors"
    leaves = _leaves(*params)
    k = len(params)
    argnums = tuple(range(k))
    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(f, *params, *rest)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: tz.gradient(f, *params, *rest)), role="tz"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(f(*leaves, *rest), leaves))),
        Contestant(FUNC, lambda: (lambda gf=torch.func.grad(f, argnums=argnums): gf(*params, *rest))),
    ]
    cs += _compile(cfg, f, leaves, rest, slow=True)
    cs += _tangent(cfg, lambda: (lambda gf=tangent.grad(f, wrt=argnums): gf(*params, *rest)))
    proj = {TZ: lambda v: v[:k]}
    name = "pk_ode_vec" if vector else "pk_ode"
    return timed_case(cfg, name, f"PK ODE: RK4, {steps} steps, one compartment + absorption, params as {shape}, "
                      f"{str(dt).replace('torch.', '')}", cs, [],
                      grad_check(EAGER, 1e-3 if dt == torch.float32 else 1e-7, proj),
                      notes=["no goal set: reported for comparison",
                             "observations are a tuple of Python floats (data, no gradient)"]
                      + ([f"torch.compile skipped: {SLOW_COMPILE}"] if cfg.compile and not cfg.compile_slow else []))


# ------------------------------------------------------------------ MLP


def _mlp_data(cfg: Config):
    """The MLP cases' batch, width, parameters (W1, b1, W2, b2, W3, b3) and data X, Y (float32)."""
    batch, width = (32, 128) if cfg.quick else (256, 1024)
    g = torch.Generator().manual_seed(1)

    def w(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(cfg.device, torch.float32)
    W1, b1 = w(width, width, scale=width ** -0.5), w(width, scale=0.1)
    W2, b2 = w(width, width, scale=width ** -0.5), w(width, scale=0.1)
    W3, b3 = w(width, 10, scale=width ** -0.5), w(10, scale=0.1)
    return batch, width, (W1, b1, W2, b2, W3, b3), w(batch, width), w(batch, 10)


def mlp(cfg: Config) -> Result:
    batch, width, params, X, Y = _mlp_data(cfg)
    W1, b1, W2, b2, W3, b3 = params
    leaves = _leaves(*params)

    def tz_closure():
        loss = lambda W1, b1, W2, b2, W3, b3: P.mlp_loss(W1, b1, W2, b2, W3, b3, X, Y)  # noqa: E731
        return lambda: tz.gradient(loss, *params)

    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(P.mlp_loss, *params, X, Y)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.mlp_loss, *params, X=X, Y=Y)), role="tz",
                   note="X, Y as keywords: constants, like eager's data"),
        Contestant("tz (X, Y as arguments)", lambda: (lambda: tz.gradient(P.mlp_loss, *params, X, Y)[:6]),
                   note="their gradients are computed too"),
        Contestant("tz (closure over X, Y)", tz_closure, note="closure cells may be parameters: graded"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.mlp_loss(*leaves, X, Y), leaves))),
        Contestant(FUNC, lambda: (lambda gf=torch.func.grad(P.mlp_loss, argnums=tuple(range(6))):
                                  gf(*params, X, Y))),
    ]
    cs += _compile(cfg, P.mlp_loss, leaves, (X, Y))
    cs += _tangent(cfg, lambda: (lambda gf=tangent.grad(P.mlp_loss, wrt=tuple(range(6))): gf(*params, X, Y)))
    proj = {TZ: lambda v: v[:6]}
    return timed_case(cfg, "mlp", f"MLP: batch {batch}, {width}->{width}->{width}->10 tanh, float32, "
                      f"loss = mean squared error", cs,
                      [Goal(TZ, EAGER, "<=", 1.05, "tz / eager <= 1.05")], grad_check(EAGER, 1e-3, proj))


# ------------------------------------------------------------------ fixed overhead


def warm_overhead(cfg: Config) -> Result:
    xt = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor(3.0, dtype=torch.float64)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: P.square(3.0)), role="primal"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.square, 3.0)), role="tz", note="f = lambda x: x * x, float"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.square_tensor(xt), xt)), note="0-d float64"),
        Contestant(FUNC, lambda: (lambda g=torch.func.grad(P.square_tensor): g(x0)), note="0-d float64"),
    ]
    return timed_case(cfg, "warm_overhead", "warm fixed overhead: tz.gradient(lambda x: x * x, 3.0)", cs,
                      [Goal(TZ, None, "<", 5e-6, "tz call < 5 us")], grad_check(EAGER, 1e-12))


# ------------------------------------------------------------------ cold start


def _fresh_function(k: int, tmpdir: str):
    src = P.COLD_TEMPLATE.format(k=k, c0=0.1 + k * 1e-3, c1=1.5, c2=0.25, c3=1.0 + k * 1e-4)
    path = os.path.join(tmpdir, f"tz_bench_cold_{os.getpid()}_{k}.py")
    with open(path, "w") as fh:
        fh.write(src)
    ns = {"math": math, "__name__": f"tz_bench_cold_{k}"}
    exec(compile(src, path, "exec"), ns)  # noqa: S102 - our own generated source
    return ns[f"fresh_{k}"], src


def cold_start(cfg: Config) -> Result:
    repeats = 4 if cfg.quick else 15
    res = Result("cold_start", "cold start: first tz.gradient call of a freshly defined 40-line function",
                 ratio_base="first call (cold)")
    firsts, seconds, primals = [], [], []
    lines = None
    err = None
    with tempfile.TemporaryDirectory() as tmpdir:
        # a throwaway fresh function first: one-time costs of the process (lazy imports) are not cold start
        try:
            f, _ = _fresh_function(10**6, tmpdir)
            t0 = time.perf_counter()
            tz.gradient(f, 0.7, 1.3)
            res.extra["first_transform_in_process_s"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001
            err = e
        for k in range(repeats if err is None else 0):
            f, src = _fresh_function(k, tmpdir)
            if lines is None:
                body = src.split("\ndef helper_")[0]
                lines = body.count("\n") + 1
            try:
                t0 = time.perf_counter()
                g1 = tz.gradient(f, 0.7, 1.3)
                t1 = time.perf_counter()
                g2 = tz.gradient(f, 0.7, 1.3)
                t2 = time.perf_counter()
                f(0.7, 1.3)
                t3 = time.perf_counter()
            except Exception as e:  # noqa: BLE001
                err = e
                break
            firsts.append(t1 - t0)
            seconds.append(t2 - t1)
            primals.append(t3 - t2)
            if k == 0:
                h = 1e-6
                fd = (f(0.7 + h, 1.3) - f(0.7 - h, 1.3)) / (2 * h)
                res.check = (f"d/dx vs central difference: {g1[0]:.6g} vs {fd:.6g} "
                             f"({'ok' if abs(g1[0] - fd) <= 1e-5 * max(1.0, abs(fd)) else 'MISMATCH'}); "
                             f"second call agrees: {g1 == g2}")
    row = Row("first call (cold)", role="tz", note=f"{lines}-line function + 2-line helper, fresh file each "
              f"repeat")
    row2 = Row("second call (warm)", role="tz")
    row3 = Row(PRIMAL, role="primal", note="one call of the function itself")
    if err is not None:
        row.error = short_error(err)
        row.traceback = "".join(traceback.format_exception(err, limit=12))
    for r, s in ((row, firsts), (row2, seconds), (row3, primals)):
        r.samples, r.number = s, 1
        if s and r.error is None:
            r.median = statistics.median(s)
    res.rows = [row, row2, row3]
    res.goals = [Goal("first call (cold)", None, "<", 0.1, "cold call < 100 ms").evaluate(res.medians())]
    if "first_transform_in_process_s" in res.extra:
        res.notes.append(f"first transform in this process (not counted, includes lazy imports): "
                         f"{res.extra['first_transform_in_process_s'] * 1e3:.1f} ms")
    return res


# ------------------------------------------------------------------ the users' programs: the examples


def cartpole_example(cfg: Config) -> Result:
    """The gradient the CartPole example's training loop takes (examples/cartpole/differentiable.py)."""
    from examples.cartpole import differentiable, sim
    horizon, batch = (20, 8) if cfg.quick else (200, 8)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    policy = differentiable.Controller().to(device=cfg.device, dtype=torch.float64)
    state0 = sim.random_starts(batch, gen, scale=0.2, device=cfg.device)
    params = list(policy.parameters())
    ps = tz.Params(params)
    loss = differentiable.loss

    def tz_grad():
        with torch.no_grad():   # as the example: torchzygote computes the gradient, no autograd graph
            return tz.gradient(lambda: loss(policy, state0, horizon), ps)

    def func_grad():
        wrapped = P.LossModule(policy, loss)
        pd = {k: v.detach() for k, v in wrapped.named_parameters()}
        gf = torch.func.grad(lambda pd: torch.func.functional_call(wrapped, pd, (state0, horizon)))
        return lambda: gf(pd)

    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(loss, policy, state0, horizon)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: tz_grad, role="tz", note="tz.gradient(lambda: loss(...), tz.Params(...))"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(loss(policy, state0, horizon), params)),
                   note="torch.autograd.grad(loss(...), params)"),
        Contestant(FUNC, func_grad, note="functional_call over the example's loss"),
    ]
    proj = {TZ: lambda g: [g[p] for p in params], FUNC: lambda g: list(g.values())}
    return timed_case(cfg, "cartpole_example",
                      f"the CartPole example's gradient: loss(policy, state0, {horizon}), {batch} starts, "
                      f"Controller (nn.Sequential 4->16->1), float64", cs,
                      [Goal(TZ, EAGER, "<=", 0.7, "tz / eager <= 0.7")], grad_check(EAGER, 1e-9, proj))


def pkpd_example(cfg: Config, solver: str) -> Result:
    """The gradient the PK/PD example's fit takes (examples/pkpd/pkpd.py: ``Fit.gradient``, the
    simulated cohort at the example's default size)."""
    from examples.pkpd import pkpd
    n, dt = (200, 0.5) if cfg.quick else (1000, 0.5)  # run_simulated's sizes (--quick and default)
    device = torch.device(cfg.device)
    data, _, omega = pkpd.simulate_cohort(n, 0, device)
    fit = pkpd.Fit(data, pkpd.GUESS, omega, 0)
    if solver == "rk4":
        solve = lambda rhs, u, times, p: pkpd.rk4(rhs, u, times, p, dt)  # noqa: E731 - as run_simulated
        what = f"fixed-step RK4, dt = {dt} h (the fit's solver)"
    else:
        solve = lambda rhs, u, times, p: pkpd.dopri5(rhs, u, times, p)  # noqa: E731
        what = "adaptive Dormand-Prince, rtol 1e-7 (the gradient check's and Theophylline's solver)"

    def func_grad():
        wrapped = P.LossModule(fit.net, pkpd.objective)
        pd = {k: v.detach() for k, v in wrapped.named_parameters()}
        eta, log_sigma = fit.eta.detach(), fit.log_sigma.detach()
        gf = torch.func.grad(lambda pd, eta, ls: torch.func.functional_call(
            wrapped, pd, (eta, ls, fit.data, fit.omega, solve)), argnums=(0, 1, 2))
        return lambda: gf(pd, eta, log_sigma)

    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(fit.loss, solve)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: fit.gradient(solve)), role="tz",
                   note="Fit.gradient: tz.withgradient(lambda: fit.loss(solve), tz.Params(...))"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(fit.loss(solve), fit.params)),
                   note="torch.autograd.grad(fit.loss(solve), fit.params)"),
        Contestant(FUNC, func_grad, note="functional_call over the example's objective"),
    ]
    proj = {TZ: lambda v: v[1], FUNC: lambda g: [*g[0].values(), g[1], g[2]]}
    name = "pkpd_example" if solver == "rk4" else "pkpd_example_dopri5"
    return timed_case(cfg, name, f"the PK/PD example's gradient: {n} simulated patients x "
                      f"{len(data.times) - 1} samples, CovariateNet + random effects, {what}, float64", cs,
                      [Goal(TZ, EAGER, "<=", 0.7, "tz / eager <= 0.7")], grad_check(EAGER, 1e-9, proj))


# ------------------------------------------------------------------ mid-size nn.Module models


def _module_case(cfg: Config, name: str, title: str, model, loss, args, goal: Goal, tol: float) -> Result:
    params = list(model.parameters())
    ps = tz.Params(params)

    def tz_params():
        with torch.no_grad():
            return tz.gradient(lambda: loss(model, *args), ps)

    def func_grad():
        wrapped = P.LossModule(model, loss)
        pd = {k: v.detach() for k, v in wrapped.named_parameters()}
        bd = dict(wrapped.named_buffers())  # passed in, so BatchNorm may update its running stats
        gf = torch.func.grad(lambda pd, bd: torch.func.functional_call(wrapped, (pd, bd), args))
        return lambda: gf(pd, bd)

    def flat_record(g):  # tz.gradient(f, model)[0]: a record of the module's fields
        out = []
        for dotted, _ in model.named_parameters():
            r = g
            for part in dotted.split("."):
                r = r[int(part)] if isinstance(r, list) else getattr(r, part)
            out.append(r)
        return out

    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(loss, model, *args)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: tz_params, role="tz", note="tz.gradient(lambda: loss(model, ...), tz.Params(...))"),
        Contestant("tz (record: gradient(f, model))",
                   lambda: (lambda: tz.gradient(lambda m: loss(m, *args), model)[0]),
                   note="the module's gradient as a record"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(loss(model, *args), params))),
        Contestant(FUNC, func_grad, note="functional_call"),
    ]
    proj = {TZ: lambda g: [g[p] for p in params], FUNC: lambda g: list(g.values()),
            "tz (record: gradient(f, model))": flat_record}
    return timed_case(cfg, name, title, cs, [goal], grad_check(EAGER, tol, proj))


def module_model(cfg: Config) -> Result:
    steps, batch, n_in, hidden = (15, 8, 8, 16) if cfg.quick else (150, 32, 16, 64)
    torch.manual_seed(2)
    dev = cfg.device
    model = P.LSTMModel(n_in, hidden, 4).to(dev)
    g = torch.Generator().manual_seed(2)
    xs = torch.randn(steps, batch, n_in, generator=g).to(dev)
    y = torch.randn(batch, 4, generator=g).to(dev)
    return _module_case(cfg, "module_model", f"nn.Module model: 2-layer hand-written LSTM (2 nn.Linear per "
                        f"layer, sigmoid/tanh gates), {steps} steps in a Python loop, batch {batch}, "
                        f"{n_in}->{hidden}->4, float32, MSE", model, P.lstm_loss, (xs, y),
                        Goal(TZ, EAGER, "<=", 0.9, "tz / eager <= 0.9"), 1e-4)


def module_model_cnn(cfg: Config) -> Result:
    batch, size = (4, 16) if cfg.quick else (32, 32)
    torch.manual_seed(3)
    dev = cfg.device
    model = P.SmallCNN(size).to(dev).train()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(batch, 3, size, size, generator=g).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    return _module_case(cfg, "module_model_cnn", f"nn.Module model: CNN, 2 x (Conv2d 3x3 + BatchNorm2d (train "
                        f"mode) + ReLU + max-pool 2), Linear; batch {batch} x 3x{size}x{size}, 16/32 channels, "
                        f"float32, cross-entropy", model, P.cnn_loss, (x, y),
                        Goal(TZ, EAGER, "<=", 0.9, "tz / eager <= 0.9"), 1e-4)


# ------------------------------------------------------------------ NumPy programs (float64, CPU)


def _numpy_contestants(cfg: Config, f: Callable, params: tuple, data: dict, loop: bool) -> List[Contestant]:
    """The same NumPy-written program ``f(*params, **data, np=...)`` for every contestant: plain NumPy
    (primal), torchzygote on the source as written, HIPS autograd and JAX where installed, torch eager
    through ``P.TORCH_NP``. Gradients are taken with respect to ``params``. ``loop``: the program
    runs a Python loop, which JAX pays for dearly (see ``JAX_LOOP_SKIPPED``)."""
    k = len(params)
    argnums = tuple(range(k))
    tdata = {n: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for n, v in data.items()}
    leaves = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    cs = [
        Contestant(PRIMAL, lambda: (lambda: f(*params, **data)), role="primal", note="plain NumPy, no gradient"),
        Contestant(TZ, lambda: (lambda: tz.gradient(f, *params, **data)), role="tz",
                   note="the NumPy source as written; data as keywords"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(f(*leaves, **tdata, np=P.TORCH_NP), leaves)),
                   note="np = torch shim (P.TORCH_NP), float64 tensors"),
    ]
    if _installed("autograd"):
        def hips():
            autograd, anp = _hips_autograd()
            g = autograd.grad(f, argnums)
            return lambda: g(*params, **data, np=anp)
        cs.append(Contestant(HIPS, hips, note="np = autograd.numpy"))
    # --quick: importing jax and compiling take seconds; the data stay NumPy arrays (constants)
    if _installed("jax") and not cfg.quick and (cfg.compile_slow or not loop):
        def jax_fn(jit):
            jax = _jax()
            g = jax.grad(lambda *ps: f(*ps, **data, np=jax.numpy), argnums)
            if not jit:
                return lambda: g(*params)
            g = jax.jit(g)
            return lambda: jax.block_until_ready(g(*params))
        cs += [Contestant(JAX_GRAD, lambda: jax_fn(False), note="np = jax.numpy, float64, not compiled"),
               Contestant(JAX_JIT, lambda: jax_fn(True),
                          note="float64, warm; setup = trace + XLA compile + first call")]
    return cs


JAX_LOOP_SKIPPED = ("JAX not run on this loop (add --compile-slow): jax.jit unrolls it, and XLA took 7 min to "
                    "compile the 200-step RK4 on a loaded 2-core machine; eager jax.grad dispatches each op "
                    "(20 s per RK4 gradient there)")


def _loop_notes(cfg: Config) -> List[str]:
    return ["no goal set: small arrays, overhead-dominated; reported for comparison"] + \
        ([JAX_LOOP_SKIPPED] if _installed("jax") and not cfg.quick and not cfg.compile_slow else [])


def _numpy_check(params: tuple, tol: float):
    """``grad_check`` against torch eager, plus: torchzygote's gradients have their arguments' types
    (a float for a float, an array of the same shape and dtype for an array)."""
    values = grad_check(EAGER, tol)

    def kind(v):
        return f"ndarray{v.shape} {v.dtype}" if hasattr(v, "shape") and hasattr(v, "dtype") and v.shape \
            else type(v).__name__

    def check(rows: Dict[str, Row]) -> str:
        out = values(rows)
        if TZ in rows:
            got, want = [kind(g) for g in rows[TZ].value], [kind(p) for p in params]
            out += "; tz gradient types " + ("ok" if got == want else f"MISMATCH: {got}, arguments {want}")
        return out
    return check


def numpy_logreg(cfg: Config) -> Result:
    n, d = 2000, 20
    rng = np.random.default_rng(4)
    X = rng.standard_normal((n, d))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-X @ rng.standard_normal(d)))).astype(np.float64)
    params = (0.1 * rng.standard_normal(d), 0.1)
    data = dict(X=X, y=y, lam=1e-2)
    return timed_case(cfg, "numpy_logreg", f"NumPy program: logistic-regression loss + L2 penalty, {n}x{d} data, "
                      f"gradient w.r.t. w ({d},) and b (float), float64",
                      _numpy_contestants(cfg, P.logreg_loss, params, data, loop=False),
                      [Goal(TZ, PRIMAL, "<=", 3.0, "tz / primal <= 3 (vectorised)")], _numpy_check(params, 1e-9),
                      notes=["NumPy's BLAS threads are not limited by --threads"])


def numpy_rk4(cfg: Config) -> Result:
    from scipy.integrate import solve_ivp
    steps, h = (50 if cfg.quick else 200), 0.05
    r_true, A_true = np.array([1.0, 0.8, 1.2]), np.array([[1.0, 0.5, 0.3], [0.4, 1.0, 0.6], [0.2, 0.5, 1.0]])
    u0 = np.array([0.2, 0.3, 0.4])
    times = h * np.arange(1, steps + 1)
    sol = solve_ivp(lambda t, u: P.lv_rhs(u, r_true, A_true), (0.0, times[-1]), u0, t_eval=times,
                    rtol=1e-10, atol=1e-12)
    obs = sol.y.T + 0.01 * np.random.default_rng(5).standard_normal((steps, 3))
    params = (1.1 * r_true, A_true + 0.05)
    data = dict(u0=u0, obs=obs, h=h)
    return timed_case(cfg, "numpy_rk4", f"NumPy program: RK4 of a 3-species competitive Lotka-Volterra ODE, "
                      f"{steps} steps, squared error; gradient w.r.t. r (3,) and A (3, 3), float64",
                      _numpy_contestants(cfg, P.rk4_loss, params, data, loop=True), [],
                      _numpy_check(params, 1e-9),
                      notes=_loop_notes(cfg))


def numpy_kalman(cfg: Config) -> Result:
    steps = 25 if cfg.quick else 100
    rng = np.random.default_rng(6)
    F_true, H = np.array([[0.99, 0.1], [-0.1, 0.95]]), np.array([[1.0, 0.0], [0.5, 1.0]])
    q_true, r_true = 0.01, 0.1
    x, ys = np.array([1.0, 0.0]), []
    for _ in range(steps):
        x = F_true @ x + math.sqrt(q_true) * rng.standard_normal(2)
        ys.append(H @ x + math.sqrt(r_true) * rng.standard_normal(2))
    params = (F_true + 0.02, 0.02, 0.05)
    data = dict(ys=np.array(ys), H=H, x0=np.zeros(2), P0=np.eye(2))
    return timed_case(cfg, "numpy_kalman", f"NumPy program: Kalman filter log-likelihood, {steps} steps, 2x2 "
                      f"matrices (np.linalg.solve, inv, det, @); gradient w.r.t. F (2, 2), q and r (floats), "
                      f"float64", _numpy_contestants(cfg, P.kalman_loglik, params, data, loop=True), [],
                      _numpy_check(params, 1e-9),
                      notes=_loop_notes(cfg))


# ------------------------------------------------------------------ cold start by source size (fresh process)

COLD_CAP_S = 120.0   # per first call; a longer one is killed and reported as a lower bound


def _cold_probe(specs: List[str], threads: int, cap_s: float, startup_s: float = 180.0) -> dict:
    """Runs ``benchmarks.coldprobe``; each timed call is killed after ``cap_s``. Returns
    {spec: figures} (``{"timeout_s": lower bound}`` for a killed one) and ``warmup_s``."""
    import selectors
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, "-m", "benchmarks.coldprobe", str(threads), *specs],
                             stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=REPO)
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        out, started, deadline = {}, None, time.time() + startup_s
        try:
            while True:
                if not sel.select(timeout=max(0.0, deadline - time.time())):
                    p.kill()
                    if started is not None:
                        out[started["spec"]] = {"timeout_s": time.time() - started["wall"],
                                                "repeat": started["repeat"]}
                    else:
                        out["error"] = f"no output within {startup_s:.0f} s"
                    break
                line = p.stdout.readline()
                if not line:
                    break
                if not line.startswith("{"):
                    continue
                d = json.loads(line)
                if d.get("event") == "start":
                    started, deadline = d, d["wall"] + cap_s
                elif "warmup_s" in d:
                    out["warmup_s"] = d["warmup_s"]
                else:
                    out[d["spec"]] = d
                    started, deadline = None, time.time() + startup_s
        finally:
            p.wait()
            sel.close()
        if p.returncode not in (0, -9) and "error" not in out:
            err.seek(0)
            tail = err.read().strip().splitlines()
            out["error"] = f"probe failed (rc {p.returncode}): {tail[-1] if tail else ''}"
    return out


def cold_start_lines(cfg: Config) -> Result:
    if cfg.quick:
        sizes = [(40, 2), (400, 1)]
        d_reps = 2
    else:
        sizes = [(40, 5), (400, 3), (4000, 2)]
        d_reps = 5
    specs = [f"lines:{n}:{r}" for n, r in sizes[:2]] + [f"deriv3:{d_reps}"] + \
            [f"lines:{n}:{r}" for n, r in sizes[2:]]
    res = Result("cold_start_lines", "cold start by size: first tz.gradient of fresh generated straight-line "
                 "functions (fresh process); derivative(derivative(derivative(x * sin(x))))", ratio_base="")
    got = _cold_probe(specs, cfg.threads, COLD_CAP_S)
    if "error" in got:
        res.rows = [Row("probe", role="tz", error=got["error"])]
        return res
    per_line, firsts, checks = {}, {}, []
    for n, r in sizes:
        spec = f"lines:{n}:{r}"
        d = got.get(spec, {"error": "not run (an earlier call was killed)"})
        row = Row(f"first call, {n} lines", role="tz")
        row2 = Row(f"second call, {n} lines", role="tz")
        if "timeout_s" in d:
            row.error = f"timeout: killed after {d['timeout_s']:.0f} s (cap {COLD_CAP_S:.0f} s per call)"
            per_line[n] = None
            res.extra[f"lines_{n}_lower_bound_s"] = d["timeout_s"]
            res.notes.append(f"{n} lines: first call > {d['timeout_s']:.1f} s = > "
                             f"{d['timeout_s'] / n * 1e3:.2f} ms per line (timed out)")
        elif "error" in d:
            row.error, row.traceback = d["error"], d.get("traceback")
        else:
            row.samples, row.number = d["firsts_s"], 1
            row.median = statistics.median(d["firsts_s"])
            row2.samples, row2.number = d["seconds_s"], 1
            row2.median = statistics.median(d["seconds_s"])
            firsts[n] = row.median
            per_line[n] = row.median / n
            row.note = f"{per_line[n] * 1e3:.3f} ms per line, median of {r} fresh functions"
            checks.append(f"{n} lines: {d['check']}")
            res.extra[f"lines_{n}"] = d
        res.rows += [row, row2]
    d = got.get(f"deriv3:{d_reps}", {"error": "not run"})
    row_a = Row("derivative^3, first in process", role="tz",
                note="the process's first nested derivative (after one plain gradient)")
    row_b = Row("derivative^3, fresh function", role="tz",
                note=f"median of {d_reps - 1} more fresh functions, nested derivatives used before")
    row_c = Row("derivative^3, second call", role="tz")
    if "error" in d or "timeout_s" in d:
        row_a.error = d.get("error") or f"timeout: killed after {d['timeout_s']:.0f} s"
    else:
        fs = d["firsts_s"]
        row_a.samples, row_a.number, row_a.median = fs[:1], 1, fs[0]
        if len(fs) > 1:
            row_b.samples, row_b.number, row_b.median = fs[1:], 1, statistics.median(fs[1:])
        row_c.samples, row_c.number, row_c.median = d["seconds_s"], 1, statistics.median(d["seconds_s"])
        checks.append(f"derivative^3: {d['check']}")
        res.extra["deriv3"] = d
    res.rows += [row_a, row_b, row_c]
    res.check = "; ".join(checks) if checks else None
    meds = {f"per line, {n} lines": v for n, v in per_line.items() if v is not None}
    meds.update(res.medians())
    goals = [Goal(f"per line, {n} lines", None, "<", 1e-4, f"{n} lines: per line < 0.1 ms")
             for n, _ in sizes if n >= 400]
    goals += [Goal("derivative^3, first in process", None, "<", 0.1, "derivative^3 first in process < 100 ms"),
              Goal("derivative^3, fresh function", None, "<", 0.1, "derivative^3 fresh fn < 100 ms")]
    res.goals = [g.evaluate(meds) for g in goals]
    for g, (n, _) in zip(res.goals, [s for s in sizes if s[0] >= 400]):
        if per_line.get(n) is None and f"lines_{n}_lower_bound_s" in res.extra:
            g["status"] = "MISS (timeout)"
    sizes_ok = sorted(firsts)
    growth = [f"time({b})/time({a}) = {firsts[b] / firsts[a]:.1f}" for a, b in zip(sizes_ok, sizes_ok[1:])]
    res.extra["growth"] = {f"{b}/{a}": firsts[b] / firsts[a] for a, b in zip(sizes_ok, sizes_ok[1:])}
    if growth:
        res.notes.append("growth: " + ", ".join(growth) + " (10 = linear in the source's length)")
    if "warmup_s" in got:
        res.notes.append(f"not counted: the process's one-time costs, a throwaway 10-line function's first "
                         f"gradient, {got['warmup_s'] * 1e3:.1f} ms")
    if cfg.quick:
        res.notes.append("--quick: 4,000 lines not run")
    return res


def hessian_first_call(cfg: Config) -> Result:
    """Forward over reverse against reverse over reverse: the time to the first Hessian of a fresh
    function, each method in its own fresh process (neither reuses the other's transforms)."""
    reps = 2 if cfg.quick else 4
    res = Result("hessian_first_call", "hessian of a fresh f(x) = (sin(x)*x*c).sum() + (x@x)**2, x of size 4 "
                 "(fresh process per method): first call and second call", ratio_base="")
    firsts = {}
    for method in ("forward", "reverse"):
        spec = f"hessian:{method}:{reps}"
        d = _cold_probe([spec], cfg.threads, COLD_CAP_S).get(spec, {"error": "not run"})
        label = "forward over reverse" if method == "forward" else "reverse over reverse"
        row_a = Row(f"{label}, first in process", role="tz")
        row_b = Row(f"{label}, fresh function", role="tz", note=f"median of {reps - 1} more fresh functions")
        row_c = Row(f"{label}, second call", role="tz")
        row_d = Row(f"{label}, compile, first in process", role="tz", note="time in transforms")
        row_e = Row(f"{label}, compile, fresh function", role="tz", note="time in transforms")
        if "error" in d or "timeout_s" in d:
            row_a.error = d.get("error") or f"timeout: killed after {d['timeout_s']:.0f} s"
        else:
            fs, cs = d["firsts_s"], d["compiles_s"]
            row_a.samples, row_a.number, row_a.median = fs[:1], 1, fs[0]
            row_b.samples, row_b.number, row_b.median = fs[1:], 1, statistics.median(fs[1:])
            row_c.samples, row_c.number, row_c.median = d["seconds_s"], 1, statistics.median(d["seconds_s"])
            row_d.samples, row_d.number, row_d.median = cs[:1], 1, cs[0]
            row_e.samples, row_e.number, row_e.median = cs[1:], 1, statistics.median(cs[1:])
            firsts[method] = (fs[0], statistics.median(fs[1:]))
            res.notes.append(f"{label}: {d['check']}")
        res.rows += [row_a, row_b, row_c, row_d, row_e]
    if len(firsts) == 2:
        a = firsts["reverse"][0] / firsts["forward"][0]
        b = firsts["reverse"][1] / firsts["forward"][1]
        res.extra["compile_speedup"] = {"first_in_process": a, "fresh_function": b}
        res.notes.append(f"reverse over reverse / forward over reverse, first call: {a:.1f}x first in process, "
                         f"{b:.1f}x for a fresh function (goal: at least 5x)")
        meds = res.medians()
        res.goals = [Goal("reverse over reverse, compile, first in process",
                          "forward over reverse, compile, first in process", ">=", 5.0,
                          "compile, first in a process: reverse over reverse / forward over reverse >= 5").evaluate(meds),
                     Goal("reverse over reverse, compile, fresh function", "forward over reverse, compile, fresh function",
                          ">=", 5.0, "compile, fresh function: reverse over reverse / forward over reverse >= 5"
                          ).evaluate(meds),
                     Goal("reverse over reverse, first in process", "forward over reverse, first in process", ">=",
                          5.0, "first call in a process: reverse over reverse / forward over reverse >= 5").evaluate(meds),
                     Goal("reverse over reverse, fresh function", "forward over reverse, fresh function", ">=",
                          5.0, "fresh function: reverse over reverse / forward over reverse >= 5").evaluate(meds)]
    return res


# ------------------------------------------------------------------ memory (separate processes)


def _probe(specs, threads: int):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "benchmarks.memprobe", str(threads)] + [f"{m}:{n}" for m, n in specs]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def memory(cfg: Config) -> Result:
    n_tz = 10**4 if cfg.quick else 10**6
    n_torch = 10**3 if cfg.quick else 10**5
    res = Result("memory", "memory: loop  x = x + 1e-6*sin(x)  (3 ops per iteration), gradient w.r.t. x",
                 unit="bytes", ratio_base="torchzygote (RSS)")
    specs = [("torchzygote (RSS)", "tz_rss", n_tz, "tz", "Python floats; peak RSS growth (VmHWM) during gradient"),
             ("torchzygote (tracemalloc)", "tz_tracemalloc", n_tz, "tz", "Python floats; tracemalloc peak"),
             (EAGER + " (RSS)", "torch_rss", n_torch, "baseline",
              f"0-d float64 tensors; n = {n_torch:.0e}: eager autograd on 0-d tensors is too slow at {n_tz:.0e}"),
             ("primal (tracemalloc)", "primal_tracemalloc", n_tz, "primal", "Python floats, no gradient")]
    timeout = 60 if cfg.quick else 300
    outs = {}
    if cfg.quick:  # one process for all (each process pays the import of torch)
        got = _collect(_probe([(m, n) for _, m, n, _, _ in specs], cfg.threads), timeout)
        for name, mode, _, _, _ in specs:
            outs[name] = next((o for o in got if o.get("mode") == mode), got[-1] if got and "mode" not in got[-1]
                              else {"error": "no output"})
        res.notes.append("--quick: all probes share one process (RSS of later probes may read low)")
    else:
        for name, mode, n, _, _ in specs:
            got = _collect(_probe([(mode, n)], cfg.threads), timeout)
            outs[name] = got[-1] if got else {"error": "no output"}
    for name, mode, n, role, note in specs:
        r = Row(name, role=role, note=note)
        out = outs[name]
        if "error" in out:
            r.error = out["error"]
            r.traceback = out.get("traceback")
        else:
            r.median = out["peak_bytes"]
            r.samples = [out["peak_bytes"]]
            r.number = n
        res.extra[name] = dict(out, n=n)
        res.rows.append(r)
    res.notes.append("peaks, not times; bytes/iter = peak / iterations (compare per iteration: the loops differ "
                     "in length)")
    if not cfg.quick:
        res.notes.append("each figure from its own fresh process; RSS = growth of the resident-set high-water "
                         "mark over the level before the gradient call")
    return res


def _collect(p: subprocess.Popen, timeout: float) -> list:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return [{"error": f"timed out after {timeout:.0f} s"}]
    got = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not got:
        tail = (err or out).strip().splitlines()
        got.append({"error": f"probe failed (rc {p.returncode}): {tail[-1] if tail else ''}",
                    "traceback": err[-4000:]})
    return got


# ------------------------------------------------------------------ registry

CASES = {
    "scalar_chain": (scalar_chain, True),
    "pow_loop": (pow_loop, True),
    "cartpole": (cartpole, False),
    "pk_ode": (lambda cfg: pk_ode(cfg, vector=False), False),
    "pk_ode_vec": (lambda cfg: pk_ode(cfg, vector=True), False),
    "mlp": (mlp, False),
    "cartpole_example": (cartpole_example, False),
    "pkpd_example": (lambda cfg: pkpd_example(cfg, "rk4"), False),
    "pkpd_example_dopri5": (lambda cfg: pkpd_example(cfg, "dopri5"), False),
    "module_model": (module_model, False),
    "module_model_cnn": (module_model_cnn, False),
    "cold_start": (cold_start, True),
    "cold_start_lines": (cold_start_lines, True),
    "hessian_first_call": (hessian_first_call, True),
    "forward_chain": (forward_chain, True),
    "forward_mlp": (forward_mlp, False),
    "warm_overhead": (warm_overhead, True),
    "memory": (memory, True),
    "numpy_logreg": (numpy_logreg, True),
    "numpy_rk4": (numpy_rk4, True),
    "numpy_kalman": (numpy_kalman, True),
}
"""name -> (builder, cpu_only)"""

GROUPS = {"numpy_programs": ("numpy_logreg", "numpy_rk4", "numpy_kalman")}
"""name -> cases: ``--cases numpy_programs`` runs the three NumPy programs"""
