"""Adversarial programs for transforms specialised on module and function arguments
(``ad/analysis_modules.py``, ``ad/module_facts.py``) and the module paths of run-time dispatch:
structures that change between calls, closures of one code, keyword calls, parametrizations,
custom ``__getattr__``. Each scenario is a sequence of gradient calls (the structure changing
between them); every call is compared with torch autograd, in the explicit form
(``tz.gradient(loss, model, x)``) and with ``Params``.

Before their fixes these programs raised for a valid program (a submodule's field or a closure's
bound builtin changed between calls) or gave silently wrong gradients (keyword calls of modules,
parametrized weights, a module's own ``__getattr__``)."""
import pytest
import torch
from torch import nn
import torch.nn.utils.parametrize as parametrize

import torchzygote as tz

D = torch.float64


def _close(got, ref):
    if ref is None:
        return got is None or torch.count_nonzero(got) == 0
    return got is not None and torch.allclose(got, ref, rtol=1e-9, atol=1e-11)


def _field(record, dotted):
    for step in dotted.split("."):   # (a Sequential's gradient is a list)
        record = None if record is None else record[int(step)] if isinstance(record, list) else \
            getattr(record, step, None)
    return record


def _check(loss, model, x):
    """One gradient call of ``loss(model, x)`` in both forms against torch autograd."""
    ps = list(model.parameters()) if isinstance(model, nn.Module) else []
    xr = x.detach().requires_grad_(True)
    ref = torch.autograd.grad(loss(model, xr), ps + [xr], allow_unused=True)
    g = tz.gradient(lambda: loss(model, x), tz.Params(ps + [x]))
    for p, r in zip(ps + [x], ref):
        assert _close(g[p], r)
    gm, gx = tz.gradient(loss, model, x)
    assert _close(gx, ref[-1])
    if isinstance(model, nn.Module):
        for (name, _), r in zip(model.named_parameters(), ref):
            assert _close(_field(gm, name), r), name


def squares(m, x):
    return (m(x) ** 2).sum()


class Scale(nn.Module):
    """A buffer whose rank decides the rank of the result."""

    def __init__(self):
        super().__init__()
        self.register_buffer("s", torch.full((3,), 2.0, dtype=D))
        self.w = nn.Parameter(torch.linspace(-1.0, 1.0, 3, dtype=D))

    def forward(self, x):
        return x * self.s * self.w


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Scale()

    def forward(self, x):
        return torch.tanh(self.inner(x)).sum(-1)


def submodule_field_changes():
    """What ``self.inner(x)`` returns depends on the submodule's buffer: the caller's entry is
    guarded on it too (it raised 'rebound during the gradient call' before)."""
    m = Outer()
    yield squares, m
    m.inner.s = torch.full((2, 1, 3), 3.0, dtype=D)
    yield squares, m
    m.inner.s = torch.tensor(0.5, dtype=D)
    yield squares, m


def loop(m, x):
    h = x
    for layer in m:
        h = layer(h)
    return (h ** 2).sum()


def sequential_item_field_changes():
    seq = nn.Sequential(Scale(), nn.Tanh())
    yield loop, seq
    yield squares, seq
    seq[0].s = torch.ones(2, 1, 3, dtype=D)
    yield loop, seq
    yield squares, seq


def apply(f, x):
    return (f(x) ** 2).sum()


def _through(fn):
    return lambda x: fn(x)


def closure_binds_another_builtin():
    """Closures of one code whose cells hold other builtins (bound as constants in their
    transforms) return other ranks."""
    yield apply, _through(torch.exp)
    yield apply, _through(torch.sum)
    yield apply, _through(torch.exp)


class Keyword(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(0.5, 1.5, 3, dtype=D))

    def forward(self, x, scale=1.0):
        return x * self.w * scale


def keyword_call(m, x):
    return m(x, scale=2.0).sum() + (m(x, 3.0) ** 2).sum()


def module_called_with_keywords():
    """``m(x, scale=2.0)``: the pullback dropped x's gradient (the module's own was in its place)."""
    yield keyword_call, Keyword()


class Aliased(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-0.5, 0.5, 3, dtype=D))

    def __getattr__(self, name):
        if name == "alias":
            return self.w
        return super().__getattr__(name)

    def forward(self, x):
        return x * self.alias + self.w


def custom_getattr():
    """A module's own ``__getattr__`` computing an attribute from its fields: its gradient went
    to a field named ``alias`` that the module's gradient record does not have."""
    yield squares, Aliased()


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).T


def _parametrized():
    lin = nn.Linear(3, 3).double()
    parametrize.register_parametrization(lin, "weight", Symmetric())
    return lin


def parametrizations():
    """A parametrized weight is a property computed by torch's own code: its gradient was dropped
    (run as foreign code), then lost in the record of the ParametrizationList holding it."""
    torch.manual_seed(0)
    yield squares, _parametrized()
    yield squares, torch.nn.utils.parametrizations.weight_norm(nn.Linear(3, 2).double())
    sn = torch.nn.utils.parametrizations.spectral_norm(nn.Linear(3, 2).double())
    sn.eval()
    yield squares, sn


def instance_forward():
    """``m.forward = fn``: Module.__call__ calls the instance's forward, not the class's."""
    lin = nn.Linear(3, 3).double()
    yield squares, lin
    lin.forward = lambda x: torch.tanh(x @ lin.weight.T) * 2.0
    yield squares, lin
    wrapper = nn.Sequential(lin, nn.Tanh())
    yield loop, wrapper
    del lin.forward
    yield loop, wrapper


def l2_parameters(m, x):
    return (m(x) ** 2).sum() + sum((p ** 2).sum() for p in m.parameters())


def l2_named(m, x):
    r = (m(x) ** 2).sum()
    for name, p in m.named_parameters():
        r = r + (p ** 2).sum() * len(name)
    return r


def l2_list(m, x):
    ps = list(m.parameters())
    return (m(x) ** 2).sum() + sum((p ** 3).sum() for p in ps) * next(m.parameters()).dtype.itemsize


def parameters_iterated():
    """torch's generators over a module's parameters (an L2 penalty) raised 'cannot differentiate
    yield' for a valid program: their items now credit the fields they came from."""
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 3).double(), nn.Tanh(), nn.Linear(3, 2).double())
    yield l2_parameters, m
    yield l2_named, m
    yield l2_list, m


def first_parameter(m, x):
    return (m(x) ** 2).sum() + next(m.parameters()).sum() * 3.0


def parameters_by_next(m, x):
    it = m.parameters()
    w = next(it)
    b = next(it)
    return (x @ w.T + b).pow(2).sum()


def parameters_taken_by_next():
    """``next(m.parameters())`` was data: its gradient silently dropped."""
    m = nn.Linear(3, 3).double()
    yield first_parameter, m
    yield parameters_by_next, m


SCENARIOS = [submodule_field_changes, sequential_item_field_changes, closure_binds_another_builtin,
             module_called_with_keywords, custom_getattr, parametrizations, instance_forward,
             parameters_iterated, parameters_taken_by_next]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_gradients_match_torch(scenario):
    x = torch.linspace(-1.0, 1.0, 12, dtype=D).reshape(4, 3)
    for loss, model in scenario():
        _check(loss, model, x)


def _doubled(x):
    yield x * 2.0


def first_of_generator(x):
    return next(_doubled(x)).sum()


def test_next_of_a_generator_carrying_a_gradient_is_an_error():
    """``next`` of a generator yielding a value with a gradient: a clear error (generators are
    not differentiated), where its gradient was silently dropped."""
    with pytest.raises(tz.LiftError, match="generators"):
        tz.gradient(first_of_generator, torch.ones(3, dtype=D))


class WritesItsDict(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1.0, 1.0, 3, dtype=D))
        self.k = 1.0

    def forward(self, x):
        self.__dict__["k"] = x * self.w
        return x * self.k


def test_write_through_the_instance_dict():
    """``obj.__dict__`` shares the object's slot (``Context.share``); before, a field written
    through it lost its gradient silently."""
    x = torch.linspace(-1.0, 1.0, 12, dtype=D).reshape(4, 3)
    _check(squares, WritesItsDict(), x)


W_OUTER = torch.linspace(-1.0, 1.0, 3, dtype=D)
V_OUTER = torch.linspace(0.5, 1.5, 3, dtype=D)


def nested_params():
    inner = tz.gradient(lambda: torch.sin(W_OUTER * V_OUTER).sum(), tz.Params([W_OUTER]))
    return (inner[W_OUTER] * V_OUTER).sum()


def test_params_gradient_inside_a_gradient_is_refused():
    """Nested AD differentiates explicit arguments; a Params gradient inside it is a clear error
    (it was a TypeError from calling the zero-argument function with the Params)."""
    with pytest.raises(tz.GradientError, match=r"Params taken inside differentiated code is not supported"):
        tz.gradient(nested_params, tz.Params([W_OUTER, V_OUTER]))


class _Built(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return (self.w * x).sum()


def _builds_a_module(x):
    m = _Built(x * 2.0)   # (nn.Module.__init__ is lifted; its generated code is lifted again at second order)
    return m(x) ** 2


@pytest.mark.parametrize("method", ["forward", "reverse"])
def test_module_built_inside_a_twice_differentiated_function(method):
    """Generated code spells its globals ``__x`` as Python compiled them (outside any class); lifted
    again, it was read as a method of a class named by its qualname (``fwd[Module.__init__]``) and its
    private names mangled: a NameError at second order."""
    x = torch.tensor([0.3, -0.5], dtype=torch.float64)
    H = tz.hessian(_builds_a_module, x, method=method)
    torch.testing.assert_close(H, torch.autograd.functional.hessian(_builds_a_module, x))
