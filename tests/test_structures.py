"""The structure registry (``torchzygote.register_structure``, ``values/structures.py``): a user type
registered once is walked the same way by gradients, ``pullback`` seeds, ``update``, ``accum`` and
the torch fallback."""
import pytest
import torch

import torchzygote as tz
from torchzygote.values.algebra import accum
from torchzygote.values.structures import structure_of


class Affine:
    """A user's parameter container; iterable, so torch functions that take parameters take it."""

    def __init__(self, w, b):
        self.w = w
        self.b = b

    def __iter__(self):
        return iter((self.w, self.b))


tz.register_structure(Affine, lambda a: ({"w": a.w, "b": a.b}, None), lambda aux, f: Affine(f["w"], f["b"]))


def predict(a, x):
    return a.w * x + a.b


def loss(a, x):
    return (a.w * x + a.b) ** 2


def flat_norm(a):
    return torch.nn.utils.parameters_to_vector(a).pow(2).sum()


def make(x):
    return Affine(2.0 * x, 3.0 * x)


def test_registered_type_is_its_own_gradient():
    g, gx = tz.gradient(loss, Affine(2.0, 1.0), 3.0)
    assert isinstance(g, Affine)
    assert g.w == pytest.approx(2 * 7.0 * 3.0) and g.b == pytest.approx(2 * 7.0)
    assert gx == pytest.approx(2 * 7.0 * 2.0)


def test_registered_type_field_without_gradient_is_none():
    (g,) = tz.gradient(lambda a: a.w * 3.0, Affine(2.0, 1.0))
    assert isinstance(g, Affine) and g.w == pytest.approx(3.0) and g.b is None


def test_update_steps_a_registered_type():
    a = Affine(2.0, 1.0)
    g, _ = tz.gradient(loss, a, 3.0)
    new = tz.update(a, g, 0.01)
    assert isinstance(new, Affine)   # numbers are values: a new object with the stepped fields
    assert new.w == pytest.approx(2.0 - 0.42) and new.b == pytest.approx(1.0 - 0.14)
    t = Affine(torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    gt = Affine(torch.ones(2, dtype=torch.float64), None)
    assert tz.update(t, gt, 0.5) is t and torch.equal(t.w, torch.full((2,), 0.5, dtype=torch.float64))


def test_accum_adds_registered_types_field_by_field():
    s = accum(Affine(1.0, 2.0), Affine(3.0, None))
    assert isinstance(s, Affine) and (s.w, s.b) == (4.0, 2.0)


def test_torch_fallback_sees_the_tensors_of_a_registered_type():
    w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b = torch.tensor([3.0], dtype=torch.float64)
    (g,) = tz.gradient(flat_norm, Affine(w, b))
    assert isinstance(g, Affine)
    assert torch.allclose(g.w, 2 * w) and torch.allclose(g.b, 2 * b)


def test_pullback_seed_of_a_registered_output():
    y, back = tz.pullback(make, 1.5)
    assert isinstance(y, Affine) and y.w == 3.0
    (gx,) = back(Affine(1.0, 10.0))
    assert gx == pytest.approx(2.0 + 30.0)


def test_builtin_structures_are_registered():
    assert structure_of(1.0) is None and structure_of(torch.ones(1)) is None
    assert structure_of((1, 2)).flatten((1, 2))[0] == (1, 2)
    assert structure_of([1, 2]).unflatten(None, (3, 4)) == [3, 4]
    assert structure_of(tz.Record(a=1)).flatten(tz.Record(a=1))[0] == {"a": 1}


# ---------------------------------------------------------------- an instance's __dict__ and vars()
class _Fields:
    def __init__(self):
        self.k = 1.0


def _write_dict_read_field(x):
    o = _Fields()
    o.__dict__["k"] = x * 2.0
    return x * o.k


def _write_field_read_dict(x):
    o = _Fields()
    o.k = x * 3.0
    return o.__dict__["k"] * x


def _write_vars_read_field(x):
    o = _Fields()
    vars(o)["k"] = x ** 2
    vars(o).update(j=x)
    return o.k * o.j


@pytest.mark.parametrize("f,d1,d2", [(_write_dict_read_field, lambda x: 4 * x, lambda x: 4.0),
                                     (_write_field_read_dict, lambda x: 6 * x, lambda x: 6.0),
                                     (_write_vars_read_field, lambda x: 3 * x ** 2, lambda x: 6 * x)],
                         ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("x", [-1.25, 0.5, 2.0])
def test_instance_dict_is_the_objects_fields(f, d1, d2, x):
    assert tz.gradient(f, x)[0] == pytest.approx(d1(x))
    d = tz.derivative(f)
    assert tz.derivative(lambda v: d(v))(x) == pytest.approx(d2(x))
    assert tz.jvp(f, (x,), (1.0,))[1] == pytest.approx(d1(x))
