"""The torch bridges against torch itself (issue 16): ``call_torch`` differentiates everything
torch autograd can see, and ``to_torch`` functions are first-class torch ops (double backward,
torch.func, vmap, compile, autocast, no_grad)."""
import dataclasses
import math

import pytest
import torch
from torch import nn

import torchzygote as tz
from tests.corpus_core import CORPUS

D = torch.float64


def _t(*shape, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=D).requires_grad_(grad)


def _close(a, b, tol=1e-10):
    if a is None or b is None:
        return a is None and b is None
    return torch.allclose(a, b, atol=tol, rtol=tol)


# ---------------------------------------------------------------- to_torch on the core corpus

# torchzygote itself has no rule for these on tensors (x //= 2.5 on a tensor: NoRuleError for
# operator.ifloordiv; tz.gradient fails the same way without to_torch)
_NOT_ON_TENSORS = {"aug_mod_floordiv"}


def _tensor_friendly(limit=22):
    """Real programs of the core corpus that run unchanged on 0-dim float64 tensors and return a
    tensor that depends on them (math.* on a tensor gives a float: those are left out)."""
    out = []
    for fn, pts in CORPUS:
        if fn.__name__ in _NOT_ON_TENSORS:
            continue
        p = pts[0]
        if any(isinstance(v, complex) for v in p):
            continue
        args = tuple(torch.tensor(float(v), dtype=D, requires_grad=True) for v in p)
        try:
            with torch.enable_grad():
                y = fn(*args)
        except Exception:  # noqa: BLE001
            continue
        if not (isinstance(y, torch.Tensor) and y.requires_grad and y.dtype == D):
            continue
        if abs(float(y) - float(fn(*p))) > 1e-9 * (1 + abs(float(y))):
            continue
        out.append((fn, p))
        if len(out) == limit:
            break
    return out


CORE = _tensor_friendly()


def test_core_selection_is_large_enough():
    assert len(CORE) >= 20


@pytest.mark.parametrize("fn,p", CORE, ids=[fn.__name__ for fn, _ in CORE])
def test_to_torch_gradcheck_gradgradcheck_core(fn, p):
    F = tz.to_torch(fn)
    args = tuple(torch.tensor(float(v), dtype=D, requires_grad=True) for v in p)
    assert torch.autograd.gradcheck(F, args)
    assert torch.autograd.gradgradcheck(F, args)


# ---------------------------------------------------------------- to_torch: double backward

def cube_sum(x):
    return (x ** 3).sum()


def mlp_block(x, W1, W2):
    return (torch.tanh(x @ W1) @ W2).sum()


def test_to_torch_hessian_and_create_graph():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=D)
    H = torch.autograd.functional.hessian(tz.to_torch(cube_sum), x)
    assert _close(H, torch.diag(6 * x))
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(tz.to_torch(cube_sum)(xr), xr, create_graph=True)
    assert g.requires_grad
    (gg,) = torch.autograd.grad(g.sum(), xr)
    assert _close(gg, 6 * x)


def test_to_torch_gradient_penalty_training_matches_torch():
    def run(F):
        torch.manual_seed(0)
        W1, W2 = _t(3, 4, seed=1), _t(4, 1, seed=2)
        opt = torch.optim.SGD([W1, W2], lr=0.05)
        X = _t(6, 3, seed=3, grad=False)
        for _ in range(3):
            x = X.clone().requires_grad_()
            loss = F(x, W1, W2)
            (gx,) = torch.autograd.grad(loss, x, create_graph=True)
            total = loss + (gx ** 2).sum()
            opt.zero_grad()
            total.backward()
            opt.step()
        return W1.detach(), W2.detach()
    a, b = run(tz.to_torch(mlp_block)), run(mlp_block)
    assert _close(a[0], b[0]) and _close(a[1], b[1])


# ---------------------------------------------------------------- to_torch: torch.func, vmap

def sin_times(u):
    return u.sin() * u


def test_to_torch_func_grad_jacrev_vmap():
    x = _t(3, seed=4, grad=False)
    F, G = tz.to_torch(cube_sum), tz.to_torch(sin_times)
    assert _close(torch.func.grad(F)(x), torch.func.grad(cube_sum)(x))
    assert _close(torch.func.jacrev(G)(x), torch.func.jacrev(sin_times)(x))


def _tz_grad_of_cube_sum(x):
    return tz.gradient(cube_sum, x)[0]


def test_torchzygote_gradient_inside_torch_func_grad():
    """torch.func.grad / jacrev over a plain ``tz.gradient`` reported zeros (torch saw a constant):
    now an error naming the fix; through ``to_torch`` torch differentiates it (the Hessian);
    vmap and jacfwd see through it as they are."""
    x = _t(3, seed=4, grad=False)
    want = torch.func.hessian(cube_sum)(x)
    with pytest.raises(tz.GradientError, match="inside a torch.func transform that differentiates it.*to_torch"):
        torch.func.jacrev(_tz_grad_of_cube_sum)(x)
    with pytest.raises(tz.GradientError, match="torch.func transform"):
        torch.func.grad(lambda x: _tz_grad_of_cube_sum(x).sum())(x)
    assert _close(torch.func.jacrev(tz.to_torch(_tz_grad_of_cube_sum))(x), want)
    assert _close(torch.func.jacfwd(_tz_grad_of_cube_sum)(x), want)
    xs = _t(4, 3, seed=5, grad=False)
    assert _close(torch.vmap(_tz_grad_of_cube_sum)(xs), torch.vmap(torch.func.grad(cube_sum))(xs))


def test_to_torch_vmap_and_argnums():
    x = _t(3, seed=4, grad=False)
    F = tz.to_torch(cube_sum)
    xs = _t(4, 3, seed=5, grad=False)
    assert _close(torch.vmap(F)(xs), torch.vmap(cube_sum)(xs))
    assert _close(torch.vmap(torch.func.grad(F))(xs), torch.vmap(torch.func.grad(cube_sum))(xs))
    W1, W2 = _t(3, 4, seed=6, grad=False), _t(4, 1, seed=7, grad=False)
    M = tz.to_torch(mlp_block)
    for argnums in (0, 1, (1, 2)):
        a = torch.func.grad(M, argnums=argnums)(x, W1, W2)
        b = torch.func.grad(mlp_block, argnums=argnums)(x, W1, W2)
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert _close(u, v)


def test_to_torch_forward_mode():
    """Forward mode alone runs f itself (no reverse graph is needed); forward over reverse
    (torch.func.hessian = jacfwd(jacrev)) needs a jvp rule, which to_torch has not: torch's error."""
    x, t = _t(3, grad=False), _t(3, seed=1, grad=False)
    y, jt = torch.func.jvp(tz.to_torch(sin_times), (x,), (t,))
    y2, jt2 = torch.func.jvp(sin_times, (x,), (t,))
    assert _close(y, y2) and _close(jt, jt2)
    with pytest.raises(NotImplementedError, match="jvp"):
        torch.func.hessian(tz.to_torch(cube_sum))(x)


# ---------------------------------------------------------------- to_torch: arguments

def kw_fn(x, scale=1.0, w=None):
    return (x * scale * w).sum()


@dataclasses.dataclass
class Pair:
    a: torch.Tensor
    b: torch.Tensor


def struct_fn(d, lst, p):
    return (d["a"] * lst[0]).sum() + lst[1].sum() * p.a.sum() + (p.b ** 2).sum()


def test_to_torch_kwargs_and_structures():
    x, w = _t(3, seed=1), _t(3, seed=2)
    gz = torch.autograd.grad(tz.to_torch(kw_fn)(x, scale=2.0, w=w), (x, w))
    gt = torch.autograd.grad(kw_fn(x, scale=2.0, w=w), (x, w))
    assert all(_close(a, b) for a, b in zip(gz, gt))
    a, b, c = _t(3, seed=3), _t(3, seed=4), _t(2, seed=5)
    args = ({"a": a, "n": 1}, [b, x], Pair(c, w[:2]))
    gz = torch.autograd.grad(tz.to_torch(struct_fn)(*args), (a, b, c, x, w))
    gt = torch.autograd.grad(struct_fn(*args), (a, b, c, x, w))
    assert all(_close(u, v) for u, v in zip(gz, gt))
    assert torch.autograd.gradcheck(lambda a, b: tz.to_torch(struct_fn)({"a": a}, [b, a], Pair(b, a)), (a, b))


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()


def apply_model(m, x):
    return m(x).sum()


def test_to_torch_modules_as_arguments_and_captured():
    mlp, X = _mlp(), _t(5, 3, seed=8, grad=False)
    ps = list(mlp.parameters())
    want = torch.autograd.grad(mlp(X).sum(), ps)
    for got in (torch.autograd.grad(tz.to_torch(apply_model)(mlp, X), ps),
                torch.autograd.grad(tz.to_torch(lambda x: mlp(x).sum())(X), ps),
                torch.autograd.grad(tz.to_torch(mlp)(X).sum(), ps)):
        assert all(_close(a, b) for a, b in zip(got, want))


GLOBAL_MODEL = _mlp()


def reads_global(x):
    return GLOBAL_MODEL(x).sum()


def test_to_torch_global_requiring_grad_is_a_clear_error():
    with pytest.raises(tz.GradientError, match="GLOBAL_MODEL"):
        tz.to_torch(reads_global)(_t(3))
    # no argument requires grad: f runs as it is, and torch tracks the global model itself
    y = tz.to_torch(reads_global)(_t(3, grad=False))
    ps = list(GLOBAL_MODEL.parameters())
    want = _torch_grads(reads_global(_t(3, grad=False)), ps)
    assert all(_close(a, b) for a, b in zip(_torch_grads(y, ps), want))


def test_to_torch_no_grad_and_autocast():
    x = _t(3)
    with torch.no_grad():
        y = tz.to_torch(cube_sum)(x)
    assert not y.requires_grad and _close(y, cube_sum(x).detach())

    def run(F):
        torch.manual_seed(1)
        X, W = torch.randn(4, 3, requires_grad=True), torch.randn(3, 3, requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = F(X, W)
        y.backward()
        return y, X.grad, W.grad
    ya, xa, wa = run(tz.to_torch(lambda a, b: torch.tanh(a @ b).sum()))
    yb, xb, wb = run(lambda a, b: torch.tanh(a @ b).sum())
    assert ya.dtype == yb.dtype == torch.bfloat16
    assert torch.allclose(xa, xb, atol=1e-2) and torch.allclose(wa, wb, atol=1e-2)


def tt_block(x, w):
    y = x
    for i in range(3):
        y = torch.tanh(y * w + 0.1 * i)
    return y


class _Net(nn.Module):
    def __init__(self, F):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.w = nn.Parameter(torch.randn(3))
        self.F = F

    def forward(self, x):
        return self.F(self.lin(x), self.w).sum()


def test_to_torch_under_torch_compile_trains_like_eager():
    """aot_eager (AOT autograd, no C++ compile) keeps this fast; inductor also matches (about
    45 s on two busy cores, so not run here). The to_torch call is a graph break."""
    torch.manual_seed(3)
    a = _Net(tz.to_torch(tt_block))
    torch.manual_seed(3)
    b = _Net(tt_block)
    ca = torch.compile(a, backend="aot_eager")
    oa, ob = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    X = torch.randn(5, 3)
    for _ in range(3):
        oa.zero_grad()
        ob.zero_grad()
        la, lb = ca(X), b(X)
        la.backward()
        lb.backward()
        assert torch.allclose(la, lb, atol=1e-6)
        oa.step()
        ob.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


# ---------------------------------------------------------------- call_torch against torch autograd

def _torch_grads(loss, xs):
    return torch.autograd.grad(loss, xs, allow_unused=True)


def test_call_torch_module_as_callable_and_argument():
    mlp, X = _mlp(), _t(5, 3, seed=9, grad=False)
    want = _torch_grads(mlp(X).sum(), list(mlp.parameters()))
    for f in (lambda m, x: tz.call_torch(m, x).sum(),
              lambda m, x: tz.call_torch(lambda mm, xx: mm(xx), m, x).sum(),
              lambda m, x: tz.call_torch(lambda xx: m(xx), x).sum()):
        g = tz.gradient(f, mlp, X)[0]
        assert _close(g[0].weight, want[0]) and _close(g[0].bias, want[1])
        assert _close(g[2].weight, want[2]) and _close(g[2].bias, want[3])
    # the same shape as without call_torch
    g0 = tz.gradient(lambda m, x: m(x).sum(), mlp, X)[0]
    g1 = tz.gradient(lambda m, x: tz.call_torch(m, x).sum(), mlp, X)[0]
    assert type(g0) is type(g1) and len(g0) == len(g1) and g1[1] is None


def test_call_torch_params_and_dicts():
    mlp, X = _mlp(), _t(5, 3, seed=10, grad=False)
    ps = list(mlp.parameters())
    want = _torch_grads((mlp(X) ** 2).sum(), ps)
    g = tz.gradient(lambda: (tz.call_torch(mlp, X) ** 2).sum(), tz.Params(ps))
    assert all(_close(g[p], w) for p, w in zip(ps, want))
    params = {k: v.detach() for k, v in mlp.named_parameters()}
    gd = tz.gradient(lambda p, x: tz.call_torch(torch.func.functional_call, mlp, p, (x,)).sum(), params, X)[0]
    want = _torch_grads(mlp(X).sum(), ps)
    assert set(gd) == set(params) and all(_close(gd[k], w) for k, w in zip(params, want))


W_GLOBAL = torch.tensor([1.0, -2.0, 0.5], dtype=D)


def uses_global_w(x):
    return (W_GLOBAL * x).sin().sum()


def test_call_torch_params_read_from_globals():
    x = _t(3, seed=11, grad=False)
    g = tz.gradient(lambda: tz.call_torch(uses_global_w, x) * 2, tz.Params([W_GLOBAL]))
    assert _close(g[W_GLOBAL], 2 * x * (W_GLOBAL * x).cos())
    assert not W_GLOBAL.requires_grad   # switched on only during the call


def test_call_torch_structures_and_kwargs():
    a, b, c = _t(3, seed=12, grad=False), _t(3, seed=13, grad=False), _t(2, seed=14, grad=False)

    def inner(d, lst, p, scale=None):
        return (d["a"] * lst[0]).sum() * scale.sum() + (p.a ** 2).sum() + lst[1][0].sum()

    def outer(a, b, c):
        return tz.call_torch(inner, {"a": a}, [b, (c,)], Pair(c, a), scale=b) * 3
    g = tz.gradient(outer, a, b, c)
    ar, br, cr = (t.clone().requires_grad_() for t in (a, b, c))
    want = _torch_grads(outer.__wrapped__(ar, br, cr) if hasattr(outer, "__wrapped__") else
                        inner({"a": ar}, [br, (cr,)], Pair(cr, ar), scale=br) * 3, (ar, br, cr))
    assert all(_close(u, v) for u, v in zip(g, want))


def test_call_torch_number_output_is_a_clear_error():
    x = _t(3, grad=False)
    with pytest.raises(tz.GradientError, match="Python float"):
        tz.gradient(lambda x: tz.call_torch(lambda t: t.sum().item(), x) * 2.0, x)


def test_call_torch_nested_is_a_clear_error():
    x = _t(2, grad=False)
    with pytest.raises(tz.NoRuleError, match="second order"):
        tz.gradient(lambda x: tz.gradient(lambda y: tz.call_torch(torch.sin, y).sum(), x)[0].sum(), x)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_to_torch_inside_ddp_matches_plain():
    """DistributedDataParallel (one CPU process, gloo): its gradient hooks see the parameters'
    gradients that the to_torch op returns."""
    import os
    import socket
    import torch.distributed as dist
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        torch.manual_seed(3)
        a = _Net(tz.to_torch(tt_block))
        torch.manual_seed(3)
        b = _Net(tt_block)
        da = nn.parallel.DistributedDataParallel(a)
        X = torch.randn(5, 3)
        da(X).backward()
        b(X).backward()
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.allclose(p.grad, q.grad, atol=1e-6)
    finally:
        dist.destroy_process_group()
