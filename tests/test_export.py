"""gradient_graph: the gradient as a torch.fx GraphModule."""
import torch

import torchzygote as tz


def mlp_loss(W, b, x):
    h = torch.tanh(x @ W.T + b)
    return (h ** 2).mean()


def branchy(w, x):
    s = (w * x).sum()
    if s > 0:
        return s * s
    return -s


def test_straight_line_graph_matches_gradient_on_new_inputs():
    W, b, x = (torch.randn(4, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64),
               torch.randn(5, 3, dtype=torch.float64))
    gm = tz.gradient_graph(mlp_loss, W, b, x)
    assert isinstance(gm, torch.fx.GraphModule)
    assert "straight-line" in gm.path_note
    W2 = torch.randn(4, 3, dtype=torch.float64)
    y, g = gm(W2, b, x)
    ref = tz.gradient(mlp_loss, W2, b, x)
    assert torch.allclose(y, mlp_loss(W2, b, x))
    for a, r in zip(g, ref):
        assert torch.allclose(a, r)


def test_control_flow_is_reported_and_the_taken_path_is_exact():
    w, x = torch.ones(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    gm = tz.gradient_graph(branchy, w, x)
    assert "path" in gm.path_note and "if" in gm.path_note
    _, g = gm(w, x)
    ref = tz.gradient(branchy, w, x)
    assert torch.allclose(g[0], ref[0]) and torch.allclose(g[1], ref[1])
