"""Random programs (tests/sweeps/fuzz.py, fixed seeds): torchzygote's derivatives
against finite differences and torch autograd. Zero mismatches, zero internal
errors. Programs that fail because of a known torchzygote bug are listed in
KNOWN (strict xfail: when the bug is fixed, the xfail flips and the entry must go).

The full sweep: ``python -m tests.sweeps.fuzz --n 20000 --seed 0 --jobs 2``; forward mode (``tz.jvp``,
``tz.hvp``): ``--mode forward`` (FORWARD_CHUNKS below is its smoke test).
"""
import tempfile

import pytest

from sweeps import fuzz

SEED = 2024

# (kind, order, first index, count) per test: about 500 programs in all
CHUNKS = [("scalar", 1, k * 40, 40) for k in range(4)] + \
         [("tensor", 1, k * 15, 15) for k in range(3)] + \
         [("scalar", 2, 1000 + k * 5, 5) for k in range(3)] + \
         [("tensor", 2, 1000 + k * 3, 3) for k in range(2)] + \
         [("numpy", 1, k * 40, 40) for k in range(2)] + [("numpy", 2, 1000 + k * 6, 6) for k in range(2)]

# forward mode (--mode forward): (kind, order, first index, count), about 60 programs
FORWARD_CHUNKS = [("scalar", 1, 0, 25), ("tensor", 1, 0, 12), ("scalar", 2, 1000, 10), ("tensor", 2, 1000, 6),
                  ("numpy", 1, 0, 6)]

# (kind, order, index) -> the bug (tests/sweeps/FUZZ_FINDINGS.md)
KNOWN = {
}

# the same for forward mode
KNOWN_FORWARD: dict = {}
# forward-mode findings fixed since (kept as regression tests): tz.hvp through torch.stack lost the stacked
# items' tangents (silently zero); np.add.at's tangent lost the added values' (silently wrong); an in-place
# op whose result nothing reads packed a Dual that later code read as a tensor
FIXED_FORWARD = [("tensor", 2, 1004), ("tensor", 2, 1005), ("numpy", 1, 349), ("numpy", 1, 97), ("tensor", 1, 80),
                 ("tensor", 1, 9)]
# (and seed 3 tensor program 51, a tensor written in place that a callee had returned as another name's
# value, the same object: now refused, tests/test_forward_mode.py::test_a_write_into_a_tensor_a_callee_returned)
# (and seed 5 NumPy program 57, a write into an array a view made by np.rot90 reads afterwards: now refused,
# tests/test_forward_mode.py::test_a_write_under_a_view_made_by_a_call_is_refused)


def _run(kind, order, index, tmpdir, mode="reverse"):
    prog = fuzz.Program(SEED, index, kind)
    prog.high = False
    _, res = fuzz.run_one(SEED, index, kind, order, tmpdir, prog=prog, mode=mode)
    return prog, res


def _failures(prog, res):
    return [(o, v.cls, [d for d in v.details if d.startswith(v.cls)][:3])
            for o, v in sorted(res.items()) if v.cls in ("mismatch", "internal")]


def _sweep(kind, order, start, count, mode, known):
    bad = []
    counts = {}
    with tempfile.TemporaryDirectory(prefix="tzfuzz") as tmpdir:
        for i in range(start, start + count):
            if (kind, order, i) in known:
                continue
            prog, res = _run(kind, order, i, tmpdir, mode)
            for o, v in res.items():
                counts[v.cls] = counts.get(v.cls, 0) + 1
            fails = _failures(prog, res)
            if fails:
                bad.append(f"program {i} (seed {SEED}, {kind}, order {order}): {fails}\n{prog.src}")
    assert not bad, f"{len(bad)} failing programs ({counts}):\n" + "\n".join(bad[:3])
    return counts


@pytest.mark.parametrize("kind,order,start,count", CHUNKS,
                         ids=[f"{k}-o{o}-{s}" for k, o, s, _ in CHUNKS])
def test_fuzz_programs(kind, order, start, count):
    counts = _sweep(kind, order, start, count, "reverse", KNOWN)
    # the generator must produce checkable programs, not only skipped ones
    assert counts.get("ok", 0) >= count // 3, counts


@pytest.mark.parametrize("kind,order,start,count", FORWARD_CHUNKS,
                         ids=[f"{k}-o{o}-{s}" for k, o, s, _ in FORWARD_CHUNKS])
def test_fuzz_programs_forward(kind, order, start, count):
    """``tz.jvp`` (and ``tz.hvp`` at order 2) of random programs; NumPy programs are mostly refused
    in forward mode today (clear errors), so only their absence of wrong numbers is asserted."""
    counts = _sweep(kind, order, start, count, "forward", KNOWN_FORWARD)
    assert kind == "numpy" or counts.get("ok", 0) >= count // 3, counts


@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=KNOWN[k]),
                                              id=f"{k[0]}-o{k[1]}-{k[2]}") for k in sorted(KNOWN)])
def test_fuzz_known_failures(key):
    kind, order, index = key
    with tempfile.TemporaryDirectory(prefix="tzfuzz") as tmpdir:
        prog, res = _run(kind, order, index, tmpdir)
    assert not _failures(prog, res), KNOWN[key]


@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FORWARD[k]),
                                              id=f"{k[0]}-o{k[1]}-{k[2]}") for k in sorted(KNOWN_FORWARD)])
def test_fuzz_known_failures_forward(key):
    kind, order, index = key
    with tempfile.TemporaryDirectory(prefix="tzfuzz") as tmpdir:
        prog, res = _run(kind, order, index, tmpdir, "forward")
    assert not _failures(prog, res), KNOWN_FORWARD[key]


@pytest.mark.parametrize("key", FIXED_FORWARD, ids=[f"{k[0]}-o{k[1]}-{k[2]}" for k in FIXED_FORWARD])
def test_fuzz_fixed_forward_findings(key):
    kind, order, index = key
    with tempfile.TemporaryDirectory(prefix="tzfuzz") as tmpdir:
        prog, res = _run(kind, order, index, tmpdir, "forward")
    assert not _failures(prog, res)
