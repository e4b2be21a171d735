"""The programs whose IR, analysis and generated code tests/test_golden.py pins down (their
source lines appear in the golden files: edit them and regenerate)."""
import torch


def pow_loop(x, n):
    r = 1
    for i in range(n):
        r *= x
    return r


def mlp(W1, b1, W2, b2, x, t):
    h = torch.tanh(W1 @ x + b1)
    y = torch.relu(W2 @ h + b2)
    loss = ((y - t) ** 2).sum()
    return loss


def dict_mutation(x, y):
    d = {"a": x, "b": 2.0}
    d["b"] = x * y + 1.0
    z = d["a"] * d["b"] + y
    return z
