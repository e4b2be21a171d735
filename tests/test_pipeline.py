"""The transform's stages one at a time (torchzygote/ad/pipeline.py): lift, analyse,
generate, compile, each on the output of the one before and nothing else."""
from golden_programs import mlp, pow_loop
from torchzygote import ir
from torchzygote.ad import pipeline
from torchzygote.rules.registry import NONDIFF, REAL, TENSOR


def test_lift_alone():
    fn, guards = pipeline.lift(pow_loop)
    ir.verify(fn)
    assert fn.param_names[1:] == ["x", "n"]
    assert [type(n).__name__ for n in fn.body.nodes] == ["Stmt", "Loop"]
    assert "range" in guards   # a name resolved now, which the cache guards on


def test_analyse_alone():
    fn, _ = pipeline.lift(pow_loop)
    A = pipeline.analyse(fn, (REAL, REAL))
    x, n = fn.params[1:]
    loop = fn.body.nodes[1]
    assert A.kind(x) == REAL and A.active(x) and not A.active(n)   # n only counts trips
    assert A.active(loop.params[0]) and A.kind(loop.item) == REAL and not A.active(loop.item)
    assert A.kind(fn.body.nodes[0].out) == NONDIFF   # range(n)
    assert A.pure   # every statement has an inlined rule: the pullback returns at once on None
    # a value bound in the loop's body lives in a region inside a loop: saved per trip
    assert A.scopes.value_region[loop.params[0].id] in A.scopes.in_loop


def test_analyse_ranks():
    fn, _ = pipeline.lift(mlp)
    A = pipeline.analyse(fn, (TENSOR,) * 6, ranks=(2, 1, 2, 1, 1, 1))
    assert A.rank(fn.body.nodes[0].out) == 1 and A.active(fn.ret)   # W1 @ x: a vector
    assert all(A.active(p) for p in fn.params[1:])


def test_generate_alone():
    fn, _ = pipeline.lift(pow_loop)
    A = pipeline.analyse(fn, (REAL, REAL))
    src, glb, reads = pipeline.generate(fn, A, "pow_loop")
    assert src.startswith("def fwd(_ctx, ") and "    def back(" in src
    assert "in reversed(_s" in src   # the adjoint of a loop is a loop (over the values its trips saved)
    assert reads == (0,)   # the pullback reads x (a caller writing into x afterwards would change it)
    compile(src, "<test>", "exec")   # it is Python


def test_compile_alone():
    fn, _ = pipeline.lift(pow_loop)
    src, glb, reads = pipeline.generate(fn, pipeline.analyse(fn, (REAL, REAL)), "pow_loop")
    fwd = pipeline.compile(fn, src, glb, reads, "pow_loop")
    y, back = fwd(None, pow_loop, 2.0, 3)   # a pure pullback does not use the context
    assert y == 8.0 and back(1.0) == (12.0, None)
    assert fwd.reads == reads


def test_transform_runs_the_stages():
    t = pipeline.transform(mlp, (TENSOR,) * 6, ranks=(2, 1, 2, 1, 1, 1))
    assert t.src.startswith("def fwd(") and t.analysis.fn is t.ir and "mlp" in t.fwd.__qualname__
