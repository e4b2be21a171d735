"""The benchmark programs, as plain Python.

They live in a real file because torchzygote differentiates source: every
function here is read, lifted and transformed by ``tz.gradient``. Each program
comes in the variants the contestants need (Python floats, 0-d tensors,
tensors); the variants compute the same thing.
"""
import math
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------ scalar chain (600 ops)


def chain_float(x):
    for i in range(100):
        x = x + 0.01 * math.sin(math.log(x * x + 1.0))
    return x


def chain_tensor(x):
    for i in range(100):
        x = x + 0.01 * torch.sin(torch.log(x * x + 1.0))
    return x


def chain_numpy(x):  # for tangent, which has no rules for math.sin / math.log
    for i in range(100):
        x = x + 0.01 * np.sin(np.log(x * x + 1.0))
    return x


def make_chain(m):
    """The chain on another library's ``sin``/``log`` (``jax.numpy``, ``autograd.numpy``)."""
    def chain(x):
        for i in range(100):
            x = x + 0.01 * m.sin(m.log(x * x + 1.0))
        return x
    return chain


# ------------------------------------------------------------------ the seeds' pow loop


def pow_loop(x, n):
    r = 1
    while n > 0:
        n -= 1
        r *= x
    return r


def pow_loop_float(x, n):  # for tangent (its pow loop starts from a float)
    r = 1.0
    while n > 0:
        n -= 1
        r *= x
    return r


# ------------------------------------------------------------------ CartPole rollout

# gymnasium's constants, as the CartPole example's simulator has them
from examples.cartpole.sim import (FORCE_MAG, GRAVITY, LENGTH, MASSPOLE, POLEMASS_LENGTH,  # noqa: E402
                                   TAU, TOTAL_MASS)


def cartpole_step(s, force):
    x = s[0]
    x_dot = s[1]
    theta = s[2]
    theta_dot = s[3]
    costheta = torch.cos(theta)
    sintheta = torch.sin(theta)
    temp = (force + POLEMASS_LENGTH * theta_dot * theta_dot * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * costheta * costheta / TOTAL_MASS))
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    return torch.stack([x + TAU * x_dot, x_dot + TAU * xacc,
                        theta + TAU * theta_dot, theta_dot + TAU * thetaacc])


def policy(W1, b1, W2, b2, s):
    h = torch.tanh(W1 @ s + b1)
    return FORCE_MAG * torch.tanh(W2 @ h + b2)[0]


def cartpole_loss(W1, b1, W2, b2, s0, steps):
    s = s0
    loss = 0.0
    for t in range(steps):
        force = policy(W1, b1, W2, b2, s)
        s = cartpole_step(s, force)
        loss = loss + s[2] * s[2]
    return loss


# ------------------------------------------------------------------ PK ODE (one compartment, first-order absorption)
# Depot A (dose absorbed at rate ka), central concentration C (volume V, elimination ke):
#   dA/dt = -ka * A
#   dC/dt = -ke * C + ka * A / V
# integrated with classic RK4; loss = sum of squared errors against observations.

PK_DT = 0.1
PK_DOSE = 100.0


def pk_rhs(A, C, ka, ke, V):
    return -ka * A, ka * A / V - ke * C


def pk_loss(ka, ke, V, obs, steps):
    A = PK_DOSE
    C = 0.0
    h = PK_DT
    loss = 0.0
    for i in range(steps):
        k1a, k1c = pk_rhs(A, C, ka, ke, V)
        k2a, k2c = pk_rhs(A + 0.5 * h * k1a, C + 0.5 * h * k1c, ka, ke, V)
        k3a, k3c = pk_rhs(A + 0.5 * h * k2a, C + 0.5 * h * k2c, ka, ke, V)
        k4a, k4c = pk_rhs(A + h * k3a, C + h * k3c, ka, ke, V)
        A = A + h / 6.0 * (k1a + 2.0 * k2a + 2.0 * k3a + k4a)
        C = C + h / 6.0 * (k1c + 2.0 * k2c + 2.0 * k3c + k4c)
        d = C - obs[i]
        loss = loss + d * d
    return loss


def pk_loss_vec(p, obs, steps):
    return pk_loss(p[0], p[1], p[2], obs, steps)


# ------------------------------------------------------------------ MLP with large matmuls


def mlp_loss(W1, b1, W2, b2, W3, b3, X, Y):
    h = torch.tanh(X @ W1 + b1)
    h = torch.tanh(h @ W2 + b2)
    out = h @ W3 + b3
    return torch.mean((out - Y) ** 2)


# ------------------------------------------------------------------ nn.Module models


class LSTMCell(nn.Module):
    """A hand-written LSTM cell (no nn.LSTM): two Linear layers, sigmoid/tanh gates."""

    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.ih = nn.Linear(n_in, 4 * n_hidden)
        self.hh = nn.Linear(n_hidden, 4 * n_hidden)

    def forward(self, x, h, c):
        gates = self.ih(x) + self.hh(h)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class LSTMModel(nn.Module):
    """Two stacked LSTMCells unrolled over the sequence in a Python loop, a Linear head on
    the last hidden state."""

    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.cell1 = LSTMCell(n_in, n_hidden)
        self.cell2 = LSTMCell(n_hidden, n_hidden)
        self.head = nn.Linear(n_hidden, n_out)
        self.n_hidden = n_hidden

    def forward(self, xs):  # xs: (time, batch, features)
        h1 = xs.new_zeros(xs.shape[1], self.n_hidden)
        c1 = h1
        h2 = h1
        c2 = h1
        for x in xs:
            h1, c1 = self.cell1(x, h1, c1)
            h2, c2 = self.cell2(h1, h2, c2)
        return self.head(h2)


def lstm_loss(model, xs, y):
    return F.mse_loss(model(xs), y)


class SmallCNN(nn.Module):
    """Conv2d + BatchNorm2d + ReLU + max-pool, twice, then a Linear classifier."""

    def __init__(self, size, c=16, n_out=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * c)
        self.fc = nn.Linear(2 * c * (size // 4) ** 2, n_out)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


def cnn_loss(model, x, y):
    return F.cross_entropy(model(x), y)


class LossModule(nn.Module):
    """``loss(module, *args)`` as a module's forward, for ``torch.func.functional_call``
    (its parameters are the wrapped module's, prefixed ``inner.``)."""

    def __init__(self, inner, loss):
        super().__init__()
        self.inner = inner
        self.loss = loss

    def forward(self, *args):
        return self.loss(self.inner, *args)


# ------------------------------------------------------------------ fixed overhead

square = lambda x: x * x  # noqa: E731


def square_tensor(x):
    return x * x


# ------------------------------------------------------------------ memory


def mem_loop_float(x, n):
    for i in range(n):
        x = x + 1e-6 * math.sin(x)
    return x


def mem_loop_tensor(x, n):
    for i in range(n):
        x = x + 1e-6 * torch.sin(x)
    return x


# ------------------------------------------------------------------ cold start: a fresh 40-line function

COLD_TEMPLATE = '''\
def fresh_{k}(x, y):
    a = x * y + {c0}
    b = math.sin(a) * x - y
    if a > b:
        c = a * b + math.exp(-b * b)
    else:
        c = a - b * {c1}
    s = 0.0
    for i in range(3):
        s = s + c * i + math.cos(s)
        if s > 10.0:
            s = s / 2.0
    t = s * s + a
    n = 0
    while n < 2:
        t = t * 0.5 + math.tanh(t)
        n += 1
    u = math.sqrt(t * t + 1.0)
    v = u * x + c * y
    w = v / (1.0 + u * u)
    z = [a, b, c, w]
    acc = 0.0
    for e in z:
        acc = acc + e * e
    p = acc ** 0.5 + {c2}
    q = math.log(p + 1.0) * w
    if q > 0.0:
        r = q * q
    else:
        r = -q
    r = r + max(a, b) * min(u, v)
    m = abs(r - t)
    d = dict(a=a, b=m)
    o = d["a"] * d["b"]
    o = o + math.atan(o)
    g = (o, r, w)
    k0, k1, k2 = g
    res = k0 * 0.3 + k1 * 0.3 + k2 * 0.4
    res = res + helper_{k}(res, x)
    return res * {c3}
def helper_{k}(r, x):
    return r * x + 1.0
'''


# ------------------------------------------------------------------ cold start: generated straight-line functions

STRAIGHT_OPS = (
    "v{i} = v{a} * {c} + v{b} * 0.1",
    "v{i} = math.sin(v{a}) + 0.5 * v{b}",
    "v{i} = v{a} * v{b} * 0.5 + x * {c}",
    "v{i} = math.tanh(v{a}) - 0.25 * v{b}",
    "v{i} = (v{a} + y) / (1.0 + v{b} * v{b})",
    "v{i} = math.exp(-v{a} * v{a}) + v{b} * {c}",
)


def straight_line_source(lines: int, tag: str) -> str:
    """A function ``straight_{tag}(x, y)`` of exactly ``lines`` source lines (``def``, assignments,
    ``return``): each assignment reads the two previous values (and x or y), floats and ``math``."""
    out = [f"def straight_{tag}(x, y):", "    v0 = x * y + 0.5", "    v1 = x - y * 0.5"]
    for i in range(2, lines - 1):
        c = round(0.5 + (hash((tag, i)) % 1000) * 1e-4, 4)   # constants differ between functions
        out.append("    " + STRAIGHT_OPS[i % len(STRAIGHT_OPS)].format(i=i, a=i - 1, b=i - 2, c=c))
    out.append(f"    return v{lines - 2}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ NumPy programs, as scientists write them
# Written once against the module parameter ``np``: torchzygote differentiates them as they stand
# (``np`` = NumPy, the default), HIPS autograd runs them with ``np=autograd.numpy``, JAX with
# ``np=jax.numpy``, torch eager with ``np=TORCH_NP``.


def logreg_loss(w, b, X, y, lam, np=np):
    """Mean logistic loss of labels ``y`` in {0, 1} with an L2 penalty on ``w``."""
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z) + lam * np.sum(w * w)


def lv_rhs(u, r, A, np=np):
    """Competitive Lotka-Volterra: du/dt = r * u * (1 - A u)."""
    return r * u * (1.0 - A @ u)


def rk4_loss(r, A, u0, obs, h, np=np):
    """Classic RK4 of ``lv_rhs`` from ``u0``, one step of ``h`` per observation; squared error."""
    u = u0
    loss = 0.0
    for i in range(obs.shape[0]):
        k1 = lv_rhs(u, r, A, np)
        k2 = lv_rhs(u + 0.5 * h * k1, r, A, np)
        k3 = lv_rhs(u + 0.5 * h * k2, r, A, np)
        k4 = lv_rhs(u + h * k3, r, A, np)
        u = u + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        loss = loss + np.sum((u - obs[i]) ** 2)
    return loss


LOG_2PI = math.log(2.0 * math.pi)


def kalman_loglik(F, q, r, ys, H, x0, P0, np=np):
    """Log-likelihood of the observations ``ys`` (one row per step) under the linear-Gaussian model
    x' = F x + N(0, q I), y = H x + N(0, r I): the Kalman filter's prediction-error decomposition."""
    Q = q * np.eye(x0.shape[0])
    R = r * np.eye(ys.shape[1])
    x = x0
    P = P0
    ll = 0.0
    for y in ys:
        x = F @ x
        P = F @ P @ F.T + Q
        v = y - H @ x
        S = H @ P @ H.T + R
        ll = ll - 0.5 * (v @ np.linalg.solve(S, v) + np.log(np.linalg.det(S)) + ys.shape[1] * LOG_2PI)
        K = P @ H.T @ np.linalg.inv(S)
        x = x + K @ v
        P = P - K @ H @ P
    return ll


def _torch_logaddexp(a, b):
    return torch.logaddexp(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))


# the NumPy names the programs above use, on float64 torch tensors (for torch eager)
TORCH_NP = SimpleNamespace(mean=torch.mean, sum=torch.sum, log=torch.log, logaddexp=_torch_logaddexp,
                           linalg=torch.linalg, eye=lambda n: torch.eye(n, dtype=torch.float64))
