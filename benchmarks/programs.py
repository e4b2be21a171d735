"""The benchmark programs, as plain Python.

They live in a real file because torchzygote differentiates source: every
function here is read, lifted and transformed by ``tz.gradient``. Each program
comes in the variants the contestants need (Python floats, 0-d tensors,
tensors); the variants compute the same thing.
"""
import math

import numpy as np
import torch

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

GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds between state updates (Euler)


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
